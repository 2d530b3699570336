import Foundation
import SwiftASN1
import TestSupport
import TPMKeys
import X509
@testable import SCEPClient

/// The test CA's CRL, served by the test SCEP server at `/crl`: the certificates revoked
/// so far (test API `revoke`), signed by the CA, or broken on purpose (`answer`).
final class TestCRLPublisher: @unchecked Sendable {
    /// What `/crl` answers.
    enum Answer: Sendable {
        /// The CA's CRL.
        case signedByCA
        /// The same list under the CA's name, signed by the rogue CA's key.
        case signedByRogueCA
        /// The rogue CA's own CRL (its name, its key).
        case issuedByRogueCA
        /// The CA's CRL cut in half.
        case truncated
        /// The CA's CRL padded to this many bytes (past a size limit).
        case oversized(Int)
        /// A nextUpdate in the past.
        case outOfDate
        /// Any HTTP answer instead.
        case http(TestHTTPResponse)
    }

    struct Revoked: Sendable {
        var serial: Certificate.SerialNumber
        var at: Date
        var reason: CRLReason?
        var invalidityDate: Date?
    }

    let ca: TestCA
    private let lock = NSLock()
    private var revokedCertificates: [Revoked] = []
    private var currentAnswer: Answer = .signedByCA
    private var served = 0

    init(ca: TestCA) { self.ca = ca }

    /// Adds the certificate to the CRL.
    func revoke(_ serial: Certificate.SerialNumber, reason: CRLReason? = .keyCompromise, at date: Date = Date(), invalidityDate: Date? = nil) {
        lock.withLock { revokedCertificates.append(Revoked(serial: serial, at: date, reason: reason, invalidityDate: invalidityDate)) }
    }

    var answer: Answer {
        get { lock.withLock { currentAnswer } }
        set { lock.withLock { currentAnswer = newValue } }
    }

    /// How often `/crl` was fetched.
    var fetchCount: Int { lock.withLock { served } }

    func response() -> TestHTTPResponse {
        let (answer, revoked) = lock.withLock { () -> (Answer, [Revoked]) in
            served += 1
            return (currentAnswer, revokedCertificates)
        }
        do {
            let now = Date()
            switch answer {
            case .signedByCA:
                return .ok(try Self.crl(issuer: ca.subject, signer: ca.key, revoked: revoked, now: now), contentType: "application/pkix-crl")
            case .signedByRogueCA:
                return .ok(try Self.crl(issuer: ca.subject, signer: try TestPKI.rogue().key, revoked: revoked, now: now), contentType: "application/pkix-crl")
            case .issuedByRogueCA:
                let rogue = try TestPKI.rogue()
                return .ok(try Self.crl(issuer: rogue.subject, signer: rogue.key, revoked: revoked, now: now), contentType: "application/pkix-crl")
            case .truncated:
                let der = try Self.crl(issuer: ca.subject, signer: ca.key, revoked: revoked, now: now)
                return .ok(Array(der.prefix(der.count / 2)), contentType: "application/pkix-crl")
            case .oversized(let size):
                var der = try Self.crl(issuer: ca.subject, signer: ca.key, revoked: revoked, now: now)
                der += [UInt8](repeating: 0, count: max(0, size - der.count))
                return .ok(der, contentType: "application/pkix-crl")
            case .outOfDate:
                return .ok(try Self.crl(issuer: ca.subject, signer: ca.key, revoked: revoked, now: now.addingTimeInterval(-7200)),
                           contentType: "application/pkix-crl")
            case .http(let response):
                return response
            }
        } catch {
            return .text("cannot build the CRL: \(error)\n", status: 500)
        }
    }

    /// A v2 CRL valid from `now` for an hour, with reasonCode and invalidityDate entry
    /// extensions, signed sha256WithRSAEncryption.
    static func crl(issuer: DistinguishedName, signer: SoftwareKey, revoked: [Revoked], now: Date,
                    validity: TimeInterval = 3600) throws -> [UInt8] {
        let algorithm = AlgorithmIdentifier.withNullParameters([1, 2, 840, 113549, 1, 1, 11])
        let entries = try revoked.map { entry -> RevokedCertificate in
            var extensions: [Certificate.Extension] = []
            if let reason = entry.reason { extensions.append(try RevokedCertificate.reasonExtension(reason)) }
            if let date = entry.invalidityDate { extensions.append(try RevokedCertificate.invalidityDateExtension(date)) }
            return RevokedCertificate(serialNumber: entry.serial.bytes, revocationDate: CRLTime(entry.at).wholeSeconds, extensions: extensions)
        }
        let tbs = TBSCertList(version: 1, signature: algorithm, issuer: issuer, thisUpdate: CRLTime(now).wholeSeconds,
                              nextUpdate: CRLTime(now.addingTimeInterval(validity)).wholeSeconds, revokedCertificates: entries)
        let tbsBytes = DERBytes.of(tbs)
        let signature = try signer.sign(digest: try CryptoPrimitives.digest(.sha256, tbsBytes), algorithm: .sha256)
        let list = try CertificateList(tbsCertList: tbs, signatureAlgorithm: algorithm, signature: ASN1BitString(bytes: signature[...]))
        return DERBytes.of(list)
    }

    /// The CRL distribution point extension naming `urls`.
    static func distributionPoint(_ urls: [String]) throws -> Certificate.Extension {
        let points = CRLDistributionPoints([.init(fullName: urls.map { .uniformResourceIdentifier($0) })])
        return Certificate.Extension(oid: CRLDistributionPoints.oid, critical: false, value: DERBytes.of(points)[...])
    }
}
