import Foundation
import SwiftASN1
import X509

// RFC 5280 §5.1
//
// TBSCertList  ::=  SEQUENCE  {
//      version                 Version OPTIONAL,
//                                   -- if present, MUST be v2
//      signature               AlgorithmIdentifier,
//      issuer                  Name,
//      thisUpdate              Time,
//      nextUpdate              Time OPTIONAL,
//      revokedCertificates     SEQUENCE OF SEQUENCE  { … }  OPTIONAL,
//      crlExtensions           [0]  EXPLICIT Extensions OPTIONAL
//                                   -- if present, version MUST be v2
//                              }
struct TBSCertList: DERImplicitlyTaggable, Hashable, Sendable {
    static var defaultIdentifier: ASN1Identifier { .sequence }

    /// 1 (v2) when present; nil for a v1 CRL.
    var version: Int?
    var signature: AlgorithmIdentifier
    var issuer: DistinguishedName
    var thisUpdate: CRLTime
    var nextUpdate: CRLTime?
    var revokedCertificates: [RevokedCertificate]
    var extensions: [Certificate.Extension]

    init(version: Int?, signature: AlgorithmIdentifier, issuer: DistinguishedName, thisUpdate: CRLTime, nextUpdate: CRLTime?,
         revokedCertificates: [RevokedCertificate] = [], extensions: [Certificate.Extension] = []) {
        self.version = version
        self.signature = signature
        self.issuer = issuer
        self.thisUpdate = thisUpdate
        self.nextUpdate = nextUpdate
        self.revokedCertificates = revokedCertificates
        self.extensions = extensions
    }

    init(derEncoded node: ASN1Node, withIdentifier identifier: ASN1Identifier) throws {
        self = try DER.sequence(node, identifier: identifier) { nodes in
            let version = try DER.optionalImplicitlyTagged(&nodes, tag: .integer) as Int?
            if let version, version != 1 {
                throw ASN1Error.invalidASN1Object(reason: "CRL version \(version + 1); only v1 and v2 exist")
            }
            let signature = try AlgorithmIdentifier(derEncoded: &nodes)
            guard let issuerNode = nodes.next() else { throw ASN1Error.invalidASN1Object(reason: "CRL without issuer") }
            let issuer = try DistinguishedName(derEncoded: issuerNode)
            guard let thisUpdateNode = nodes.next() else { throw ASN1Error.invalidASN1Object(reason: "CRL without thisUpdate") }
            let thisUpdate = try CRLTime(derEncoded: thisUpdateNode)
            var nextUpdate: CRLTime?
            var revoked: [RevokedCertificate] = []
            var extensions: [Certificate.Extension] = []
            var node = nodes.next()
            if let current = node, CRLTime.isTime(current.identifier) {
                nextUpdate = try CRLTime(derEncoded: current)
                node = nodes.next()
            }
            if let current = node, current.identifier == .sequence {
                revoked = try DER.sequence(of: RevokedCertificate.self, identifier: .sequence, rootNode: current)
                node = nodes.next()
            }
            if let current = node {
                guard current.identifier == ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific),
                      case .constructed(let children) = current.content else {
                    throw ASN1Error.unexpectedFieldType(current.identifier)
                }
                var inner = children.makeIterator()
                guard let sequence = inner.next(), inner.next() == nil else {
                    throw ASN1Error.invalidASN1Object(reason: "crlExtensions must hold one Extensions sequence")
                }
                extensions = try DER.sequence(of: Certificate.Extension.self, identifier: .sequence, rootNode: sequence)
            }
            if version == nil, !extensions.isEmpty || revoked.contains(where: { !$0.extensions.isEmpty }) {
                throw ASN1Error.invalidASN1Object(reason: "a v1 CRL carries extensions")
            }
            return TBSCertList(version: version, signature: signature, issuer: issuer, thisUpdate: thisUpdate,
                               nextUpdate: nextUpdate, revokedCertificates: revoked, extensions: extensions)
        }
    }

    func serialize(into coder: inout DER.Serializer, withIdentifier identifier: ASN1Identifier) throws {
        try coder.appendConstructedNode(identifier: identifier) { coder in
            if let version { try coder.serialize(version) }
            try coder.serialize(signature)
            try coder.serialize(issuer)
            try coder.serialize(thisUpdate)
            if let nextUpdate { try coder.serialize(nextUpdate) }
            if !revokedCertificates.isEmpty { try coder.serializeSequenceOf(revokedCertificates) }
            if !extensions.isEmpty {
                try coder.appendConstructedNode(identifier: ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)) { coder in
                    try coder.serializeSequenceOf(extensions)
                }
            }
        }
    }
}
