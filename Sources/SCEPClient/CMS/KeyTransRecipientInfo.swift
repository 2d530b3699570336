import SwiftASN1

// RFC 5652 §6.2.1
//
// KeyTransRecipientInfo ::= SEQUENCE {
//   version CMSVersion,  -- always set to 0 or 2
//   rid RecipientIdentifier,
//   keyEncryptionAlgorithm KeyEncryptionAlgorithmIdentifier,
//   encryptedKey EncryptedKey }
//
// RecipientIdentifier ::= CHOICE {
//   issuerAndSerialNumber IssuerAndSerialNumber,
//   subjectKeyIdentifier [0] SubjectKeyIdentifier }
//
// Other RecipientInfo choices (kari, kekri, pwri, ori) are not used by SCEP and
// are rejected where they would have to be used.
struct KeyTransRecipientInfo: BERImplicitlyTaggable, Hashable, Sendable {
    static var defaultIdentifier: ASN1Identifier { .sequence }

    var version: Int
    var recipient: SignerInfo.SignerIdentifier
    var keyEncryptionAlgorithm: AlgorithmIdentifier
    var encryptedKey: ASN1OctetString

    init(version: Int, recipient: SignerInfo.SignerIdentifier, keyEncryptionAlgorithm: AlgorithmIdentifier, encryptedKey: ASN1OctetString) {
        self.version = version
        self.recipient = recipient
        self.keyEncryptionAlgorithm = keyEncryptionAlgorithm
        self.encryptedKey = encryptedKey
    }

    init(derEncoded node: ASN1Node, withIdentifier identifier: ASN1Identifier) throws {
        try self.init(berEncoded: node, withIdentifier: identifier)
    }

    init(berEncoded node: ASN1Node, withIdentifier identifier: ASN1Identifier) throws {
        self = try BER.sequence(node, identifier: identifier) { nodes in
            let version = try Int(berEncoded: &nodes)
            guard let ridNode = nodes.next() else {
                throw ASN1Error.invalidASN1Object(reason: "KeyTransRecipientInfo: rid missing")
            }
            let rid: SignerInfo.SignerIdentifier
            if ridNode.identifier == .sequence {
                rid = .issuerAndSerialNumber(try IssuerAndSerialNumber(berEncoded: ridNode))
            } else if ridNode.identifier == ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific) {
                rid = .subjectKeyIdentifier(try ASN1OctetString(berEncoded: ridNode, withIdentifier: ridNode.identifier).bytes)
            } else {
                throw ASN1Error.invalidASN1Object(reason: "KeyTransRecipientInfo: unexpected RecipientIdentifier")
            }
            let algorithm = try AlgorithmIdentifier(berEncoded: &nodes)
            let key = try ASN1OctetString(berEncoded: &nodes)
            return KeyTransRecipientInfo(version: version, recipient: rid, keyEncryptionAlgorithm: algorithm, encryptedKey: key)
        }
    }

    func serialize(into coder: inout DER.Serializer, withIdentifier identifier: ASN1Identifier) throws {
        try coder.appendConstructedNode(identifier: identifier) { coder in
            try coder.serialize(version)
            switch recipient {
            case .issuerAndSerialNumber(let ias): try coder.serialize(ias)
            case .subjectKeyIdentifier(let ski):
                try ASN1OctetString(contentBytes: ski).serialize(into: &coder, withIdentifier: ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific))
            }
            try coder.serialize(keyEncryptionAlgorithm)
            try coder.serialize(encryptedKey)
        }
    }
}
