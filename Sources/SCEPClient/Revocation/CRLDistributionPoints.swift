import SwiftASN1
import X509

// RFC 5280 §4.2.1.13 (implicitly tagged module)
//
// CRLDistributionPoints ::= SEQUENCE SIZE (1..MAX) OF DistributionPoint
//
// DistributionPoint ::= SEQUENCE {
//      distributionPoint       [0]     DistributionPointName OPTIONAL,
//      reasons                 [1]     ReasonFlags OPTIONAL,
//      cRLIssuer               [2]     GeneralNames OPTIONAL }
//
// DistributionPointName ::= CHOICE {
//      fullName                [0]     GeneralNames,
//      nameRelativeToCRLIssuer [1]     RelativeDistinguishedName }
//
// Only what the agent needs is kept: the fullName URIs, and whether a point names
// another CRL issuer (an indirect CRL, which the agent does not accept).
public struct CRLDistributionPoints: DERImplicitlyTaggable, Hashable, Sendable {
    public static var defaultIdentifier: ASN1Identifier { .sequence }
    public static let oid: ASN1ObjectIdentifier = [2, 5, 29, 31]

    public struct Point: Hashable, Sendable {
        /// The fullName's general names (URIs, directory names, …).
        public var fullName: [GeneralName]
        /// cRLIssuer is present: the CRL is signed by someone other than the certificate's issuer.
        public var namesOtherIssuer: Bool

        public init(fullName: [GeneralName], namesOtherIssuer: Bool = false) {
            self.fullName = fullName
            self.namesOtherIssuer = namesOtherIssuer
        }

        public var uris: [String] {
            fullName.compactMap { if case .uniformResourceIdentifier(let uri) = $0 { return uri } else { return nil } }
        }
    }

    public var points: [Point]

    public init(_ points: [Point]) { self.points = points }

    /// The certificate's extension, nil when it has none.
    public init?(of certificate: Certificate) throws {
        guard let ext = certificate.extensions[oid: Self.oid] else { return nil }
        try self.init(derEncoded: ext.value)
    }

    /// Every URI, in order.
    public var uris: [String] { points.flatMap(\.uris) }

    private static let tag0 = ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)
    private static let tag2 = ASN1Identifier(tagWithNumber: 2, tagClass: .contextSpecific)

    public init(derEncoded node: ASN1Node, withIdentifier identifier: ASN1Identifier) throws {
        points = try DER.sequence(of: PointNode.self, identifier: identifier, rootNode: node).map(\.point)
        guard !points.isEmpty else { throw ASN1Error.invalidASN1Object(reason: "an empty CRLDistributionPoints") }
    }

    public func serialize(into coder: inout DER.Serializer, withIdentifier identifier: ASN1Identifier) throws {
        try coder.serializeSequenceOf(points.map(PointNode.init), identifier: identifier)
    }

    /// One DistributionPoint on the wire.
    private struct PointNode: DERImplicitlyTaggable {
        static var defaultIdentifier: ASN1Identifier { .sequence }
        var point: Point

        init(_ point: Point) { self.point = point }

        init(derEncoded node: ASN1Node, withIdentifier identifier: ASN1Identifier) throws {
            point = try DER.sequence(node, identifier: identifier) { nodes in
                var point = Point(fullName: [])
                while let child = nodes.next() {
                    switch child.identifier {
                    case CRLDistributionPoints.tag0:
                        // [0] wraps the CHOICE (a CHOICE is always explicitly tagged).
                        guard case .constructed(let names) = child.content else { throw ASN1Error.unexpectedFieldType(child.identifier) }
                        var inner = names.makeIterator()
                        if let choice = inner.next(), choice.identifier == CRLDistributionPoints.tag0,
                           case .constructed(let generalNames) = choice.content {
                            point.fullName = try generalNames.map { try GeneralName(derEncoded: $0) }
                        }
                    case CRLDistributionPoints.tag2:
                        point.namesOtherIssuer = true
                    default:
                        break  // reasons [1]: a partitioned CRL; it is read all the same (a serial it lists is revoked)
                    }
                }
                return point
            }
        }

        func serialize(into coder: inout DER.Serializer, withIdentifier identifier: ASN1Identifier) throws {
            try coder.appendConstructedNode(identifier: identifier) { coder in
                try coder.appendConstructedNode(identifier: CRLDistributionPoints.tag0) { coder in
                    try coder.appendConstructedNode(identifier: CRLDistributionPoints.tag0) { coder in
                        for name in point.fullName { try coder.serialize(name) }
                    }
                }
            }
        }
    }
}
