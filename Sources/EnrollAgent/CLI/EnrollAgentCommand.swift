import ArgumentParser
import Foundation
import Logging
import SCEPClient

@main
struct EnrollAgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enroll-agent",
        abstract: "SCEP certificate enrollment agent for Linux hosts: TPM-born keys, pinned CA, atomic store.",
        discussion: "Exit codes: 0 ok; 64 usage; 65 the server's reply did not verify; 66 no live certificate (certificate-user-ids); 69 server unreachable or HTTP error; 70 internal error; 71 TPM or key failure; 73 cannot write the store; 75 request pending (run again to poll); 76 no challenge from the provider; 77 the CA refused the request; 78 configuration error.",
        version: "enroll-agent \(AgentVersion.string)",
        subcommands: [EnrollCommand.self, RenewCommand.self, RunCommand.self, StatusCommand.self, CAInfoCommand.self, CheckConfigCommand.self, DoctorCommand.self,
                      ConfigKeysCommand.self, CertificateUserIDsCommand.self])

    static func main() async {
        ProcessHardening.apply()
        await main(nil)
    }
}

/// Options every profile-aware subcommand takes.
struct CommonOptions: ParsableArguments {
    @Option(name: .long, help: "Configuration file.")
    var config: String = AgentConfig.defaultPath

    @Option(name: .long, help: "Only this profile (default: all profiles).")
    var profile: String?

    @Flag(name: .long, help: "Log debug detail.")
    var verbose = false

    /// Loads the configuration and selects the profiles, or fails with exit 78.
    func loadProfiles() throws -> (AgentConfig, [ProfileConfig]) {
        let loaded = try Self.load(config: config)
        if let name = profile {
            guard let selected = loaded.profile(named: name) else {
                let known = loaded.profiles.map(\.name).joined(separator: ", ")
                throw AgentError(.usage, "--profile \(name): no such profile in \(config) (profiles: \(known))")
            }
            return (loaded, [selected])
        }
        return (loaded, loaded.profiles)
    }
}

extension CommonOptions {
    /// The configuration at `config`, or an `AgentError(.config)`.
    static func load(config: String) throws -> AgentConfig {
        do {
            return try AgentConfig.load(path: config)
        } catch {
            throw AgentError(.config, "\(error)")
        }
    }
}

/// Runs a command body and turns `AgentError` into its documented exit code
/// with one line on stderr.
func runReportingErrors(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as AgentError {
        FileHandle.standardError.write(Data(AgentLogging.format.line(.error, error.message).utf8))
        throw ExitCode(error.exitCode)
    }
}

extension CommonOptions {
    /// The body of `enroll` and `renew`: logging set up, configuration loaded
    /// (warnings logged), then `body` for every selected profile, continuing past
    /// failures (one broken profile must not stop the others). One failure is
    /// reported as itself, several as a summary with each logged.
    func runForEachProfile(_ body: @escaping (ProfileEnroller, Logger) async throws -> Void) async throws {
        AgentLogging.bootstrap(verbose: verbose)
        let logger = Logger(label: "enroll-agent")
        try await runReportingErrors {
            let (config, profiles) = try loadProfiles()
            for problem in config.warnings + config.permissionProblems() { logger.warning("\(problem.formatted(path: config.sourcePath))") }
            var failures: [AgentError] = []
            defer { MetricsTextfile.export(config, logger: logger) }
            for profile in profiles {
                do {
                    try await body(ProfileEnroller(config: config, profile: profile, environment: AgentEnvironment(), logger: logger), logger)
                } catch {
                    failures.append(AgentError.wrap(error, profile: profile.name))
                }
            }
            guard let first = failures.first else { return }
            if failures.count == 1 { throw first }
            for failure in failures { logger.error("\(failure.message)") }
            throw AgentError(first.code, "\(failures.count) of \(profiles.count) profiles failed")
        }
    }
}
