import Foundation
import Logging
import SCEPClient

/// One line per event on stderr; journald adds the timestamp and unit.
/// Metadata is printed as key=value so lines stay greppable.
struct StderrLogHandler: LogHandler {
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info
    let label: String

    init(label: String, level: Logger.Level) {
        self.label = label
        self.logLevel = level
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = metadata
        if let explicit = event.metadata { merged.merge(explicit) { _, new in new } }
        let level = event.level, message = event.message
        let fields = merged.sorted { $0.key < $1.key }.map { "\($0.key)=\(ServerText.escaped("\($0.value)"))" }.joined(separator: " ")
        // One event, one line: whatever a server put into a subject or an error text
        // cannot start a line of its own.
        let text = "\(level.rawValue): \(ServerText.escaped("\(message)"))" + (fields.isEmpty ? "" : " [\(fields)]") + "\n"
        FileHandle.standardError.write(Data(text.utf8))
    }
}

enum AgentLogging {
    static func bootstrap(verbose: Bool) {
        let level: Logger.Level = verbose ? .debug : .info
        LoggingSystem.bootstrap { StderrLogHandler(label: $0, level: level) }
    }
}
