import Foundation
import Logging
import SCEPClient
import X509

/// `check-config --contact-server`: which of a profile's configured CA pins (several
/// during a planned CA change) the SCEP server's GetCACert answer matches today. Reads
/// the store (announced next CAs) and changes nothing in it.
enum ServerPinCheck {
    /// One configured pin (or announced candidate) and where the server presents it.
    struct Match: Equatable {
        /// What is pinned, as the config names it.
        let pin: String
        let sha256: String
        /// 1-based position in the server's answer; nil when the server does not present it.
        let presentedAt: Int?
    }

    /// The pure part: every pin against the server's certificates.
    static func matches(pin: PinnedCA, server certificates: [Certificate]) -> [Match] {
        let presented = certificates.map(PinnedCA.fingerprint(of:))
        func position(_ sha256: String) -> Int? { presented.firstIndex(of: sha256).map { $0 + 1 } }
        var matches: [Match] = []
        for certificate in pin.pinnedCertificates {
            let sha256 = PinnedCA.fingerprint(of: certificate)
            matches.append(Match(pin: "ca_pin_file certificate \(name(certificate))", sha256: sha256, presentedAt: position(sha256)))
        }
        for sha256 in pin.fingerprints where !matches.contains(where: { $0.sha256 == sha256 }) {
            matches.append(Match(pin: "ca_pin_sha256", sha256: sha256, presentedAt: position(sha256)))
        }
        for certificate in pin.candidateCertificates {
            let sha256 = PinnedCA.fingerprint(of: certificate)
            guard !matches.contains(where: { $0.sha256 == sha256 }) else { continue }
            matches.append(Match(pin: "announced next CA \(name(certificate)) (next-ca.json)", sha256: sha256, presentedAt: position(sha256)))
        }
        return matches
    }

    /// A certificate in a line: its subject, control characters escaped (the server chose it).
    static func name(_ certificate: Certificate) -> String { "\"\(ServerText.escaped("\(certificate.subject)"))\"" }

    /// Contacts the profile's server; returns the lines to print and, when the chain is
    /// not trusted today or the server cannot be asked, the error.
    static func check(_ profile: ProfileConfig, config: AgentConfig) async -> (lines: [String], error: AgentError?) {
        let runner = ProfileRunner(config: config, profile: profile, environment: AgentEnvironment(), logger: Logger(label: "check-config"))
        var lines = ["profile \"\(profile.name)\": SCEP server \(CurlTransport.redacted(profile.scepURL.absoluteString))"]
        do {
            let pin = try runner.loadPin()
            let service = SCEPService(url: profile.scepURL.absoluteString, transport: try runner.environment.makeTransport(profile))
            let certificates = try await service.caCertificates()
            let found = matches(pin: pin, server: certificates)
            for match in found {
                let where_ = match.presentedAt.map { "matches certificate \($0) of the server's \(certificates.count)" } ?? "not presented by the server today"
                lines.append("  \(match.pin) sha256 \(match.sha256): \(where_)")
            }
            let enrollment = SCEPEnrollment(service: service, pin: pin, allowWeakAlgorithms: profile.allowWeakAlgorithms)
            let server = try await enrollment.discover()
            let issuing = server.certificates.issuingCA
            lines.append("  the server's chain is trusted today: it issues from \(name(issuing)) (sha256 \(PinnedCA.fingerprint(of: issuing)))")
            return (lines, nil)
        } catch {
            let wrapped = AgentError.wrap(error, profile: profile.name)
            lines.append("  error: \(wrapped.reason)")
            return (lines, wrapped)
        }
    }
}
