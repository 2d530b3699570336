import Foundation
import Logging

/// Runs the profile's `post_install` command after a new generation is live
/// (e.g. `systemctl reload nginx`). Its result is logged; a failing hook does
/// not roll the certificate back — the new certificate is valid either way.
struct PostInstallHook {
    let argv: [String]
    var timeout: TimeInterval = 300

    /// Returns the exit status (nil when the hook could not run or timed out).
    @discardableResult
    func run(profile: String, paths: (certificate: String, key: String, fullchain: String), logger: Logger) -> Int32? {
        guard let executable = argv.first else { return nil }
        var environment = ProcessInfo.processInfo.environment
        environment["ENROLL_AGENT_PROFILE"] = profile
        environment["ENROLL_AGENT_CERTIFICATE"] = paths.certificate
        environment["ENROLL_AGENT_KEY"] = paths.key
        environment["ENROLL_AGENT_FULLCHAIN"] = paths.fullchain
        let status: Int32
        do {
            switch try ChildCommand(argv: argv, environment: environment, timeout: timeout).run() {
            case .timedOut:
                logger.error("post_install hook \(executable) did not finish within \(Int(timeout)) s and was stopped; the new certificate stays installed")
                return nil
            case .exited(let code, _):
                status = code
            }
        } catch {
            logger.error("post_install hook \(executable) could not start: \((error as NSError).localizedDescription); the new certificate stays installed")
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
