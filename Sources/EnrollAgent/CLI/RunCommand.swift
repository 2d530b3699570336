import ArgumentParser
import Foundation
import Logging

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run as a daemon: enroll where needed, then renew each profile when due (systemd Type=notify).",
        discussion: "SIGTERM stops it (exit 0); SIGHUP reloads the configuration.")

    @OptionGroup var options: CommonOptions

    func run() async throws {
        AgentLogging.bootstrap(verbose: options.verbose)
        let logger = Logger(label: "enroll-agent")
        try await runReportingErrors {
            let daemon = AgentDaemon(options: options, environment: AgentEnvironment(), notifier: SystemdNotifier(), logger: logger)
            try await daemon.run()
        }
    }
}
