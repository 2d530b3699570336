import Foundation
import SwiftASN1
import X509

/// A parsed CRL (RFC 5280 §5), its signature not yet checked: see `CRLValidation`.
public struct CertificateRevocationList: Sendable {
    /// One revoked certificate.
    public struct Entry: Sendable, Equatable {
        public var serialNumber: Certificate.SerialNumber
        public var revocationDate: Date
        /// The reasonCode entry extension; nil when absent (RFC 5280: then "unspecified").
        public var reason: CRLReason?
        /// The invalidityDate entry extension.
        public var invalidityDate: Date?
    }

    let list: CertificateList
    /// The bytes as fetched.
    public let der: [UInt8]

    /// Parses DER; throws `SCEPError(.unusableCRL)` naming what is wrong.
    public init(derEncoded der: [UInt8]) throws {
        do {
            list = try CertificateList(derEncoded: der)
        } catch {
            throw SCEPError(.unusableCRL, "not a DER CRL (\(der.count) bytes): \(ServerText.excerpt("\(error)", limit: 160))")
        }
        self.der = der
    }

    public var issuer: DistinguishedName { list.tbsCertList.issuer }
    public var thisUpdate: Date { list.tbsCertList.thisUpdate.date }
    public var nextUpdate: Date? { list.tbsCertList.nextUpdate?.date }
    public var revokedCount: Int { list.tbsCertList.revokedCertificates.count }

    /// The entry for `serial`, nil when the CRL does not list it.
    public func entry(for serial: Certificate.SerialNumber) throws -> Entry? {
        guard let revoked = list.tbsCertList.revokedCertificates.first(where: { $0.serialNumber == serial.bytes }) else { return nil }
        do {
            return Entry(serialNumber: serial, revocationDate: revoked.revocationDate.date,
                         reason: try revoked.reason(), invalidityDate: try revoked.invalidityDate())
        } catch {
            throw SCEPError(.unusableCRL, "the CRL entry for serial \(Hex.encode(Array(serial.bytes))) is malformed: \(ServerText.excerpt("\(error)", limit: 120))")
        }
    }

    /// Critical extensions of the CRL and its entries, which a reader must understand or
    /// reject the CRL (RFC 5280 §5.2, §5.3). The agent understands none that are critical:
    /// a delta CRL, an issuing distribution point or an indirect CRL is not used.
    var criticalExtensions: [ASN1ObjectIdentifier] {
        (list.tbsCertList.extensions + list.tbsCertList.revokedCertificates.flatMap(\.extensions))
            .filter(\.critical).map(\.oid)
    }

    /// The signature algorithm, when swift-certificates can verify it.
    var signatureAlgorithm: Certificate.SignatureAlgorithm? {
        guard list.signatureAlgorithm.algorithm == list.tbsCertList.signature.algorithm else { return nil }
        return Self.signatureAlgorithms[list.signatureAlgorithm.algorithm]
    }

    var signatureAlgorithmOID: ASN1ObjectIdentifier { list.signatureAlgorithm.algorithm }

    /// Whether `issuer`'s key made the signature over tbsCertList.
    func isSigned(by issuer: Certificate) -> Bool {
        guard let algorithm = signatureAlgorithm else { return false }
        return issuer.publicKey.isValidSignature(Array(list.signature.bytes), for: Array(list.signedBytes), signatureAlgorithm: algorithm)
    }

    private static let signatureAlgorithms: [ASN1ObjectIdentifier: Certificate.SignatureAlgorithm] = [
        [1, 2, 840, 113549, 1, 1, 5]: .sha1WithRSAEncryption,
        [1, 2, 840, 113549, 1, 1, 11]: .sha256WithRSAEncryption,
        [1, 2, 840, 113549, 1, 1, 12]: .sha384WithRSAEncryption,
        [1, 2, 840, 113549, 1, 1, 13]: .sha512WithRSAEncryption,
        [1, 2, 840, 10045, 4, 3, 2]: .ecdsaWithSHA256,
        [1, 2, 840, 10045, 4, 3, 3]: .ecdsaWithSHA384,
        [1, 2, 840, 10045, 4, 3, 4]: .ecdsaWithSHA512,
    ]
}
