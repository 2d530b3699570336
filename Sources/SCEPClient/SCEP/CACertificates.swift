import Foundation
import SwiftASN1
import X509

/// What one certificate of a GetCACert answer is to us, and why.
public enum CertificateRole: Sendable, Equatable {
    /// The pinned issuing CA itself.
    case pinnedCA
    /// A CA certificate that chains to the pinned CA.
    case caOnPath
    /// An RA we encrypt to and accept replies from.
    case trustedRA(RATrustReason)
    /// An end-entity certificate that chains to the pin but is not trusted as an RA:
    /// every enrolled host holds such a certificate.
    case untrustedRA
    /// Neither pinned nor chaining to the pin (the reason says why); never used.
    case ignored(reason: String)

    public var isTrusted: Bool {
        switch self {
        case .pinnedCA, .caOnPath, .trustedRA: return true
        case .untrustedRA, .ignored: return false
        }
    }
}

/// Why an RA certificate is trusted.
public enum RATrustReason: String, Sendable, Equatable {
    /// Its SHA-256 is listed in `ra_pin_sha256`.
    case pinned = "pinned by ra_pin_sha256"
    /// It carries id-kp-cmcRA (1.3.6.1.5.5.7.3.28, RFC 6402).
    case cmcRA = "carries the RA purpose id-kp-cmcRA"
    /// It carries Microsoft's Certificate Request Agent purpose (NDES RA certificates).
    case certificateRequestAgent = "carries the RA purpose Certificate Request Agent (NDES)"
}

/// One certificate of the GetCACert answer with its role.
public struct ClassifiedCertificate: Sendable, Equatable {
    public let certificate: Certificate
    /// Lowercase hex SHA-256 of its DER.
    public let sha256: String
    public let role: CertificateRole

    /// The role and why, in words for `ca-info` and warnings.
    public var explanation: String {
        switch role {
        case .pinnedCA: return "the pinned CA"
        case .caOnPath: return "a CA certificate that chains to the pinned CA"
        case .trustedRA(let reason): return "RA, trusted: \(reason.rawValue)"
        case .untrustedRA:
            return "RA, NOT trusted: it chains to the pinned CA but carries no RA purpose (id-kp-cmcRA or Certificate Request Agent) and is not listed in ra_pin_sha256 — any enrolled host holds a certificate like it"
        case .ignored(let reason): return "ignored: \(reason)"
        }
    }

    /// The config line that would trust this certificate as an RA.
    public var raPinLine: String { CACertificates.raPinLine([self]) }

    var isCA: Bool { CACertificates.isCA(certificate) }
}

/// The GetCACert answer (RFC 8894 §4.2.1), checked against the pin, with the roles SCEP
/// needs picked out: who we encrypt to, and who may sign replies.
///
/// Chaining to the pin is not enough for an RA: every enrolled host holds a certificate
/// that chains to the pin. An RA is trusted only when its SHA-256 is pinned
/// (`ra_pin_sha256`) or it carries an RA purpose (id-kp-cmcRA, or Microsoft's Certificate
/// Request Agent, which NDES RA certificates carry). Without any RA in the answer the CA
/// itself is the recipient and signer (micromdm scepserver, step-ca).
public struct CACertificates: Sendable {
    /// Everything the server sent, in order.
    public let all: [Certificate]
    /// Every certificate with its role, in the server's order.
    public let classified: [ClassifiedCertificate]
    /// The pinned CA certificate the chain ends at (the issuer we expect for our certificate).
    public let issuingCA: Certificate
    /// The certificate our request's envelope is encrypted to (a trusted RA, or the CA without an RA).
    public let encryptionRecipient: Certificate
    /// Certificates allowed to sign CertReps: trusted RAs and the CA certificates on the pin's path.
    public let replySigners: [Certificate]
    /// CA certificates to present as intermediates when validating what the server issues.
    public let chain: [Certificate]

    /// The certificates the server sent that are not used, with why (for warnings).
    public var untrusted: [ClassifiedCertificate] { classified.filter { !$0.role.isTrusted } }

