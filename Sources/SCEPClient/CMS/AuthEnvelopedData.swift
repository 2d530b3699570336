import SwiftASN1

// RFC 5083 §2.1
//
// AuthEnvelopedData ::= SEQUENCE {
//   version CMSVersion,
//   originatorInfo [0] IMPLICIT OriginatorInfo OPTIONAL,
//   recipientInfos RecipientInfos,
//   authEncryptedContentInfo EncryptedContentInfo,
//   authAttrs [1] IMPLICIT AuthAttributes OPTIONAL,
//   mac MessageAuthenticationCode,
//   unauthAttrs [2] IMPLICIT UnauthAttributes OPTIONAL }
//
// AuthAttributes ::= SET SIZE (1..MAX) OF Attribute
// MessageAuthenticationCode ::= OCTET STRING
//
// With AES-GCM (RFC 5084) the mac is the GCM tag, and the DER of authAttrs (with the
// universal SET tag) is the additional authenticated data.
struct AuthEnvelopedData: BERImplicitlyTaggable, Hashable, Sendable {
    static var defaultIdentifier: ASN1Identifier { .sequence }
    static let authAttributesTag = ASN1Identifier(tagWithNumber: 1, tagClass: .contextSpecific)

    var version: Int
    var recipientInfos: [EnvelopedData.RecipientInfo]
    var authEncryptedContentInfo: EncryptedContentInfo
    /// The DER of authAttrs re-tagged as a SET (the GCM additional data), empty when absent.
    var authenticatedAttributesDER: [UInt8]
    var mac: [UInt8]

    init(version: Int, recipientInfos: [EnvelopedData.RecipientInfo], authEncryptedContentInfo: EncryptedContentInfo,
         authenticatedAttributesDER: [UInt8] = [], mac: [UInt8]) {
        self.version = version
        self.recipientInfos = recipientInfos
        self.authEncryptedContentInfo = authEncryptedContentInfo
        self.authenticatedAttributesDER = authenticatedAttributesDER
        self.mac = mac
    }

    init(derEncoded node: ASN1Node, withIdentifier identifier: ASN1Identifier) throws {
        try self.init(berEncoded: node, withIdentifier: identifier)
    }

    init(berEncoded node: ASN1Node, withIdentifier identifier: ASN1Identifier) throws {
        self = try BER.sequence(node, identifier: identifier) { nodes in
            let version = try Int(berEncoded: &nodes)
            var lookahead = nodes
            if let next = lookahead.next(), next.identifier == ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific) {
                nodes = lookahead  // originatorInfo: not used by SCEP, skipped
            }
            let recipients = try EnvelopedData.recipientInfos(&nodes, structure: "AuthEnvelopedData")
            let encrypted = try EncryptedContentInfo(berEncoded: &nodes)
            var authenticated: [UInt8] = []
            lookahead = nodes
            if let next = lookahead.next(), next.identifier == Self.authAttributesTag {
                nodes = lookahead
                guard case .constructed(let children) = next.content else {
                    throw ASN1Error.invalidASN1Object(reason: "AuthEnvelopedData: authAttrs is not constructed")
                }
                // The AAD is the attributes as a DER SET OF (RFC 5083 §2.2), not as sent.
                var serializer = DER.Serializer()
                try serializer.serializeSetOf(children.map { ASN1Any(berEncoded: $0) })
                authenticated = serializer.serializedBytes
            }
            let mac = try ASN1OctetString(berEncoded: &nodes)
            if let next = nodes.next(), next.identifier != ASN1Identifier(tagWithNumber: 2, tagClass: .contextSpecific) {
                throw ASN1Error.invalidASN1Object(reason: "AuthEnvelopedData: unexpected trailing element")
            }
            return AuthEnvelopedData(version: version, recipientInfos: recipients, authEncryptedContentInfo: encrypted,
                                     authenticatedAttributesDER: authenticated, mac: Array(mac.bytes))
        }
    }

    func serialize(into coder: inout DER.Serializer, withIdentifier identifier: ASN1Identifier) throws {
        try coder.appendConstructedNode(identifier: identifier) { coder in
            try coder.serialize(version)
            try EnvelopedData.serializeRecipientInfos(recipientInfos, into: &coder)
            try coder.serialize(authEncryptedContentInfo)
            if !authenticatedAttributesDER.isEmpty {
                let set = try DER.parse(authenticatedAttributesDER)
                guard case .constructed(let children) = set.content else { return }
                try coder.appendConstructedNode(identifier: Self.authAttributesTag) { inner in
                    for child in children { try inner.serialize(ASN1Any(derEncoded: child)) }
                }
            }
            try coder.serialize(ASN1OctetString(contentBytes: mac[...]))
        }
    }
}
