import SwiftASN1

// RFC 5652 §5.1
//
// SignedData ::= SEQUENCE {
//   version CMSVersion,
//   digestAlgorithms DigestAlgorithmIdentifiers,
//   encapContentInfo EncapsulatedContentInfo,
//   certificates [0] IMPLICIT CertificateSet OPTIONAL,
//   crls [1] IMPLICIT RevocationInfoChoices OPTIONAL,
//   signerInfos SignerInfos }
//
// DigestAlgorithmIdentifiers ::= SET OF DigestAlgorithmIdentifier
// SignerInfos ::= SET OF SignerInfo
//
// Certificates are kept as their encoded bytes (X.509 is swift-certificates' job);
// CRLs are carried through untouched.
struct SignedData: BERImplicitlyTaggable, Hashable, Sendable {
    static var defaultIdentifier: ASN1Identifier { .sequence }
    static let certificatesTag = ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)
    static let crlsTag = ASN1Identifier(tagWithNumber: 1, tagClass: .contextSpecific)

    var version: Int
    var digestAlgorithms: [AlgorithmIdentifier]
    var encapsulatedContentInfo: EncapsulatedContentInfo
    var certificates: [ASN1Any]?
    var crls: [ASN1Any]?
    var signerInfos: [SignerInfo]

    init(
        version: Int, digestAlgorithms: [AlgorithmIdentifier], encapsulatedContentInfo: EncapsulatedContentInfo,
        certificates: [ASN1Any]?, crls: [ASN1Any]? = nil, signerInfos: [SignerInfo]
    ) {
        self.version = version
        self.digestAlgorithms = digestAlgorithms
        self.encapsulatedContentInfo = encapsulatedContentInfo
        self.certificates = certificates
        self.crls = crls
        self.signerInfos = signerInfos
    }

    init(derEncoded node: ASN1Node, withIdentifier identifier: ASN1Identifier) throws {
        try self.init(berEncoded: node, withIdentifier: identifier)
    }

    init(berEncoded node: ASN1Node, withIdentifier identifier: ASN1Identifier) throws {
        self = try BER.sequence(node, identifier: identifier) { nodes in
            let version = try Int(berEncoded: &nodes)
            let digestAlgorithms = try BER.set(of: AlgorithmIdentifier.self, identifier: .set, nodes: &nodes)
            let encap = try EncapsulatedContentInfo(berEncoded: &nodes)
            var certificates: [ASN1Any]? = nil
            var crls: [ASN1Any]? = nil
            var lookahead = nodes
            if let next = lookahead.next(), next.identifier == Self.certificatesTag {
                nodes = lookahead
                certificates = try BER.set(of: ASN1Any.self, identifier: Self.certificatesTag, rootNode: next)
            }
            lookahead = nodes
            if let next = lookahead.next(), next.identifier == Self.crlsTag {
                nodes = lookahead
                crls = try BER.set(of: ASN1Any.self, identifier: Self.crlsTag, rootNode: next)
            }
            let signerInfos = try BER.set(of: SignerInfo.self, identifier: .set, nodes: &nodes)
            return SignedData(
                version: version, digestAlgorithms: digestAlgorithms, encapsulatedContentInfo: encap,
                certificates: certificates, crls: crls, signerInfos: signerInfos)
        }
    }

    func serialize(into coder: inout DER.Serializer, withIdentifier identifier: ASN1Identifier) throws {
        try coder.appendConstructedNode(identifier: identifier) { coder in
            try coder.serialize(version)
            try coder.serializeSetOf(digestAlgorithms)
            try coder.serialize(encapsulatedContentInfo)
            if let certificates { try coder.serializeSetOf(certificates, identifier: Self.certificatesTag) }
            if let crls { try coder.serializeSetOf(crls, identifier: Self.crlsTag) }
            try coder.serializeSetOf(signerInfos)
        }
    }
}
