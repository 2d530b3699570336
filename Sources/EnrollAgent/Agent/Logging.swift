import Foundation
import Logging
import SCEPClient

/// One line per event on stderr; journald adds the timestamp and unit.
/// Metadata is printed as key=value so lines stay greppable.
struct StderrLogHandler: LogHandler {
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info
    let label: String
    let format: LogLineFormat

    init(label: String, level: Logger.Level, format: LogLineFormat) {
        self.label = label
        self.logLevel = level
        self.format = format
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = metadata
        if let explicit = event.metadata { merged.merge(explicit) { _, new in new } }
        let fields = merged.sorted { $0.key < $1.key }.map { "\($0.key)=\("\($0.value)")" }
        FileHandle.standardError.write(Data(format.line(event.level, "\(event.message)", fields: fields).utf8))
    }
}

/// How an event becomes a line on stderr.
///
/// Under systemd, stderr is a stream to journald and every line would be filed at the unit's
/// one priority; a `<N>` prefix (sd-daemon(3)) gives each line its own, so
/// `journalctl -p err -u enroll-agent` shows the errors only. The prefix is written only when
/// stderr really is that journal stream (`JOURNAL_STREAM` names its device and inode), so a
/// terminal or a pipe never sees it.
struct LogLineFormat: Equatable, Sendable {
    var journalPriorities: Bool

    /// `<3>error: message [key=value …]` (prefix only for the journal), one line: whatever a
    /// server put into a subject or an error text cannot start a line of its own.
    func line(_ level: Logger.Level, _ message: String, fields: [String] = []) -> String {
        let prefix = journalPriorities ? "<\(Self.syslogPriority(level))>" : ""
        let escapedFields = fields.map(ServerText.escaped).joined(separator: " ")
        return prefix + "\(level.rawValue): \(ServerText.escaped(message))"
            + (escapedFields.isEmpty ? "" : " [\(escapedFields)]") + "\n"
    }

    /// syslog(3) priorities: 2 critical … 7 debug.
    static func syslogPriority(_ level: Logger.Level) -> Int {
        switch level {
        case .critical: return 2
        case .error: return 3
        case .warning: return 4
        case .notice: return 5
        case .info: return 6
        case .debug, .trace: return 7
        }
    }

    /// The format for this process: journal priorities when `JOURNAL_STREAM` ("dev:inode", in
    /// decimal, as systemd sets it) is the device and inode of `standardError`.
    static func forStandardError(environment: [String: String] = ProcessInfo.processInfo.environment,
                                 standardError: Int32 = STDERR_FILENO) -> LogLineFormat {
        guard let stream = environment["JOURNAL_STREAM"] else { return LogLineFormat(journalPriorities: false) }
        var status = stat()
        guard fstat(standardError, &status) == 0 else { return LogLineFormat(journalPriorities: false) }
        return LogLineFormat(journalPriorities: isJournalStream(stream, device: UInt64(status.st_dev), inode: UInt64(status.st_ino)))
    }

    /// Whether `JOURNAL_STREAM`'s value names this device and inode.
    static func isJournalStream(_ value: String, device: UInt64, inode: UInt64) -> Bool {
        let parts = value.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let streamDevice = UInt64(parts[0]), let streamInode = UInt64(parts[1]) else { return false }
        return streamDevice == device && streamInode == inode
    }
}

enum AgentLogging {
    /// Decided once: stderr does not change under a running process.
    static let format = LogLineFormat.forStandardError()

    static func bootstrap(verbose: Bool) {
        let level: Logger.Level = verbose ? .debug : .info
        LoggingSystem.bootstrap { StderrLogHandler(label: $0, level: level, format: format) }
    }
}
