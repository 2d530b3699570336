import ArgumentParser
import CertStore
import Foundation
import Renewal

struct CheckConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Check the configuration and the files it names; print every problem with its key and line.")

    @OptionGroup var options: CommonOptions

    @Flag(name: .customLong("contact-server"),
          help: "Also contact each profile's SCEP server (GetCACert) and say which of the configured CA pins its chain matches today. Without it, check-config stays offline.")
    var contactServer = false

    func run() async throws {
        let config: AgentConfig
        do {
            config = try AgentConfig.load(path: options.config)
        } catch let error as ConfigError {
            print(error.description)
            throw ExitCode(AgentError.Code.config.exitCode)
        }
        let problems = config.warnings + config.validateEnvironment() + renewalProblems(config)
        for problem in ConfigProblem.sorted(problems) {
            print(problem.formatted(path: options.config))
        }
        if problems.contains(where: \.isError) {
            throw ExitCode(AgentError.Code.config.exitCode)
        }
        if contactServer {
            var firstError: AgentError?
            for profile in config.profiles where options.profile == nil || options.profile == profile.name {
                let (lines, error) = await ServerPinCheck.check(profile, config: config)
                print(lines.joined(separator: "\n"))
                firstError = firstError ?? error
            }
            if let firstError { throw ExitCode(firstError.exitCode) }
        }
        print("\(options.config): OK (\(config.profiles.count) profile\(config.profiles.count == 1 ? "" : "s"): \(config.profiles.map(\.name).joined(separator: ", ")))")
    }

    /// renew_before, renewal_threshold_percent and renew_jitter, together and against the
    /// installed certificate's lifetime (known only once one is installed): a renew_before at
    /// least as long as the lifetime would renew continuously, and renew_before with a
    /// threshold is two answers to one question; the schedule ignores one — say so here.
    private func renewalProblems(_ config: AgentConfig) -> [ConfigProblem] {
        config.profiles.flatMap { profile -> [ConfigProblem] in
            let policy = profile.renewalPolicy
            let directory = config.stateDirectory + "/" + profile.name
            var lifetime: CertificateLifetime? = nil
            // Read-only: check-config changes nothing in the store.
            if FileManager.default.fileExists(atPath: directory),
               let live = try? LiveCertificate.load(from: ProfileStore(readingFrom: directory)) {
                lifetime = CertificateLifetime(notBefore: live.certificate.notValidBefore, notAfter: live.certificate.notValidAfter)
            }
            return RenewalSchedule.validate(policy, lifetime: lifetime).map { problem in
                let key = problem.configKey
                return ConfigProblem(line: profile.line(of: key), key: "profile.\(profile.name).\(key)",
                                     profileLabel: "profile \"\(profile.name)\"", localKey: key, message: problem.description)
            }
        }
    }
}
