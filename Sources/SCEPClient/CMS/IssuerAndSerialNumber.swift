import SwiftASN1

// RFC 5652 §10.2.4
//
// IssuerAndSerialNumber ::= SEQUENCE {
//   issuer Name,
//   serialNumber CertificateSerialNumber }
//
// The issuer Name is kept as its encoded bytes: it is compared, never interpreted.
struct IssuerAndSerialNumber: BERImplicitlyTaggable, Hashable, Sendable {
    static var defaultIdentifier: ASN1Identifier { .sequence }

    var issuer: ASN1Any
    var serialNumber: ArraySlice<UInt8>

    init(issuer: ASN1Any, serialNumber: ArraySlice<UInt8>) {
        self.issuer = issuer
        self.serialNumber = serialNumber
    }

    init(derEncoded node: ASN1Node, withIdentifier identifier: ASN1Identifier) throws {
        try self.init(berEncoded: node, withIdentifier: identifier)
    }

    init(berEncoded node: ASN1Node, withIdentifier identifier: ASN1Identifier) throws {
        self = try BER.sequence(node, identifier: identifier) { nodes in
            guard let issuerNode = nodes.next(), issuerNode.identifier == .sequence else {
                throw ASN1Error.invalidASN1Object(reason: "IssuerAndSerialNumber: issuer Name missing")
            }
            let serial = try ArraySlice<UInt8>(berEncoded: &nodes)
            return IssuerAndSerialNumber(issuer: ASN1Any(berEncoded: issuerNode), serialNumber: serial)
        }
    }

    func serialize(into coder: inout DER.Serializer, withIdentifier identifier: ASN1Identifier) throws {
        try coder.appendConstructedNode(identifier: identifier) { coder in
            try coder.serialize(issuer)
            try coder.serialize(serialNumber)
        }
    }
}
