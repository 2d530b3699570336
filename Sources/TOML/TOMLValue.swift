import Foundation

/// A value read from a TOML document, with the 1-based line on which it starts
/// (so that every configuration problem can point at a line).
public struct TOMLValue: Equatable, Sendable {
    public enum Kind: Equatable, Sendable {
        case string(String)
        case integer(Int)
        case boolean(Bool)
        case array([TOMLValue])
        case table(TOMLTable)
        /// `[[name]]`: an array of tables, kept apart from inline arrays because
        /// later `[[name]]` headers append to it and `[name.sub]` reaches its last element.
        case tableArray([TOMLTable])
    }

    public var kind: Kind
    public var line: Int

    public init(_ kind: Kind, line: Int) {
        self.kind = kind
        self.line = line
    }

    /// "a string", "an integer", ... for messages such as "expected a string, got an integer".
    public var typeDescription: String {
        switch kind {
        case .string: return "a string"
        case .integer: return "an integer"
        case .boolean: return "a boolean"
        case .array: return "an array"
        case .table: return "a table"
        case .tableArray: return "an array of tables"
        }
    }

    public var stringValue: String? {
        if case .string(let value) = kind { return value }
        return nil
    }

    public var integerValue: Int? {
        if case .integer(let value) = kind { return value }
        return nil
    }

    public var booleanValue: Bool? {
        if case .boolean(let value) = kind { return value }
        return nil
    }

    public var arrayValue: [TOMLValue]? {
        if case .array(let value) = kind { return value }
        return nil
    }

    public var tableValue: TOMLTable? {
        if case .table(let value) = kind { return value }
        return nil
    }

    public var tableArrayValue: [TOMLTable]? {
        if case .tableArray(let value) = kind { return value }
        return nil
    }
}

/// A TOML table: keys in document order, each with its value.
public struct TOMLTable: Equatable, Sendable {
    /// How the table came to exist; TOML allows some redefinitions and forbids others.
    public enum Origin: Equatable, Sendable {
        /// Defined by a `[name]` header.
        case header
        /// Created as the parent of a header (`[a.b]` creates `a`); a later `[a]` may still define it.
        case implicit
        /// Created by a dotted key (`a.b = 1` creates `a`).
        case dotted
        /// An inline table `{ ... }`; closed after its closing brace.
        case inline
        /// An element of an array of tables, created by a `[[name]]` header.
        case arrayElement
    }

    public private(set) var keys: [String] = []
    private var values: [String: TOMLValue] = [:]
    /// Line of the header (or of the first key) that created the table; 0 for the document root.
    public var line: Int
    public var origin: Origin

    public init(line: Int, origin: Origin) {
        self.line = line
        self.origin = origin
    }

    public subscript(key: String) -> TOMLValue? {
        values[key]
    }

    /// The entries in document order.
    public var entries: [(key: String, value: TOMLValue)] {
        keys.compactMap { key in values[key].map { (key, $0) } }
    }

    public var isEmpty: Bool { keys.isEmpty }

    /// Sets `value` for `key`, keeping the key's original position when it already exists.
    public mutating func set(_ key: String, _ value: TOMLValue) {
        if values.updateValue(value, forKey: key) == nil {
            keys.append(key)
        }
    }

    public static func == (lhs: TOMLTable, rhs: TOMLTable) -> Bool {
        lhs.keys == rhs.keys && lhs.values == rhs.values && lhs.line == rhs.line && lhs.origin == rhs.origin
    }
}

/// A TOML syntax error: the line and what was expected there.
public struct TOMLSyntaxError: Error, Equatable, CustomStringConvertible, Sendable {
    public var line: Int
    public var message: String

    public init(line: Int, message: String) {
        self.line = line
        self.message = message
    }

    public var description: String { "line \(line): \(message)" }
}

/// All syntax errors found in a document (the parser resumes at the next line after each).
public struct TOMLSyntaxErrors: Error, Equatable, CustomStringConvertible, Sendable {
    public var errors: [TOMLSyntaxError]

    public var description: String { errors.map(\.description).joined(separator: "\n") }
}

/// A parsed TOML document (the subset the agent's configuration uses; see `TOMLParser`).
public struct TOMLDocument: Equatable, Sendable {
    public var root: TOMLTable

    /// Parses `text`, throwing `TOMLSyntaxErrors` with every syntax error found.
    public static func parse(_ text: String) throws -> TOMLDocument {
        let (document, errors) = parseCollectingErrors(text)
        if !errors.isEmpty {
            throw TOMLSyntaxErrors(errors: errors)
        }
        return document
    }

    /// Parses `text`, returning what could be read together with every syntax error.
    public static func parseCollectingErrors(_ text: String) -> (TOMLDocument, [TOMLSyntaxError]) {
        var parser = TOMLParser(text)
        return parser.parse()
    }
}

/// Renders a key path the way it would be written in TOML (`a.b`, `a."odd key"`).
public func tomlKeyPath(_ components: [String]) -> String {
    components.map { component -> String in
        let isBare = !component.isEmpty && component.unicodeScalars.allSatisfy(TOMLParser.isBareKeyScalar)
        if isBare { return component }
        let escaped = component
            .replacingOccurrences(of: "\\", with: "\\\\")
            .replacingOccurrences(of: "\"", with: "\\\"")
        return "\"\(escaped)\""
    }.joined(separator: ".")
}
