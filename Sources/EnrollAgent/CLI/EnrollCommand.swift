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

    @Flag(name: .long, help: "Give up the request on file (PENDING or unanswered) first; a new one follows where no valid certificate is installed.")
    var abandonPending = false

    func run() async throws {
        try await options.runForEachProfile { enroller, _ in
            _ = try await enroller.enroll(force: force, abandonPending: abandonPending)
        }
    }
}
