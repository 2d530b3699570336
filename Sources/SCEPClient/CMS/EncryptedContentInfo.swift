import SwiftASN1

// RFC 5652 §6.1
//
// EncryptedContentInfo ::= SEQUENCE {
//   contentType ContentType,
//   contentEncryptionAlgorithm ContentEncryptionAlgorithmIdentifier,
//   encryptedContent [0] IMPLICIT EncryptedContent OPTIONAL }
//
// EncryptedContent ::= OCTET STRING   -- BER: may be constructed, flattened here
struct EncryptedContentInfo: BERImplicitlyTaggable, Hashable, Sendable {
    static var defaultIdentifier: ASN1Identifier { .sequence }
    static let encryptedContentTag = ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)

    var contentType: ASN1ObjectIdentifier
    var contentEncryptionAlgorithm: AlgorithmIdentifier
    var encryptedContent: ASN1OctetString?

    init(contentType: ASN1ObjectIdentifier, contentEncryptionAlgorithm: AlgorithmIdentifier, encryptedContent: ASN1OctetString?) {
        self.contentType = contentType
        self.contentEncryptionAlgorithm = contentEncryptionAlgorithm
        self.encryptedContent = encryptedContent
    }

    init(derEncoded node: ASN1Node, withIdentifier identifier: ASN1Identifier) throws {
        try self.init(berEncoded: node, withIdentifier: identifier)
    }

    init(berEncoded node: ASN1Node, withIdentifier identifier: ASN1Identifier) throws {
        self = try BER.sequence(node, identifier: identifier) { nodes in
            let contentType = try ASN1ObjectIdentifier(berEncoded: &nodes)
            let algorithm = try AlgorithmIdentifier(berEncoded: &nodes)
            var content: ASN1OctetString? = nil
            if let next = nodes.next() {
                // [0] IMPLICIT: primitive or (BER) constructed with the context tag.
                guard next.identifier.tagNumber == 0, next.identifier.tagClass == .contextSpecific else {
                    throw ASN1Error.invalidASN1Object(reason: "EncryptedContentInfo: unexpected element")
                }
                content = try ASN1OctetString(berEncoded: next, withIdentifier: next.identifier)
            }
            return EncryptedContentInfo(contentType: contentType, contentEncryptionAlgorithm: algorithm, encryptedContent: content)
        }
    }

    func serialize(into coder: inout DER.Serializer, withIdentifier identifier: ASN1Identifier) throws {
        try coder.appendConstructedNode(identifier: identifier) { coder in
            try coder.serialize(contentType)
            try coder.serialize(contentEncryptionAlgorithm)
            if let encryptedContent {
                try encryptedContent.serialize(into: &coder, withIdentifier: Self.encryptedContentTag)
            }
        }
    }
}
