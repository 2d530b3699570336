import ArgumentParser
import Foundation
import Logging

struct EnrollCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enroll",
        abstract: "Get a certificate for each profile that has no valid one (no network when it has).")

    @OptionGroup var options: CommonOptions

    @Flag(name: .long, help: "Enroll again even when a valid certificate is installed.")
    var force = false

    func run() async throws {
        AgentLogging.bootstrap(verbose: options.verbose)
        let logger = Logger(label: "enroll-agent")
        try await runReportingErrors {
            let (config, profiles) = try options.loadProfiles()
            for problem in config.warnings { logger.warning("\(problem.formatted(path: config.sourcePath))") }
            try await forEachProfile(profiles, logger: logger) { profile in
                let enroller = ProfileEnroller(config: config, profile: profile, environment: AgentEnvironment(), logger: logger)
                _ = try await enroller.enroll(force: force)
            }
        }
    }
}
