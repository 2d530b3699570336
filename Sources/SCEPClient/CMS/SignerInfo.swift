import SwiftASN1

// RFC 5652 §5.3
//
// SignerInfo ::= SEQUENCE {
//   version CMSVersion,
//   sid SignerIdentifier,
//   digestAlgorithm DigestAlgorithmIdentifier,
//   signedAttrs [0] IMPLICIT SignedAttributes OPTIONAL,
//   signatureAlgorithm SignatureAlgorithmIdentifier,
//   signature SignatureValue,
//   unsignedAttrs [1] IMPLICIT UnsignedAttributes OPTIONAL }
//
// SignerIdentifier ::= CHOICE {
//   issuerAndSerialNumber IssuerAndSerialNumber,
//   subjectKeyIdentifier [0] SubjectKeyIdentifier }
//
// SignedAttributes ::= SET SIZE (1..MAX) OF Attribute
struct SignerInfo: BERImplicitlyTaggable, Hashable, Sendable {
    static var defaultIdentifier: ASN1Identifier { .sequence }

    enum SignerIdentifier: Hashable, Sendable {
        case issuerAndSerialNumber(IssuerAndSerialNumber)
        case subjectKeyIdentifier(ArraySlice<UInt8>)
    }

    static let signedAttributesTag = ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)
    static let unsignedAttributesTag = ASN1Identifier(tagWithNumber: 1, tagClass: .contextSpecific)

    var version: Int
    var signerIdentifier: SignerIdentifier
    var digestAlgorithm: AlgorithmIdentifier
    var signedAttributes: [CMSAttribute]?
    /// The signed attributes exactly as received, re-tagged as SET OF (RFC 5652 §5.4):
    /// the signature covers these bytes, not our re-encoding of them.
    var signedAttributesSignedBytes: [UInt8]?
    var signatureAlgorithm: AlgorithmIdentifier
    var signature: ASN1OctetString
    var unsignedAttributes: [CMSAttribute]?

    init(
        version: Int, signerIdentifier: SignerIdentifier, digestAlgorithm: AlgorithmIdentifier,
        signedAttributes: [CMSAttribute]?, signatureAlgorithm: AlgorithmIdentifier, signature: ASN1OctetString,
        unsignedAttributes: [CMSAttribute]? = nil
    ) throws {
        self.version = version
        self.signerIdentifier = signerIdentifier
        self.digestAlgorithm = digestAlgorithm
        self.signedAttributes = signedAttributes
        self.signatureAlgorithm = signatureAlgorithm
        self.signature = signature
        self.unsignedAttributes = unsignedAttributes
        self.signedAttributesSignedBytes = try signedAttributes.map(Self.signedBytes(of:))
    }

    /// DER of `SET OF Attribute` as it is signed (RFC 5652 §5.4).
    static func signedBytes(of attributes: [CMSAttribute]) throws -> [UInt8] {
        var serializer = DER.Serializer()
        try serializer.serializeSetOf(attributes)
        return serializer.serializedBytes
    }

    init(derEncoded node: ASN1Node, withIdentifier identifier: ASN1Identifier) throws {
        try self.init(berEncoded: node, withIdentifier: identifier)
    }

    init(berEncoded node: ASN1Node, withIdentifier identifier: ASN1Identifier) throws {
        self = try BER.sequence(node, identifier: identifier) { nodes in
            let version = try Int(berEncoded: &nodes)
            guard let sidNode = nodes.next() else {
                throw ASN1Error.invalidASN1Object(reason: "SignerInfo: sid missing")
            }
            let sid: SignerIdentifier
            if sidNode.identifier == .sequence {
                sid = .issuerAndSerialNumber(try IssuerAndSerialNumber(berEncoded: sidNode))
            } else if sidNode.identifier == ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific) {
                let ski = try ASN1OctetString(berEncoded: sidNode, withIdentifier: sidNode.identifier)
                sid = .subjectKeyIdentifier(ski.bytes)
            } else {
                throw ASN1Error.invalidASN1Object(reason: "SignerInfo: unexpected SignerIdentifier")
            }
            let digestAlgorithm = try AlgorithmIdentifier(berEncoded: &nodes)

            var signedAttributes: [CMSAttribute]? = nil
            var signedBytes: [UInt8]? = nil
            var lookahead = nodes
            if let next = lookahead.next(), next.identifier == Self.signedAttributesTag {
                nodes = lookahead
                signedAttributes = try BER.set(of: CMSAttribute.self, identifier: Self.signedAttributesTag, rootNode: next)
                // Re-tag the received bytes as SET (0x31): the signature covers them.
                guard case .constructed = next.content, !next.encodedBytes.isEmpty else {
                    throw ASN1Error.invalidASN1Object(reason: "SignerInfo: signedAttrs must be constructed")
                }
                var bytes = Array(next.encodedBytes)
                bytes[0] = 0x31
                signedBytes = bytes
            }
            let signatureAlgorithm = try AlgorithmIdentifier(berEncoded: &nodes)
            let signature = try ASN1OctetString(berEncoded: &nodes)
            var unsignedAttributes: [CMSAttribute]? = nil
            if let next = nodes.next() {
                guard next.identifier == Self.unsignedAttributesTag else {
                    throw ASN1Error.invalidASN1Object(reason: "SignerInfo: unexpected trailing element")
                }
                unsignedAttributes = try BER.set(of: CMSAttribute.self, identifier: Self.unsignedAttributesTag, rootNode: next)
            }
            var info = try SignerInfo(
                version: version, signerIdentifier: sid, digestAlgorithm: digestAlgorithm,
                signedAttributes: nil, signatureAlgorithm: signatureAlgorithm, signature: signature,
                unsignedAttributes: unsignedAttributes)
            info.signedAttributes = signedAttributes
            info.signedAttributesSignedBytes = signedBytes
            return info
        }
    }

    func serialize(into coder: inout DER.Serializer, withIdentifier identifier: ASN1Identifier) throws {
        try coder.appendConstructedNode(identifier: identifier) { coder in
            try coder.serialize(version)
            switch signerIdentifier {
            case .issuerAndSerialNumber(let ias): try coder.serialize(ias)
            case .subjectKeyIdentifier(let ski):
                try ASN1OctetString(contentBytes: ski).serialize(into: &coder, withIdentifier: ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific))
            }
            try coder.serialize(digestAlgorithm)
            if let signedAttributes {
                try coder.serializeSetOf(signedAttributes, identifier: Self.signedAttributesTag)
            }
            try coder.serialize(signatureAlgorithm)
            try coder.serialize(signature)
            if let unsignedAttributes {
                try coder.serializeSetOf(unsignedAttributes, identifier: Self.unsignedAttributesTag)
            }
        }
    }
}