    /// Parses a GetCACert reply body: a single DER certificate
    /// (`application/x-x509-ca-cert`) or a degenerate certs-only PKCS#7
    /// (`application/x-x509-ca-ra-cert`). The content type is only a hint; the
    /// bytes decide. BER is accepted.
    public static func parseReply(_ body: [UInt8]) throws -> [Certificate] {
        guard !body.isEmpty else { throw SCEPError(.malformedReply, "GetCACert returned an empty body") }
        if let single = try? Certificate(derEncoded: body) { return [single] }
        do {
            let contentInfo = try ContentInfo(berEncoded: body)
            guard contentInfo.contentType == OID.signedData else {
                throw SCEPError(.malformedReply, "GetCACert returned a PKCS#7 of type \(contentInfo.contentType), not SignedData")
            }
            let signedData = try SignedData(berEncoded: Self.bytes(of: contentInfo.content))
            let certificates = try (signedData.certificates ?? []).map { try Certificate(derEncoded: Self.bytes(of: $0)) }
            guard !certificates.isEmpty else {
                throw SCEPError(.malformedReply, "GetCACert returned a PKCS#7 without certificates")
            }
            return certificates
        } catch let error as SCEPError {
            throw error
        } catch {
            throw SCEPError(.malformedReply, "GetCACert reply is neither a DER certificate nor a certs-only PKCS#7: \(error)")
        }
    }

    static func bytes(of any: ASN1Any) throws -> [UInt8] {
        var serializer = DER.Serializer()
        try serializer.serialize(any)
        return serializer.serializedBytes
    }

    /// Gives every certificate a role (see the type's documentation), without any choice
    /// of recipient yet: what `ca-info` shows.
    public static func classify(_ certificates: [Certificate], pin: PinnedCA, window: ValidityWindow,
                                limits: PathBuildingLimits = PathBuildingLimits()) async throws -> [ClassifiedCertificate] {
        let anchors = pin.anchors(among: certificates)
        guard !anchors.isEmpty else {
            throw SCEPError(.untrustedCertificate,
                            "none of the server's CA certificates matches the pinned CA (pins: \(pin.fingerprints.joined(separator: ", "))); "
                            + "check ca_pin_file / ca_pin_sha256 against `enroll-agent ca-info`")
        }
        let builder = try CertificatePathBuilder(anchors: anchors, candidates: certificates, window: window, limits: limits)
        var classified: [ClassifiedCertificate] = []
        for certificate in certificates {
            let sha256 = PinnedCA.fingerprint(of: certificate)
            let role: CertificateRole
            if anchors.contains(certificate) {
                role = window.problem(with: certificate).map { .ignored(reason: "the pinned CA \($0)") } ?? .pinnedCA
            } else {
                let chains: Result<[Certificate], SCEPError>
                do {
                    chains = .success(try await builder.path(from: certificate, role: isCA(certificate) ? "CA" : "RA"))
                } catch let error as SCEPError where error.code == .untrustedCertificate {
                    chains = .failure(error)
                }
                role = Self.role(of: certificate, sha256: sha256, chains: chains, pin: pin, window: window)
            }
            classified.append(ClassifiedCertificate(certificate: certificate, sha256: sha256, role: role))
        }
        return classified
    }

    private static func role(of certificate: Certificate, sha256: String, chains: Result<[Certificate], SCEPError>,
                             pin: PinnedCA, window: ValidityWindow) -> CertificateRole {
        if isCA(certificate) {
            switch chains {
            case .success: return .caOnPath
            case .failure(let error): return .ignored(reason: error.message)
            }
        }
        // An RA pinned by its own fingerprint is trusted like the CA pin: the administrator
        // checked it out of band. It must still be valid.
        if pin.raFingerprints.contains(sha256) {
            if let problem = window.problem(with: certificate) { return .ignored(reason: "the pinned RA \(problem)") }
            return .trustedRA(.pinned)
        }
        switch chains {
        case .failure(let error):
            return .ignored(reason: error.message)
        case .success:
            if let reason = raPurpose(of: certificate) { return .trustedRA(reason) }
            return .untrustedRA
        }
    }

