import Foundation
import Logging

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

    func log(level: Logger.Level, message: Logger.Message, metadata explicit: Logger.Metadata?,
             source: String, file: String, function: String, line: UInt) {
        var merged = metadata
        if let explicit { merged.merge(explicit) { _, new in new } }
        let fields = merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        let text = "\(level.rawValue): \(message)" + (fields.isEmpty ? "" : " [\(fields)]") + "\n"
        FileHandle.standardError.write(Data(text.utf8))
    }
}

enum AgentLogging {
    static func bootstrap(verbose: Bool) {
        let level: Logger.Level = verbose ? .debug : .info
        LoggingSystem.bootstrap { StderrLogHandler(label: $0, level: level) }
    }
}
