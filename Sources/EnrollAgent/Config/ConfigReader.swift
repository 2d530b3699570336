import Foundation
import TOML

/// Collects problems while the configuration is decoded, so that all are reported at once.
final class ProblemCollector {
    private(set) var problems: [ConfigProblem] = []

    func add(_ problem: ConfigProblem) {
        problems.append(problem)
    }

    var errorCount: Int { problems.filter(\.isError).count }
}

/// Where keys being read live: the document root, a `[[profile]]`, or a table inside one.
struct ConfigScope {
    /// `profile "device"` / `profile #2`; nil at the document root.
    var profileLabel: String?
    /// Prefix of full key paths: "" at the root, `profile.device.` or `profile[2].`.
    var keyPrefix: String
    /// Prefix of keys inside the profile: "" or `challenge.`.
    var localPrefix: String = ""

    static let root = ConfigScope(profileLabel: nil, keyPrefix: "")

    func nested(_ table: String) -> ConfigScope {
        var scope = self
        scope.localPrefix += table + "."
        return scope
    }

    func problem(_ key: String, line: Int?, _ message: String, severity: ConfigProblem.Severity = .error) -> ConfigProblem {
        let local = localPrefix + key
        return ConfigProblem(severity: severity, line: line, key: keyPrefix + local,
                             profileLabel: profileLabel, localKey: local, message: message)
    }
}

/// Typed access to one table's keys; a wrong type becomes a problem and reads as nil.
struct ConfigTableReader {
    let table: TOMLTable
    let scope: ConfigScope
    let problems: ProblemCollector

    func report(_ key: String, line: Int?, _ message: String, severity: ConfigProblem.Severity = .error) {
        problems.add(scope.problem(key, line: line, message, severity: severity))
    }

    /// Reports a required key that is absent, at the table's header line.
    func reportMissing(_ key: String, _ message: String) {
        report(key, line: table.line > 0 ? table.line : nil, "missing required key; \(message)")
    }

    private func reportType(_ key: String, _ value: TOMLValue, expected: String) {
        report(key, line: value.line, "expected \(expected), got \(value.typeDescription)")
    }

    func string(_ key: String, expected: String = "a string") -> (value: String, line: Int)? {
        guard let value = table[key] else { return nil }
        guard let string = value.stringValue else {
            reportType(key, value, expected: expected)
            return nil
        }
        return (string, value.line)
    }

    func integer(_ key: String) -> (value: Int, line: Int)? {
        guard let value = table[key] else { return nil }
        guard let integer = value.integerValue else {
            reportType(key, value, expected: "an integer")
            return nil
        }
        return (integer, value.line)
    }

    func boolean(_ key: String) -> Bool? {
        guard let value = table[key] else { return nil }
        guard let boolean = value.booleanValue else {
            reportType(key, value, expected: "true or false")
            return nil
        }
        return boolean
    }

    /// An array whose elements are all strings (each with its line).
    func stringArray(_ key: String, acceptSingleString: Bool = false) -> (values: [(String, Int)], line: Int)? {
        guard let value = table[key] else { return nil }
        if acceptSingleString, let string = value.stringValue {
            return ([(string, value.line)], value.line)
        }
        guard let elements = value.arrayValue else {
            reportType(key, value, expected: acceptSingleString ? "a string or an array of strings" : "an array of strings")
            return nil
        }
        var strings: [(String, Int)] = []
        var valid = true
        for (position, element) in elements.enumerated() {
            if let string = element.stringValue {
                strings.append((string, element.line))
            } else {
                report(key, line: element.line,
                       "expected an array of strings, element \(position + 1) is \(element.typeDescription)")
                valid = false
            }
        }
        return valid ? (strings, value.line) : nil
    }

    /// A sub-table (`[profile.challenge]` or an inline table).
    func table(_ key: String) -> TOMLTable? {
        guard let value = table[key] else { return nil }
        guard let sub = value.tableValue else {
            reportType(key, value, expected: "a table ([\(scope.profileLabel == nil ? "" : "profile.")\(scope.localPrefix)\(key)])")
            return nil
        }
        return sub
    }

    /// One of a fixed set of strings.
    func enumeration<E: RawRepresentable & CaseIterable>(_ key: String, _ type: E.Type) -> E? where E.RawValue == String {
        guard let (text, line) = string(key) else { return nil }
        if let value = E(rawValue: text) { return value }
        let choices = E.allCases.map(\.rawValue)
        report(key, line: line, "expected \(Self.choiceList(choices)), got \"\(text)\"\(didYouMean(text, among: choices))")
        return nil
    }

    /// An absolute file path.
    func absolutePath(_ key: String) -> String? {
        guard let (path, line) = string(key) else { return nil }
        guard path.hasPrefix("/") else {
            report(key, line: line, "expected an absolute path (starting with /), got \"\(path)\"")
            return nil
        }
        return path
    }

    /// A duration string, in seconds.
    func duration(_ key: String, allowZero: Bool = false) -> TimeInterval? {
        guard let (text, line) = string(key, expected: "a duration string such as \"30d\" or \"12h\"") else { return nil }
        do {
            let seconds = try ConfigDuration.seconds(from: text)
            guard seconds > 0 || allowZero else {
                report(key, line: line, "expected a duration greater than zero, got \"\(text)\"")
                return nil
            }
            return seconds
        } catch let error as InvalidConfigValue {
            report(key, line: line, error.message)
        } catch {
            report(key, line: line, "\(error)")
        }
        return nil
    }

    /// An argv array: at least one element, the first an absolute path.
    func argv(_ key: String, allowEmpty: Bool) -> [String]? {
        guard let (values, line) = stringArray(key) else { return nil }
        guard let (program, programLine) = values.first else {
            if !allowEmpty {
                report(key, line: line, "expected a command as an array: [\"/absolute/path/to/program\", \"arg\", ...]")
                return nil
            }
            return []
        }
        guard program.hasPrefix("/") else {
            report(key, line: programLine, "the program (first element) must be an absolute path, got \"\(program)\"")
            return nil
        }
        return values.map(\.0)
    }

    /// Reports every key of the table not in `known`, suggesting the closest known key.
    func reportUnknownKeys(known: [String]) {
        for (key, value) in table.entries where !known.contains(key) {
            report(key, line: value.line, "unknown key\(didYouMean(key, among: known))")
        }
    }

    /// `"a"`, `"a" or "b"`, `"a", "b" or "c"`.
    static func choiceList(_ choices: [String]) -> String {
        let quoted = choices.map { "\"\($0)\"" }
        guard quoted.count > 1 else { return quoted.first ?? "" }
        return quoted.dropLast().joined(separator: ", ") + " or " + (quoted.last ?? "")
    }
}
