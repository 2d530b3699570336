import Foundation
import Logging

/// Runs the profile's `post_install` command after a new generation is live
/// (e.g. `systemctl reload nginx`). Its result is logged; a failing hook does
/// not roll the certificate back — the new certificate is valid either way.
struct PostInstallHook {
    let argv: [String]
    /// `hook_environment`: variables passed on from the agent's environment.
    var passedThrough: [String] = []
    var timeout: TimeInterval = 300

    /// PATH when the agent itself has none (systemd always sets one).
    static let defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    /// The hook's whole environment: PATH, the ENROLL_AGENT_* variables and what
    /// `hook_environment` names. Nothing else of the agent's environment (credentials for
    /// the endpoint or a proxy, NOTIFY_SOCKET, …) reaches a program the store's owner may
    /// have written.
    ///
    /// `ENROLL_AGENT_CERTIFICATE_USER_ID` is the new certificate's high-affinity
    /// IssuerAndSerialNumber value for Microsoft Entra's `certificateUserIds`
    /// (`X509:<I>…<SR>…`), so a fleet's tooling can set it on the user through Graph.
    static func environment(inherited: [String: String], passedThrough: [String], profile: String,
                            paths: (certificate: String, key: String, fullchain: String),
                            certificateUserID: String? = nil) -> [String: String] {
        var environment: [String: String] = ["PATH": inherited["PATH"] ?? defaultPath]
        for name in passedThrough {
            if let value = inherited[name] { environment[name] = value }
        }
        environment["ENROLL_AGENT_PROFILE"] = profile
        environment["ENROLL_AGENT_CERTIFICATE"] = paths.certificate
        environment["ENROLL_AGENT_KEY"] = paths.key
        environment["ENROLL_AGENT_FULLCHAIN"] = paths.fullchain
        if let certificateUserID { environment["ENROLL_AGENT_CERTIFICATE_USER_ID"] = certificateUserID }
        return environment
    }

    /// The installed certificate's IssuerAndSerialNumber value, read back from the file the
    /// hook is told about (so the variable always describes that file); nil, with a
    /// warning, when it cannot be read — the hook still runs.
    static func certificateUserID(certificatePath: String, logger: Logger) -> String? {
        do {
            let pem = try String(contentsOfFile: certificatePath, encoding: .utf8)
            guard let certificate = try parsePEMCertificates(pem).first else {
                logger.warning("\(certificatePath) holds no certificate; ENROLL_AGENT_CERTIFICATE_USER_ID is not set for the post_install hook")
                return nil
            }
            return CertificateUserIDs(certificate: certificate).issuerAndSerialNumber.value
        } catch {
            logger.warning("cannot read \(certificatePath) (\(error)); ENROLL_AGENT_CERTIFICATE_USER_ID is not set for the post_install hook")
            return nil
        }
    }

    /// Returns the exit status (nil when the hook could not run, was stopped or ended by a
    /// signal). Cancelling the calling task stops the hook and everything it started.
    @discardableResult
    func run(profile: String, paths: (certificate: String, key: String, fullchain: String), logger: Logger) async -> Int32? {
        guard let executable = argv.first else { return nil }
        let environment = Self.environment(inherited: ProcessInfo.processInfo.environment, passedThrough: passedThrough,
                                           profile: profile, paths: paths,
                                           certificateUserID: Self.certificateUserID(certificatePath: paths.certificate, logger: logger))
        let status: Int32
        do {
            switch try await ChildCommand(argv: argv, environment: environment, timeout: .seconds(timeout)).run() {
            case .timedOut:
                logger.error("post_install hook \(executable) did not finish within \(Int(timeout)) s and was stopped; the new certificate stays installed")
                return nil
            case .signaled(let signal):
                logger.error("post_install hook \(executable) was ended by signal \(signal); the new certificate stays installed")
                return nil
            case .exited(let code, _):
                status = code
            }
        } catch is CancellationError {
            logger.warning("post_install hook \(executable) was stopped because the agent is stopping or reloading; the new certificate stays installed")
            return nil
        } catch {
            logger.error("post_install hook \(executable) could not start: \(error); the new certificate stays installed")
            return nil
        }
        if status == 0 {
            logger.info("post_install hook succeeded", metadata: ["hook": "\(executable)"])
        } else {
            logger.error("post_install hook \(executable) exited with status \(status); the new certificate stays installed")
        }
        return status
    }
}