    /// Checks every certificate against the pin and assigns the roles.
    ///
    /// NDES-style RAs carry one key usage each: keyEncipherment for the envelope,
    /// digitalSignature for reply signing. When the server offers RAs but none is
    /// trusted, nothing may be sent: the error names each RA and the `ra_pin_sha256`
    /// line that would trust it once checked out of band.
    public static func validated(_ certificates: [Certificate], pin: PinnedCA, window: ValidityWindow,
                                 limits: PathBuildingLimits = PathBuildingLimits()) async throws -> CACertificates {
        let classified = try await classify(certificates, pin: pin, window: window, limits: limits)
        let trusted = classified.filter { $0.role.isTrusted }.map(\.certificate)
        // Only certificates the server actually sent are used: a pinned CA the server
        // does not present must never become our envelope recipient.
        guard let issuingCA = classified.first(where: { $0.role == .pinnedCA })?.certificate
                ?? pin.anchors(among: certificates).first(where: { anchor in trusted.contains { $0.issuer == anchor.subject } }) else {
            let reasons = classified.map { "\(CertificatePathBuilder.name($0.certificate)): \($0.explanation)" }
            throw SCEPError(.untrustedCertificate,
                            "none of the server's certificates is or chains to the pinned CA (\(reasons.joined(separator: "; "))); "
                            + "check ca_pin_file / ca_pin_sha256 against `enroll-agent ca-info`")
        }
        let trustedRAs = classified.filter { if case .trustedRA = $0.role { return true }; return false }.map(\.certificate)
        // RAs of this CA the server offers (trusted or not); a certificate that does not
        // chain to the pin at all is noise and only ignored, with a warning.
        let offeredRAs = classified.filter { entry in
            switch entry.role {
            case .trustedRA, .untrustedRA: return true
            case .pinnedCA, .caOnPath, .ignored: return false
            }
        }
        let trustedCAs = classified.filter { $0.role == .pinnedCA || $0.role == .caOnPath }.map(\.certificate)

        let encryptionRecipient: Certificate
        if let ra = trustedRAs.first(where: { allows($0, \.keyEncipherment) }) {
            encryptionRecipient = ra
        } else if offeredRAs.isEmpty {
            // No RA in the answer: the CA decrypts (step-ca's CA has no keyEncipherment and still does).
            encryptionRecipient = trustedCAs.first(where: { $0 == issuingCA }) ?? trustedCAs.first ?? issuingCA
        } else {
            throw noUsableRA(offeredRAs)
        }
        var signers = trustedRAs.filter { allows($0, \.digitalSignature) }
        signers.append(contentsOf: trustedCAs.filter { !signers.contains($0) })
        let chain = trustedCAs.filter { $0 != issuingCA } + [issuingCA]
        return CACertificates(
            all: certificates, classified: classified, issuingCA: issuingCA, encryptionRecipient: encryptionRecipient,
            replySigners: signers, chain: chain)
    }

    /// The server says it uses an RA (it sent end-entity certificates) but none can take
    /// the request: sending it to the CA would fail, sending it to an untrusted RA would
    /// hand the challenge to whoever holds that certificate.
    private static func noUsableRA(_ offered: [ClassifiedCertificate]) -> SCEPError {
        let untrusted = offered.filter { !$0.role.isTrusted }
        guard !untrusted.isEmpty else {
            return SCEPError(.untrustedCertificate,
                             "the server's trusted RA certificates carry no keyEncipherment usage, so no request can be encrypted to them; nothing was sent")
        }
        let listed = untrusted.map { "\(CertificatePathBuilder.name($0.certificate)) (SHA-256 \($0.sha256)): \($0.explanation)" }
        return SCEPError(.untrustedCertificate,
                         "the server needs an RA but offers none we trust, so the request (and its challenge) was not sent: "
                         + listed.joined(separator: "; ")
                         + ". If these are the server's real RA certificates, check their fingerprints out of band (`enroll-agent ca-info`) and add to the profile: "
                         + raPinLine(untrusted))
    }

    /// `ra_pin_sha256 = ["…", "…"]` for the given certificates.
    public static func raPinLine(_ certificates: [ClassifiedCertificate]) -> String {
        "ra_pin_sha256 = [" + certificates.map { "\"\($0.sha256)\"" }.joined(separator: ", ") + "]"
    }

    /// id-kp-cmcRA (RFC 6402 §2.10).
    static let cmcRA: ASN1ObjectIdentifier = [1, 3, 6, 1, 5, 5, 7, 3, 28]
    /// Microsoft's szOID_ENROLLMENT_AGENT ("Certificate Request Agent"), carried by NDES RA certificates.
    static let certificateRequestAgent: ASN1ObjectIdentifier = [1, 3, 6, 1, 4, 1, 311, 20, 2, 1]

    static func raPurpose(of certificate: Certificate) -> RATrustReason? {
        guard let usages = try? certificate.extensions.extendedKeyUsage else { return nil }
        let oids = usages.map { ASN1ObjectIdentifier($0) }
        if oids.contains(cmcRA) { return .cmcRA }
        if oids.contains(certificateRequestAgent) { return .certificateRequestAgent }
        return nil
    }

    static func isCA(_ certificate: Certificate) -> Bool {
        (try? certificate.extensions.basicConstraints).flatMap { constraints -> Bool? in
            if case .isCertificateAuthority = constraints { return true }
            return false
        } ?? false
    }

    /// True when the certificate has no keyUsage (no restriction) or has the bit.
    static func allows(_ certificate: Certificate, _ bit: KeyPath<KeyUsage, Bool>) -> Bool {
        guard let usage = try? certificate.extensions.keyUsage else { return true }
        return usage[keyPath: bit]
    }
}
