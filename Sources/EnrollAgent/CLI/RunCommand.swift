import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle

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
            // SIGTERM and SIGINT: graceful shutdown of the daemon (SIGHUP is the daemon's own).
            var quiet = logger
            quiet.logLevel = .warning
            let group = ServiceGroup(services: [daemon], gracefulShutdownSignals: [.sigterm, .sigint], logger: quiet)
            do {
                try await group.run()
            } catch let error as AgentError {
                throw error
            } catch let error as ServiceGroupError {
                throw AgentError(.internalError, "the daemon stopped unexpectedly: \(error)")
            }
        }
    }
}
