import SwiftASN1

// RFC 5084 §3.2
//
// GCMParameters ::= SEQUENCE {
//   aes-nonce        OCTET STRING, -- recommended size is 12 octets
//   aes-ICVlen       AES-GCM-ICVlen DEFAULT 12 }
//
// AES-GCM-ICVlen ::= INTEGER (12 | 13 | 14 | 15 | 16)
struct GCMParameters: BERImplicitlyTaggable, Hashable, Sendable {
    static var defaultIdentifier: ASN1Identifier { .sequence }
    static let defaultICVLength = 12

    var nonce: [UInt8]
    var icvLength: Int

    init(nonce: [UInt8], icvLength: Int = GCMParameters.defaultICVLength) {
        self.nonce = nonce
        self.icvLength = icvLength
    }

    init(derEncoded node: ASN1Node, withIdentifier identifier: ASN1Identifier) throws {
        try self.init(berEncoded: node, withIdentifier: identifier)
    }

    init(berEncoded node: ASN1Node, withIdentifier identifier: ASN1Identifier) throws {
        self = try BER.sequence(node, identifier: identifier) { nodes in
            let nonce = try ASN1OctetString(berEncoded: &nodes)
            let icvLength = try BER.decodeDefault(&nodes, defaultValue: Self.defaultICVLength)
            guard (12...16).contains(icvLength), !nonce.bytes.isEmpty else {
                throw ASN1Error.invalidASN1Object(reason: "GCMParameters: aes-ICVlen \(icvLength) is not 12…16, or the nonce is empty")
            }
            return GCMParameters(nonce: Array(nonce.bytes), icvLength: icvLength)
        }
    }

    func serialize(into coder: inout DER.Serializer, withIdentifier identifier: ASN1Identifier) throws {
        try coder.appendConstructedNode(identifier: identifier) { coder in
            try coder.serialize(ASN1OctetString(contentBytes: nonce[...]))
            if icvLength != Self.defaultICVLength { try coder.serialize(icvLength) }  // DER omits the default
        }
    }
}
