import Foundation
import SwiftASN1
import X509

// RFC 5280 §5.1
//
// CertificateList  ::=  SEQUENCE  {
//      tbsCertList          TBSCertList,
//      signatureAlgorithm   AlgorithmIdentifier,
//      signatureValue       BIT STRING  }
//
// swift-certificates has no CRL type; this one is parsed as DER (RFC 5280 requires it)
// and keeps the tbsCertList bytes as received, which is what the signature covers.
struct CertificateList: DERImplicitlyTaggable, Hashable, Sendable {
    static var defaultIdentifier: ASN1Identifier { .sequence }

    var tbsCertList: TBSCertList
    var signedBytes: ArraySlice<UInt8>
    var signatureAlgorithm: AlgorithmIdentifier
    var signature: ASN1BitString

    init(tbsCertList: TBSCertList, signatureAlgorithm: AlgorithmIdentifier, signature: ASN1BitString) throws {
        self.tbsCertList = tbsCertList
        self.signedBytes = DERBytes.of(tbsCertList)[...]
        self.signatureAlgorithm = signatureAlgorithm
        self.signature = signature
    }

    init(derEncoded node: ASN1Node, withIdentifier identifier: ASN1Identifier) throws {
        self = try DER.sequence(node, identifier: identifier) { nodes in
            guard let tbsNode = nodes.next() else { throw ASN1Error.invalidASN1Object(reason: "CRL without tbsCertList") }
            let tbs = try TBSCertList(derEncoded: tbsNode)
            let algorithm = try AlgorithmIdentifier(derEncoded: &nodes)
            let signature = try ASN1BitString(derEncoded: &nodes)
            var list = try CertificateList(tbsCertList: tbs, signatureAlgorithm: algorithm, signature: signature)
            list.signedBytes = tbsNode.encodedBytes
            return list
        }
    }

    func serialize(into coder: inout DER.Serializer, withIdentifier identifier: ASN1Identifier) throws {
        try coder.appendConstructedNode(identifier: identifier) { coder in
            coder.serialize(try DER.parse(Array(signedBytes)))
            try coder.serialize(signatureAlgorithm)
            try coder.serialize(signature)
        }
    }
}
