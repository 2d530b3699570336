import SwiftASN1

// RFC 5652 §6.1
//
// EnvelopedData ::= SEQUENCE {
//   version CMSVersion,
//   originatorInfo [0] IMPLICIT OriginatorInfo OPTIONAL,
//   recipientInfos RecipientInfos,
//   encryptedContentInfo EncryptedContentInfo,
//   unprotectedAttrs [1] IMPLICIT UnprotectedAttributes OPTIONAL }
//
// RecipientInfos ::= SET SIZE (1..MAX) OF RecipientInfo
//
// SCEP uses only key transport (ktri, a plain SEQUENCE); other RecipientInfo
// choices are kept opaque so a message carrying them still parses.
struct EnvelopedData: BERImplicitlyTaggable, Hashable, Sendable {
    static var defaultIdentifier: ASN1Identifier { .sequence }

    enum RecipientInfo: Hashable, Sendable {
        case keyTransport(KeyTransRecipientInfo)
        case other(ASN1Any)
    }

    var version: Int
    var recipientInfos: [RecipientInfo]
    var encryptedContentInfo: EncryptedContentInfo

    init(version: Int, recipientInfos: [RecipientInfo], encryptedContentInfo: EncryptedContentInfo) {
        self.version = version
        self.recipientInfos = recipientInfos
        self.encryptedContentInfo = encryptedContentInfo
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
            let recipients = try Self.recipientInfos(&nodes, structure: "EnvelopedData")
            let encrypted = try EncryptedContentInfo(berEncoded: &nodes)
            if let next = nodes.next(), next.identifier != ASN1Identifier(tagWithNumber: 1, tagClass: .contextSpecific) {
                throw ASN1Error.invalidASN1Object(reason: "EnvelopedData: unexpected trailing element")
            }
            return EnvelopedData(version: version, recipientInfos: recipients, encryptedContentInfo: encrypted)
        }
    }

    func serialize(into coder: inout DER.Serializer, withIdentifier identifier: ASN1Identifier) throws {
        try coder.appendConstructedNode(identifier: identifier) { coder in
            try coder.serialize(version)
            try Self.serializeRecipientInfos(recipientInfos, into: &coder)
            try coder.serialize(encryptedContentInfo)
        }
    }

    /// RecipientInfos, shared with AuthEnvelopedData (RFC 5083).
    static func recipientInfos(_ nodes: inout ASN1NodeCollection.Iterator, structure: String) throws -> [RecipientInfo] {
        guard let setNode = nodes.next(), setNode.identifier == .set, case .constructed(let children) = setNode.content else {
            throw ASN1Error.invalidASN1Object(reason: "\(structure): recipientInfos missing")
        }
        var recipients: [RecipientInfo] = []
        for child in children {
            if child.identifier == .sequence {
                recipients.append(.keyTransport(try KeyTransRecipientInfo(berEncoded: child)))
            } else {
                recipients.append(.other(ASN1Any(berEncoded: child)))
            }
        }
        guard !recipients.isEmpty else {
            throw ASN1Error.invalidASN1Object(reason: "\(structure): no recipientInfos")
        }
        return recipients
    }

    static func serializeRecipientInfos(_ recipientInfos: [RecipientInfo], into coder: inout DER.Serializer) throws {
        var elements: [ASN1Any] = []
        for recipient in recipientInfos {
            switch recipient {
            case .keyTransport(let ktri): elements.append(try ASN1Any(erasing: ktri))
            case .other(let any): elements.append(any)
            }
        }
        try coder.serializeSetOf(elements)
    }
}
