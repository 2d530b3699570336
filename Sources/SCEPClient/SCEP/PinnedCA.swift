import Foundation
import SwiftASN1
import TPMKeys
import X509

/// The intermediate CA the administrator pinned (the MDM's "trusted certificate
/// profile"): a PEM file and/or SHA-256 fingerprints. Every certificate the
/// server sends is used only if it is, or chains to, the pinned CA.
public struct PinnedCA: Sendable {
    /// Certificates from `ca_pin_file`.
    public let pinnedCertificates: [Certificate]
    /// Lowercase hex SHA-256 fingerprints from `ca_pin_sha256`.
    public let fingerprints: [String]

    public init(pinnedCertificates: [Certificate], fingerprints: [String]) throws {
        let normalized = fingerprints.map(PinnedCA.normalizeFingerprint)
        guard !pinnedCertificates.isEmpty || !normalized.isEmpty else {
            throw SCEPError(.untrustedCertificate, "no CA pin configured: set ca_pin_file and/or ca_pin_sha256")
        }
        // With both a file and fingerprints, they must agree: a stale file is a misconfiguration.
        if !pinnedCertificates.isEmpty && !normalized.isEmpty {
            let fileFingerprints = Set(pinnedCertificates.map(PinnedCA.fingerprint(of:)))
            guard !fileFingerprints.isDisjoint(with: normalized) else {
                throw SCEPError(.untrustedCertificate,
                                "ca_pin_file and ca_pin_sha256 name different certificates (file: \(fileFingerprints.sorted().joined(separator: ", "))); fix one of them")
            }
        }
        self.pinnedCertificates = pinnedCertificates
        self.fingerprints = normalized
    }

    /// Loads the pin from PEM text (one or more CERTIFICATE blocks).
    public init(pemText: String?, fingerprints: [String]) throws {
        var certificates: [Certificate] = []
        if let pemText {
            do {
                certificates = try PEMDocument.parseMultiple(pemString: pemText)
                    .filter { $0.discriminator == "CERTIFICATE" }
                    .map { try Certificate(derEncoded: $0.derBytes) }
            } catch {
                throw SCEPError(.untrustedCertificate, "the pinned CA file is not a PEM certificate: \(error)")
            }
            guard !certificates.isEmpty else {
                throw SCEPError(.untrustedCertificate, "the pinned CA file holds no CERTIFICATE block")
            }
        }
        try self.init(pinnedCertificates: certificates, fingerprints: fingerprints)
    }

    public static func fingerprint(of certificate: Certificate) -> String {
        var serializer = DER.Serializer()
        try? serializer.serialize(certificate)
        let digest = (try? CryptoPrimitives.digest(.sha256, serializer.serializedBytes)) ?? []
        return Hex.encode(digest)
    }

    static func normalizeFingerprint(_ text: String) -> String {
        text.lowercased().filter { $0.isHexDigit }
    }

    /// The trust anchors: pinned file certificates, plus any server certificate whose
    /// fingerprint is pinned.
    func anchors(among serverCertificates: [Certificate]) -> [Certificate] {
        var anchors = pinnedCertificates.filter { fingerprints.isEmpty || fingerprints.contains(Self.fingerprint(of: $0)) }
        if pinnedCertificates.isEmpty {
            anchors = serverCertificates.filter { fingerprints.contains(Self.fingerprint(of: $0)) }
        }
        return anchors
    }

    /// Checks that `certificate` is a pinned anchor or chains to one through
    /// `intermediates`, valid at `time`. Returns the validated chain (leaf first).
    func validate(
        _ certificate: Certificate, intermediates: [Certificate], anchors: [Certificate], at time: Date, role: String
    ) async throws -> [Certificate] {
        guard !anchors.isEmpty else {
            throw SCEPError(.untrustedCertificate,
                            "none of the server's CA certificates matches the pinned CA (pins: \(fingerprints.joined(separator: ", "))); "
                            + "check ca_pin_file / ca_pin_sha256 against `enroll-agent ca-info`")
        }
        var verifier = Verifier(rootCertificates: CertificateStore(anchors)) {
            RFC5280Policy(validationTime: time)
        }
        let result = await verifier.validate(leaf: certificate, intermediates: CertificateStore(intermediates))
        switch result {
        case .validCertificate(let chain):
            return Array(chain)
        case .couldNotValidate(let failures):
            let reasons = failures.map { "\($0.policyFailureReason)" }
            throw SCEPError(.untrustedCertificate,
                            "the \(role) certificate (subject \(certificate.subject)) does not chain to the pinned CA"
                            + (reasons.isEmpty ? "" : ": " + reasons.joined(separator: "; ")))
        }
    }
}
