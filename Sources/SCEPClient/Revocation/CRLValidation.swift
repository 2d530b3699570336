import Foundation
import SwiftASN1
import X509

/// Whether a CRL may speak for a certificate (RFC 5280 §6.3.3, the parts that apply to a
/// complete, direct CRL): issued and signed by the certificate's issuer, which must be the
/// pinned CA or a CA on the path to it; in date; no critical extension we do not honour.
public enum CRLValidation {
    /// A CA whose clock runs ahead may stamp thisUpdate a little in our future.
    public static let clockTolerance: TimeInterval = 300

    /// The certificate's issuer on the pinned path, found among the pin and the chain
    /// installed with the certificate (which was verified against the pin at install).
    public static func issuer(of certificate: Certificate, chain: [Certificate], pin: PinnedCA, now: Date) async throws -> Certificate {
        let anchors = pin.anchors(among: chain)
        let builder = try CertificatePathBuilder(anchors: anchors, candidates: chain.filter { !anchors.contains($0) }, window: ValidityWindow(now: now))
        let path = try await builder.path(from: certificate, role: "live")
        guard path.count >= 2 else {
            throw SCEPError(.untrustedCertificate, "the live certificate is itself the pinned CA; there is no issuer to check a CRL against")
        }
        return path[1]
    }

    /// Throws `SCEPError(.unusableCRL)` with the cause when `crl` does not speak for `certificate`.
    public static func verify(_ crl: CertificateRevocationList, issuer: Certificate, for certificate: Certificate, now: Date) throws {
        try verifyIssuer(crl, issuer: issuer, for: certificate)
        try verifyCurrent(crl, now: now)
    }

    /// Issued by the certificate's issuer, signed with its key, nothing critical we ignore.
    public static func verifyIssuer(_ crl: CertificateRevocationList, issuer: Certificate, for certificate: Certificate) throws {
        func name(_ dn: DistinguishedName) -> String { "\"\(ServerText.escaped("\(dn)"))\"" }
        guard crl.issuer == certificate.issuer, issuer.subject == certificate.issuer else {
            throw SCEPError(.unusableCRL, "the CRL is issued by \(name(crl.issuer)), not by the certificate's issuer \(name(certificate.issuer))")
        }
        if let usage = try? issuer.extensions.keyUsage, !usage.cRLSign {
            throw SCEPError(.unusableCRL, "the issuer \(name(issuer.subject)) may not sign CRLs (its key usage lacks cRLSign)")
        }
        guard crl.signatureAlgorithm != nil else {
            throw SCEPError(.unusableCRL, "the CRL's signature algorithm \(crl.signatureAlgorithmOID) is not supported (or differs from the one inside the signed part)")
        }
        guard crl.isSigned(by: issuer) else {
            throw SCEPError(.unusableCRL, "the CRL's signature does not verify with the key of the certificate's issuer \(name(issuer.subject)) on the pinned path")
        }
        if let critical = crl.criticalExtensions.first {
            throw SCEPError(.unusableCRL, "the CRL carries the critical extension \(critical), which the agent does not support (delta, partitioned or indirect CRLs are not used)")
        }
    }

    /// In date: thisUpdate not ahead of us (beyond `clockTolerance`), nextUpdate not passed.
    public static func verifyCurrent(_ crl: CertificateRevocationList, now: Date) throws {
        guard crl.thisUpdate <= now.addingTimeInterval(clockTolerance) else {
            throw SCEPError(.unusableCRL, "the CRL's thisUpdate \(format(crl.thisUpdate)) lies in the future (now: \(format(now)))")
        }
        if let nextUpdate = crl.nextUpdate, nextUpdate < now {
            throw SCEPError(.unusableCRL, "the CRL is out of date: its nextUpdate \(format(nextUpdate)) has passed (now: \(format(now)))")
        }
    }

    /// Revoked, or not listed. An entry with reason removeFromCRL (a delta CRL's way to
    /// lift a hold) is not a revocation.
    public static func entry(for certificate: Certificate, in crl: CertificateRevocationList) throws -> CertificateRevocationList.Entry? {
        guard let entry = try crl.entry(for: certificate.serialNumber), entry.reason != .removeFromCRL else { return nil }
        return entry
    }

    static func format(_ date: Date) -> String { date.formatted(Date.ISO8601FormatStyle()) }
}
