import CertStore
import KeyInterface
import SCEPClient

/// The one error type of the agent: what went wrong, in words a person acts
/// on, and the exit code that tells scripts and systemd what kind of failure it was.
struct AgentError: Error, CustomStringConvertible {
    enum Code: String {
        case config, challenge, key, store, server, rejected, pending, verification, usage, noCertificate, internalError
    }

    let code: Code
    /// What went wrong, without the profile name.
    let reason: String
    /// The profile it happened in, when there is one.
    let profile: String?

    init(_ code: Code, _ reason: String, profile: String? = nil) {
        self.code = code
        self.reason = reason
        self.profile = profile
    }

    /// The full message: `profile "device": <reason>`.
    var message: String { profile.map { "profile \"\($0)\": \(reason)" } ?? reason }
    var description: String { message }

    /// Documented in the README ("Exit codes").
    var exitCode: Int32 { code.exitCode }

    /// Wraps an error from a module with the profile it happened in.
    static func wrap(_ error: Error, profile: String) -> AgentError {
        if let agent = error as? AgentError {
            return agent.profile == nil ? AgentError(agent.code, agent.reason, profile: profile) : agent
        }
        let code: Code
        switch error {
        case let scep as SCEPError:
            switch scep.code {
            case .transport, .unreachable, .httpStatus, .redirect: code = .server
            case .rejectedByServer: code = .rejected
            case .pollTimeout: code = .pending
            case .weakAlgorithmsRefused, .invalidRequest: code = .config
            case .untrustedCertificate, .badSignature, .replyMismatch, .wrongCertificate, .malformedReply,
                 .unsupportedAlgorithm, .decryptionFailed, .resourceLimit, .unusableCRL: code = .verification
            case .crypto: code = .internalError
            }
        case is CertStoreError: code = .store
        case is any EnrollmentKeyError: code = .key
        case is ConfigError: code = .config
        default: code = .internalError
        }
        return AgentError(code, "\(error)", profile: profile)
    }
}

extension AgentError.Code {
    var exitCode: Int32 {
        switch self {
        case .usage: return 64          // EX_USAGE
        case .verification: return 65   // EX_DATAERR: the server's answer did not verify
        case .noCertificate: return 66  // EX_NOINPUT: no live certificate to read (certificate-user-ids)
        case .server: return 69         // EX_UNAVAILABLE: server unreachable or HTTP error
        case .rejected: return 77       // EX_NOPERM: the CA refused (challenge, policy)
        case .store: return 73          // EX_CANTCREAT: cannot write the store
        case .pending: return 75        // EX_TEMPFAIL: request pending, run again to poll
        case .config: return 78         // EX_CONFIG
        case .challenge: return 76      // EX_PROTOCOL: no challenge from the provider
        case .key: return 71            // EX_OSERR: TPM or key failure
        case .internalError: return 70  // EX_SOFTWARE
        }
    }
}
