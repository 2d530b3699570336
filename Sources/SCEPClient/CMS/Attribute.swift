import SwiftASN1

// RFC 5652 §5.3
//
// Attribute ::= SEQUENCE {
//   attrType OBJECT IDENTIFIER,
//   attrValues SET OF AttributeValue }
//
// AttributeValue ::= ANY
struct CMSAttribute: BERImplicitlyTaggable, Hashable, Sendable {
    static var defaultIdentifier: ASN1Identifier { .sequence }

    var type: ASN1ObjectIdentifier
    var values: [ASN1Any]

    init(type: ASN1ObjectIdentifier, values: [ASN1Any]) {
        self.type = type
        self.values = values
    }

    init(derEncoded node: ASN1Node, withIdentifier identifier: ASN1Identifier) throws {
        try self.init(berEncoded: node, withIdentifier: identifier)
    }

    init(berEncoded node: ASN1Node, withIdentifier identifier: ASN1Identifier) throws {
        self = try BER.sequence(node, identifier: identifier) { nodes in
            let type = try ASN1ObjectIdentifier(berEncoded: &nodes)
            let values = try BER.set(of: ASN1Any.self, identifier: .set, nodes: &nodes)
            return CMSAttribute(type: type, values: values)
        }
    }

    func serialize(into coder: inout DER.Serializer, withIdentifier identifier: ASN1Identifier) throws {
        try coder.appendConstructedNode(identifier: identifier) { coder in
            try coder.serialize(type)
            try coder.serializeSetOf(values)
        }
    }
}

extension Array where Element == CMSAttribute {
    /// The single value of the attribute `type`; nil when absent.
    /// A repeated attribute or one with several values is malformed (RFC 8894 §3.2.1).
    func singleValue(_ type: ASN1ObjectIdentifier) throws -> ASN1Any? {
        let matching = filter { $0.type == type }
        guard let first = matching.first else { return nil }
        guard matching.count == 1, first.values.count == 1 else {
            throw ASN1Error.invalidASN1Object(reason: "attribute \(type) must occur once with one value")
        }
        return first.values[0]
    }
}
