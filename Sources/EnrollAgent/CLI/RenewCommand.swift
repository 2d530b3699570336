import ArgumentParser
import Foundation
import Logging

struct RenewCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "renew",
        abstract: "Renew each profile's certificate when due (for the timer); exits 0 without network when nothing is due.",
        discussion: "Enrolls a profile that has no certificate, resumes a pending request, and backs off after failures.")

    @OptionGroup var options: CommonOptions

    @Flag(name: .long, help: "Renew now even when not due.")
    var force = false

    func run() async throws {
        AgentLogging.bootstrap(verbose: options.verbose)
        let logger = Logger(label: "enroll-agent")
        try await runReportingErrors {
            let (config, profiles) = try options.loadProfiles()
            try await forEachProfile(profiles, logger: logger) { profile in
                let enroller = ProfileEnroller(config: config, profile: profile, environment: AgentEnvironment(), logger: logger)
                switch try await enroller.renew(force: force) {
                case .notDue(let until):
                    logger.info("not due", metadata: ["profile": "\(profile.name)", "renewAt": "\(until)"])
                case .backingOff(let until):
                    logger.info("backing off after a failure", metadata: ["profile": "\(profile.name)", "nextAttempt": "\(until)"])
                case .renewed(_, _, let messageType):
                    logger.info("renewed", metadata: ["profile": "\(profile.name)", "via": "\(messageType.name)"])
                }
            }
        }
    }
}
