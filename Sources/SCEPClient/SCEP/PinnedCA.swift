import Foundation
import SwiftASN1
import KeyInterface
import X509

/// What the administrator pinned: the intermediate CA (the MDM's "trusted certificate
/// profile") as a PEM file and/or SHA-256 fingerprints, and optionally RA certificates
/// by fingerprint. Every certificate the server sends is used only if it is, or chains
/// to, the pinned CA; an RA also needs an RA purpose or its own pin (`CACertificates`).
public struct PinnedCA: Sendable {
    /// Certificates from `ca_pin_file`.
    public let pinnedCertificates: [Certificate]
    /// Lowercase hex SHA-256 fingerprints from `ca_pin_sha256`.
    public let fingerprints: [String]
    /// Lowercase hex SHA-256 fingerprints from `ra_pin_sha256`: RA certificates trusted
    /// for the request envelope and reply signatures without an RA purpose.
    public let raFingerprints: [String]
    /// Next CA certificates the server announced (GetNextCACert, verified against this pin
    /// when they were stored): trusted as if pinned wherever the server presents them, so
    /// a planned CA rollover needs no config change on the day (`addingCandidates`).
    public private(set) var candidateCertificates: [Certificate] = []

    public init(pinnedCertificates: [Certificate], fingerprints: [String], raFingerprints: [String] = []) throws {
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
        self.raFingerprints = raFingerprints.map(PinnedCA.normalizeFingerprint)
    }

    /// Loads the pin from PEM text (one or more CERTIFICATE blocks).
    public init(pemText: String?, fingerprints: [String], raFingerprints: [String] = []) throws {
        var certificates: [Certificate] = []
        if let pemText {
            do {
                certificates = try PEMDocument.parseMultiple(pemString: pemText)
                    .filter { $0.discriminator == "CERTIFICATE" }
                    .map { try Certificate(derEncoded: $0.derBytes) }
            } catch {
                // swift-asn1's PEM errors quote the whole text: keep the start, escaped.
                throw SCEPError(.untrustedCertificate, "the pinned CA file is not a PEM certificate: \(ServerText.excerpt("\(error)", limit: 160))")
            }
            guard !certificates.isEmpty else {
                throw SCEPError(.untrustedCertificate, "the pinned CA file holds no CERTIFICATE block")
            }
        }
        try self.init(pinnedCertificates: certificates, fingerprints: fingerprints, raFingerprints: raFingerprints)
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

    /// The pin with announced next CA certificates added as candidates.
    public func addingCandidates(_ certificates: [Certificate]) -> PinnedCA {
        var copy = self
        copy.candidateCertificates += certificates.filter { !copy.candidateCertificates.contains($0) }
        return copy
    }

    /// Whether `certificate` is trusted only as an announced candidate, not by the configuration.
    public func isCandidateOnly(_ certificate: Certificate) -> Bool {
        candidateCertificates.contains(certificate) && !configuredAnchors(among: [certificate]).contains(certificate)
    }

    /// Whether one of `certificates` is a pinned CA (configured, or a candidate): for a live
    /// chain, whether its CA is one the administrator trusts (old or new during a change).
    public func pinsOne(of certificates: [Certificate]) -> Bool {
        anchors(among: certificates).contains { certificates.contains($0) }
    }

    /// The trust anchors: pinned file certificates, plus any server certificate whose
    /// fingerprint is pinned, plus candidates the server presents.
    func anchors(among serverCertificates: [Certificate]) -> [Certificate] {
        var anchors = configuredAnchors(among: serverCertificates)
        for candidate in candidateCertificates where serverCertificates.contains(candidate) && !anchors.contains(candidate) {
            anchors.append(candidate)
        }
        return anchors
    }

    private func configuredAnchors(among serverCertificates: [Certificate]) -> [Certificate] {
        var anchors = pinnedCertificates.filter { fingerprints.isEmpty || fingerprints.contains(Self.fingerprint(of: $0)) }
        if pinnedCertificates.isEmpty {
            anchors = serverCertificates.filter { fingerprints.contains(Self.fingerprint(of: $0)) }
        }
        return anchors
    }
}
