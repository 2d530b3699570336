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
        try await options.runForEachProfile { enroller, logger in
            let profile = enroller.profile.name
            switch try await enroller.renew(force: force) {
            case .notDue(let until):
                logger.info("not due", metadata: ["profile": "\(profile)", "renewAt": "\(until)"])
            case .backingOff(let until):
                logger.info("backing off after a failure", metadata: ["profile": "\(profile)", "nextAttempt": "\(until)"])
            case .renewed(_, _, let messageType):
                logger.info("renewed", metadata: ["profile": "\(profile)", "via": "\(messageType.name)"])
            }
        }
    }
}
