import Foundation

/// One problem found in the configuration: where it is, which key, and what is expected.
///
/// Printed as `config.toml:12: profile "device": key_bits: expected 2048 or 3072, got 1024`.
struct ConfigProblem: Equatable, Sendable, CustomStringConvertible {
    enum Severity: Equatable, Sendable {
        /// The configuration cannot be used.
        case error
        /// Usable, but the administrator should know (e.g. a challenge endpoint over plain HTTP on loopback).
        case warning
    }

    var severity: Severity
    /// 1-based line in the file; nil when the problem has no single place (e.g. no `[[profile]]` at all).
    var line: Int?
    /// `profile "device"` or `profile #2` for keys inside a `[[profile]]`, else nil.
    var profileLabel: String?
    /// The key inside the profile (`key_bits`, `challenge.url`), or the top-level key; empty for syntax errors.
    var localKey: String
    /// Full dotted key path: `state_dir`, `profile.device.key_bits`, `profile[2].challenge.url`.
    var key: String
    var message: String

    init(severity: Severity = .error, line: Int?, key: String, profileLabel: String? = nil,
         localKey: String? = nil, message: String) {
        self.severity = severity
        self.line = line
        self.key = key
        self.profileLabel = profileLabel
        self.localKey = localKey ?? key
        self.message = message
    }

    var isError: Bool { severity == .error }

    /// `12: profile "device": key_bits: expected ...` (without the file name).
    var description: String {
        formatted(path: nil)
    }

    /// One line: `path:line: [warning: ][profile "x": ][key: ]message`.
    func formatted(path: String?) -> String {
        var parts: [String] = []
        var location = path ?? ""
        if let line {
            location += location.isEmpty ? "\(line)" : ":\(line)"
        }
        if !location.isEmpty { parts.append(location) }
        if severity == .warning { parts.append("warning") }
        if let profileLabel { parts.append(profileLabel) }
        if !localKey.isEmpty { parts.append(localKey) }
        parts.append(message)
        return parts.joined(separator: ": ")
    }
}

/// Why the configuration could not be loaded.
enum ConfigError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The file could not be read at all (missing, permission denied, not UTF-8).
    case unreadable(path: String, reason: String)
    /// The file was read, but has problems; all of them are listed (errors, and any warnings found with them).
    case invalid(path: String, problems: [ConfigProblem])

    var description: String {
        switch self {
        case .unreadable(let path, let reason):
            return "\(path): cannot read the configuration: \(reason)"
        case .invalid(let path, let problems):
            return ConfigProblem.sorted(problems).map { $0.formatted(path: path) }.joined(separator: "\n")
        }
    }

    /// The problems (empty for `unreadable`).
    var problems: [ConfigProblem] {
        if case .invalid(_, let problems) = self { return problems }
        return []
    }
}

extension ConfigProblem {
    /// Problems in file order; problems without a line last; stable otherwise.
    static func sorted(_ problems: [ConfigProblem]) -> [ConfigProblem] {
        problems.enumerated().sorted { lhs, rhs in
            switch (lhs.element.line, rhs.element.line) {
            case let (l?, r?) where l != r: return l < r
            case (_?, nil): return true
            case (nil, _?): return false
            default: return lhs.offset < rhs.offset
            }
        }.map(\.element)
    }
}
