import ArgumentParser
import Foundation

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show each profile's installed certificate, key storage, pending request and last error.")

    @OptionGroup var options: CommonOptions

    @Flag(name: .long, help: "Print one JSON document.")
    var json = false

    func run() async throws {
        try await runReportingErrors {
            let (config, profiles) = try options.loadProfiles()
            let now = Date()
            let statuses = profiles.map { ProfileStatus.read(profile: $0, stateDirectory: config.stateDirectory, now: now) }
            if json {
                struct Document: Encodable { let stateDirectory: String; let profiles: [ProfileStatus] }
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                encoder.dateEncodingStrategy = .iso8601
                let data = try encoder.encode(Document(stateDirectory: config.stateDirectory, profiles: statuses))
                print(String(decoding: data, as: UTF8.self))
            } else {
                print(statuses.map(\.text).joined(separator: "\n\n"))
            }
        }
    }
}
