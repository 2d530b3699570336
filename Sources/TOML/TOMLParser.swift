import Foundation

/// A parser for the subset of TOML 1.0 the agent's configuration uses.
///
/// Supported: comments, `key = value` with bare, quoted and dotted keys, `[table]`,
/// `[a.b]`, `[[array.of.tables]]` (a later `[name.sub]` applies to the last element),
/// basic strings with escapes, literal strings, integers (decimal with `_`, `0x`, `0o`,
/// `0b`), booleans, arrays (multi-line, trailing comma) and inline tables.
/// Rejected with a clear message: multi-line strings, floats, dates and times.
///
/// We write our own instead of using a TOML package because every configuration
/// problem must name its line, and because a syntax error should not hide the next
/// one: after an error the parser resumes at the next line.
///
/// The parser and the values it builds recurse once per nesting level, so nesting is
/// bounded (`maximumNesting`): a hostile file of 100 000 `[` must be an error, not a
/// stack overflow that takes the daemon down on SIGHUP.
struct TOMLParser {
    /// How deep arrays and inline tables may nest, and how many parts a dotted key or a
    /// table header may have. Real configurations use two or three levels.
    static let maximumNesting = 32

    private let scalars: [Unicode.Scalar]
    private var index = 0
    private var line = 1
    private var root = TOMLTable(line: 0, origin: .header)
    /// Path of the table that `key = value` lines go to; nil after a bad header,
    /// so that its keys are checked for syntax but not stored in the wrong table.
    private var currentTable: [String]? = []
    private var errors: [TOMLSyntaxError] = []
    /// How many arrays / inline tables are open, so recovery can skip to their end.
    private var openBrackets = 0

    init(_ text: String) {
        scalars = Array(text.unicodeScalars)
    }

    mutating func parse() -> (TOMLDocument, [TOMLSyntaxError]) {
        while !isAtEnd {
            do {
                try parseLine()
            } catch let error as TOMLSyntaxError {
                errors.append(error)
                recoverAfterError()
            } catch {
                errors.append(TOMLSyntaxError(line: line, message: "\(error)"))
                recoverAfterError()
            }
        }
        return (TOMLDocument(root: root), errors)
    }

    // MARK: - Lines

    private mutating func parseLine() throws {
        skipWhitespace()
        guard let scalar = peek() else { return }
        switch scalar {
        case "#", "\n", "\r":
            break
        case "[":
            try parseTableHeader()
        default:
            try parseKeyValueLine()
        }
        try expectEndOfLine()
    }

    private mutating func parseTableHeader() throws {
        let headerLine = line
        advance() // [
        let isArrayOfTables = peek() == "["
        if isArrayOfTables { advance() }
        skipWhitespace()
        let path = try parseKey()
        skipWhitespace()
        let closing = isArrayOfTables ? "]]" : "]"
        for expected in closing.unicodeScalars {
            guard peek() == expected else {
                currentTable = nil
                throw error("expected '\(closing)' to close the table header [\(isArrayOfTables ? "[" : "")\(tomlKeyPath(path))")
            }
            advance()
        }
        currentTable = nil
        try Self.defineTable(in: &root, path: path[...], fullPath: path, line: headerLine,
                             isArrayElement: isArrayOfTables)
        currentTable = path
    }

    private mutating func parseKeyValueLine() throws {
        let (path, value) = try parseKeyValue()
        guard let tablePath = currentTable else { return }
        try Self.withTable(in: &root, path: tablePath[...]) { table in
            try Self.insert(value, at: path[...], fullPath: tablePath + path, into: &table)
        }
    }

    /// `key = value`, as on a line or inside an inline table.
    private mutating func parseKeyValue() throws -> ([String], TOMLValue) {
        let path = try parseKey()
        skipWhitespace()
        guard peek() == "=" else {
            throw error("expected '=' after the key \(tomlKeyPath(path))\(describeFound())")
        }
        advance()
        skipWhitespace()
        let value = try parseValue()
        return (path, value)
    }

    private mutating func expectEndOfLine() throws {
        skipWhitespace()
        if peek() == "#" {
            skipComment()
        }
        guard let scalar = peek() else { return }
        if scalar == "\n" {
            advance()
            line += 1
        } else if scalar == "\r", peek(offset: 1) == "\n" {
            advance(2)
            line += 1
        } else {
            throw error("expected the end of the line\(describeFound())")
        }
    }

    /// Skips the rest of a line that had an error (and the rest of an open array or
    /// inline table), so the next line is parsed on its own.
    private mutating func recoverAfterError() {
        var depth = openBrackets
        openBrackets = 0
        while let scalar = peek() {
            if scalar == "\n" {
                advance()
                line += 1
                if depth == 0 { return }
                continue
            }
            switch scalar {
            case "\"", "'":
                // Skip a quoted run on this line so brackets inside strings do not count.
                advance()
                while let inner = peek(), inner != scalar, inner != "\n" {
                    if inner == "\\", scalar == "\"", peek(offset: 1) != "\n" { advance() }
                    advance()
                }
                if peek() == scalar { advance() }
                continue
            case "#":
                skipComment()
                continue
            case "[", "{":
                if depth > 0 { depth += 1 }
            case "]", "}":
                if depth > 0 { depth -= 1 }
            default:
                break
            }
            advance()
        }
    }

    // MARK: - Keys

    private mutating func parseKey() throws -> [String] {
        var components = [try parseSimpleKey()]
        while true {
            let save = index
            skipWhitespace()
            guard peek() == "." else {
                index = save
                return components
            }
            // Each part is a table level, and tables are built and compared recursively.
            guard components.count < Self.maximumNesting else {
                throw error("a dotted key or table header may have at most \(Self.maximumNesting) parts; "
                            + "use a shorter key (the configuration needs only a few levels)")
            }
            advance()
            skipWhitespace()
            components.append(try parseSimpleKey())
        }
    }

    private mutating func parseSimpleKey() throws -> String {
        switch peek() {
        case "\""?:
            if peek(offset: 1) == "\"", peek(offset: 2) == "\"" {
                throw error("multi-line strings cannot be keys")
            }
            return try parseBasicString()
        case "'"?:
            return try parseLiteralString()
        case let scalar? where Self.isBareKeyScalar(scalar):
            var key = String.UnicodeScalarView()
            while let next = peek(), Self.isBareKeyScalar(next) {
                key.append(next)
                advance()
            }
            return String(key)
        default:
            throw error("expected a key (letters, digits, '_' or '-', or a quoted key)\(describeFound())")
        }
    }

    static func isBareKeyScalar(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case "A"..."Z", "a"..."z", "0"..."9", "_", "-": return true
        default: return false
        }
    }

    // MARK: - Values

    private mutating func parseValue() throws -> TOMLValue {
        let valueLine = line
        guard let scalar = peek(), scalar != "\n", scalar != "\r", scalar != "#" else {
            throw error("expected a value (string, integer, boolean, array or inline table)")
        }
        switch scalar {
        case "\"":
            if peek(offset: 1) == "\"", peek(offset: 2) == "\"" {
                throw error("multi-line strings (\"\"\") are not supported; write the value on one line using \\n escapes")
            }
            return TOMLValue(.string(try parseBasicString()), line: valueLine)
        case "'":
            if peek(offset: 1) == "'", peek(offset: 2) == "'" {
                throw error("multi-line literal strings (''') are not supported; write the value on one line")
            }
            return TOMLValue(.string(try parseLiteralString()), line: valueLine)
        case "[":
            return try parseArray()
        case "{":
            return try parseInlineTable()
        default:
            return try parseScalarToken()
        }
    }

    /// Booleans and numbers; anything else gets a message saying what a value looks like.
    private mutating func parseScalarToken() throws -> TOMLValue {
        let valueLine = line
        var token = String.UnicodeScalarView()
        while let scalar = peek(), !Self.endsToken(scalar) {
            token.append(scalar)
            advance()
        }
        let text = String(token)
        switch text {
        case "true": return TOMLValue(.boolean(true), line: valueLine)
        case "false": return TOMLValue(.boolean(false), line: valueLine)
        default: break
        }
        if let first = text.unicodeScalars.first, first == "+" || first == "-" || ("0"..."9").contains(first) {
            return TOMLValue(.integer(try Self.parseInteger(text, line: valueLine)), line: valueLine)
        }
        if ["inf", "nan"].contains(text) {
            throw TOMLSyntaxError(line: valueLine, message: "floating-point numbers are not supported")
        }
        if text.isEmpty {
            throw error("expected a value (string, integer, boolean, array or inline table)\(describeFound())")
        }
        throw TOMLSyntaxError(line: valueLine, message:
            "expected a value, found '\(text)'; strings must be quoted, e.g. \"\(text)\"")
    }

    private static func endsToken(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case " ", "\t", "\n", "\r", ",", "]", "}", "#", "[", "{", "\"", "'", "=": return true
        default: return false
        }
    }

    private static func parseInteger(_ text: String, line: Int) throws -> Int {
        func fail(_ message: String) -> TOMLSyntaxError {
            TOMLSyntaxError(line: line, message: message)
        }
        let lowered = text.lowercased()
        if lowered.contains(":") || (lowered.dropFirst().contains("-") && !lowered.hasPrefix("0x")) {
            throw fail("dates and times are not supported; write \(text) as a quoted string")
        }
        if !lowered.hasPrefix("0x") && !lowered.hasPrefix("+0x") && !lowered.hasPrefix("-0x")
            && (lowered.contains(".") || lowered.contains("e") || lowered.hasSuffix("inf") || lowered.hasSuffix("nan")) {
            throw fail("floating-point numbers are not supported (got \(text)); use an integer")
        }

        var body = Substring(text)
        var negative = false
        if let sign = body.first, sign == "+" || sign == "-" {
            negative = sign == "-"
            body = body.dropFirst()
        }
        var radix = 10
        for (prefix, base) in [("0x", 16), ("0o", 8), ("0b", 2)] where body.hasPrefix(prefix) {
            guard text.first != "+" && text.first != "-" else {
                throw fail("a sign is not allowed on \(prefix) integers (got \(text))")
            }
            radix = base
            body = body.dropFirst(2)
        }
        guard !body.isEmpty else { throw fail("expected digits in the integer \(text)") }
        guard body.first != "_", body.last != "_", !body.contains("__") else {
            throw fail("'_' in an integer must sit between two digits (got \(text))")
        }
        let digits = body.filter { $0 != "_" }
        if radix == 10, digits.count > 1, digits.first == "0" {
            throw fail("leading zeros are not allowed in integers (got \(text))")
        }
        guard digits.allSatisfy({ $0.isASCII && $0.hexDigitValue.map { $0 < radix } == true }) else {
            throw fail("invalid integer \(text)")
        }
        guard let magnitude = UInt64(digits, radix: radix) else {
            throw fail("integer \(text) is too large")
        }
        if negative {
            guard magnitude <= UInt64(Int64.max) + 1 else { throw fail("integer \(text) is too large") }
            return magnitude == UInt64(Int64.max) + 1 ? Int(Int64.min) : -Int(magnitude)
        }
        guard magnitude <= UInt64(Int64.max) else { throw fail("integer \(text) is too large") }
        return Int(magnitude)
    }

    private mutating func parseArray() throws -> TOMLValue {
        let openLine = line
        try checkNestingBeforeOpening("array")
        advance() // [
        openBrackets += 1
        var elements: [TOMLValue] = []
        while true {
            try skipWhitespaceCommentsAndNewlines()
            if peek() == "]" { break }
            elements.append(try parseValue())
            try skipWhitespaceCommentsAndNewlines()
            if peek() == "," {
                advance()
                continue
            }
            if peek() == "]" { break }
            if isAtEnd {
                throw error("expected ']' to close the array opened on line \(openLine)")
            }
            throw error("expected ',' or ']' in the array opened on line \(openLine)\(describeFound())")
        }
        advance() // ]
        openBrackets -= 1
        return TOMLValue(.array(elements), line: openLine)
    }

    private mutating func parseInlineTable() throws -> TOMLValue {
        let openLine = line
        try checkNestingBeforeOpening("inline table")
        advance() // {
        openBrackets += 1
        var table = TOMLTable(line: openLine, origin: .inline)
        skipWhitespace()
        if peek() == "}" {
            advance()
            openBrackets -= 1
            return TOMLValue(.table(table), line: openLine)
        }
        while true {
            skipWhitespace()
            let (path, value) = try parseKeyValue()
            try Self.insert(value, at: path[...], fullPath: path, into: &table)
            skipWhitespace()
            if peek() == "," {
                advance()
                continue
            }
            if peek() == "}" { break }
            if peek() == "\n" || peek() == "\r" || isAtEnd {
                throw error("expected '}' to close the inline table opened on line \(openLine) (inline tables must fit on one line)")
            }
            throw error("expected ',' or '}' in the inline table\(describeFound())")
        }
        advance() // }
        openBrackets -= 1
        return TOMLValue(.table(table), line: openLine)
    }

    /// Refuses to open one more array or inline table past `maximumNesting`, before any
    /// deeper recursion happens.
    private func checkNestingBeforeOpening(_ what: String) throws {
        guard openBrackets < Self.maximumNesting else {
            throw error("this \(what) is nested more than \(Self.maximumNesting) levels deep in arrays and inline tables; "
                        + "flatten the value (the configuration needs only a few levels)")
        }
    }

    // MARK: - Strings

    private mutating func parseBasicString() throws -> String {
        advance() // "
        var result = String.UnicodeScalarView()
        while true {
            guard let scalar = peek(), scalar != "\n", scalar != "\r" else {
                throw error("unterminated string: expected '\"' before the end of the line (multi-line strings are not supported)")
            }
            advance()
            switch scalar {
            case "\"":
                return String(result)
            case "\\":
                result.append(try parseEscape())
            default:
                try checkAllowedInString(scalar)
                result.append(scalar)
            }
        }
    }

    private mutating func parseEscape() throws -> Unicode.Scalar {
        guard let scalar = peek(), scalar != "\n", scalar != "\r" else {
            throw error("unterminated escape sequence at the end of the line")
        }
        advance()
        switch scalar {
        case "\"": return "\""
        case "\\": return "\\"
        case "n": return "\n"
        case "t": return "\t"
        case "r": return "\r"
        case "b": return "\u{08}"
        case "f": return "\u{0C}"
        case "e": return "\u{1B}"
        case "u": return try parseUnicodeEscape(digits: 4)
        case "U": return try parseUnicodeEscape(digits: 8)
        default:
            throw error("invalid escape sequence \\\(Character(scalar)); allowed: \\\" \\\\ \\n \\t \\r \\b \\f \\uXXXX \\UXXXXXXXX")
        }
    }

    private mutating func parseUnicodeEscape(digits: Int) throws -> Unicode.Scalar {
        var hex = ""
        for _ in 0..<digits {
            guard let scalar = peek(), scalar.properties.isASCIIHexDigit else {
                throw error("expected \(digits) hexadecimal digits after \\\(digits == 4 ? "u" : "U")")
            }
            hex.unicodeScalars.append(scalar)
            advance()
        }
        guard let code = UInt32(hex, radix: 16), let scalar = Unicode.Scalar(code) else {
            throw error("\\\(digits == 4 ? "u" : "U")\(hex) is not a valid Unicode scalar value")
        }
        return scalar
    }

    private mutating func parseLiteralString() throws -> String {
        advance() // '
        var result = String.UnicodeScalarView()
        while true {
            guard let scalar = peek(), scalar != "\n", scalar != "\r" else {
                throw error("unterminated literal string: expected \"'\" before the end of the line (multi-line strings are not supported)")
            }
            advance()
            if scalar == "'" { return String(result) }
            try checkAllowedInString(scalar)
            result.append(scalar)
        }
    }

    private func checkAllowedInString(_ scalar: Unicode.Scalar) throws {
        if (scalar.value < 0x20 && scalar != "\t") || scalar.value == 0x7F {
            throw error(String(format: "control character U+%04X is not allowed in a string; use an escape sequence", scalar.value))
        }
    }

    // MARK: - Tables

    /// Applies a `[path]` or `[[path]]` header to `table`.
    private static func defineTable(in table: inout TOMLTable, path: ArraySlice<String>, fullPath: [String],
                                    line: Int, isArrayElement: Bool) throws {
        guard let key = path.first else { return }
        let prefix = Array(fullPath[..<(fullPath.count - path.count + 1)])
        let isLast = path.count == 1
        let existing = table[key]

        if isLast {
            let newTable = TOMLTable(line: line, origin: isArrayElement ? .arrayElement : .header)
            switch existing?.kind {
            case nil:
                table.set(key, isArrayElement
                    ? TOMLValue(.tableArray([newTable]), line: line)
                    : TOMLValue(.table(newTable), line: line))
            case .tableArray(var elements)? where isArrayElement:
                elements.append(newTable)
                table.set(key, TOMLValue(.tableArray(elements), line: existing?.line ?? line))
            case .table(var defined)? where !isArrayElement && defined.origin == .implicit:
                // `[a.b]` came first and created `a`; `[a]` may define it now, once.
                defined.origin = .header
                defined.line = line
                table.set(key, TOMLValue(.table(defined), line: line))
            case .some(let kind):
                throw TOMLSyntaxError(line: line, message: redefinitionMessage(
                    path: prefix, existing: TOMLValue(kind, line: existing?.line ?? 0), isArrayElement: isArrayElement))
            }
            return
        }

        var child: TOMLValue
        switch existing?.kind {
        case nil:
            child = TOMLValue(.table(TOMLTable(line: line, origin: .implicit)), line: line)
        case .table(let sub)? where sub.origin != .inline:
            child = TOMLValue(.table(sub), line: existing?.line ?? line)
        case .tableArray(let elements)? where !elements.isEmpty:
            child = TOMLValue(.tableArray(elements), line: existing?.line ?? line)
        case .some(let kind):
            let value = TOMLValue(kind, line: existing?.line ?? 0)
            throw TOMLSyntaxError(line: line, message:
                "cannot define [\(tomlKeyPath(fullPath))]: \(tomlKeyPath(prefix)) is already \(value.typeDescription)\(definedOn(value)), not a table")
        }
        try withChildTable(&child) { sub in
            try defineTable(in: &sub, path: path.dropFirst(), fullPath: fullPath, line: line, isArrayElement: isArrayElement)
        }
        table.set(key, child)
    }

    private static func redefinitionMessage(path: [String], existing: TOMLValue, isArrayElement: Bool) -> String {
        let name = tomlKeyPath(path)
        switch existing.kind {
        case .tableArray:
            return "[\(name)] is already an array of tables (defined with [[\(name)]] on line \(existing.line)); use [[\(name)]] to add an element"
        case .table(let table):
            if isArrayElement {
                return "cannot define [[\(name)]]: \(name) is already a table\(definedOn(existing))"
            }
            switch table.origin {
            case .dotted: return "table [\(name)] is already defined by dotted keys on line \(table.line)"
            case .inline: return "table [\(name)] is already defined as an inline table on line \(table.line)"
            default: return "table [\(name)] is defined twice (first on line \(table.line))"
            }
        default:
            return "cannot define [\(isArrayElement ? "[" : "")\(name)\(isArrayElement ? "]" : "")]: \(name) is already \(existing.typeDescription)\(definedOn(existing))"
        }
    }

    private static func definedOn(_ value: TOMLValue) -> String {
        value.line > 0 ? " (line \(value.line))" : ""
    }

    /// Calls `body` on the table at `path` (the last element for arrays of tables).
    private static func withTable(in table: inout TOMLTable, path: ArraySlice<String>,
                                  _ body: (inout TOMLTable) throws -> Void) throws {
        guard let key = path.first else {
            try body(&table)
            return
        }
        guard var child = table[key] else { return }
        try withChildTable(&child) { sub in
            try withTable(in: &sub, path: path.dropFirst(), body)
        }
        table.set(key, child)
    }

    /// Calls `body` on the table held by `value`: the table itself, or the last element of an array of tables.
    private static func withChildTable(_ value: inout TOMLValue, _ body: (inout TOMLTable) throws -> Void) throws {
        switch value.kind {
        case .table(var sub):
            value.kind = .integer(0) // drop the second reference so `sub` is mutated in place
            defer { value.kind = .table(sub) }
            try body(&sub)
        case .tableArray(var elements) where !elements.isEmpty:
            value.kind = .integer(0)
            defer { value.kind = .tableArray(elements) }
            try body(&elements[elements.count - 1])
        default:
            return
        }
    }

    /// Stores `value` at the dotted key `path` inside `table`, creating tables for dotted keys.
    private static func insert(_ value: TOMLValue, at path: ArraySlice<String>, fullPath: [String],
                               into table: inout TOMLTable) throws {
        guard let key = path.first else { return }
        let keyName = tomlKeyPath(Array(fullPath[..<(fullPath.count - path.count + 1)]))
        if path.count == 1 {
            if let existing = table[key] {
                throw TOMLSyntaxError(line: value.line, message:
                    "duplicate key \(keyName) (first defined on line \(existing.line))")
            }
            table.set(key, value)
            return
        }
        var child: TOMLValue
        switch table[key]?.kind {
        case nil:
            child = TOMLValue(.table(TOMLTable(line: value.line, origin: .dotted)), line: value.line)
        case .table(let sub)? where sub.origin == .dotted:
            child = TOMLValue(.table(sub), line: table[key]?.line ?? value.line)
        case .some:
            let existingLine = table[key]?.line ?? 0
            throw TOMLSyntaxError(line: value.line, message:
                "cannot add keys to \(keyName) with a dotted key: it is already defined on line \(existingLine)")
        }
        try withChildTable(&child) { sub in
            try insert(value, at: path.dropFirst(), fullPath: fullPath, into: &sub)
        }
        table.set(key, child)
    }

    // MARK: - Scanning

    private var isAtEnd: Bool { index >= scalars.count }

    private func peek(offset: Int = 0) -> Unicode.Scalar? {
        let position = index + offset
        return position < scalars.count ? scalars[position] : nil
    }

    private mutating func advance(_ count: Int = 1) {
        index = min(index + count, scalars.count)
    }

    private mutating func skipWhitespace() {
        while let scalar = peek(), scalar == " " || scalar == "\t" {
            advance()
        }
    }

    private mutating func skipComment() {
        while let scalar = peek(), scalar != "\n" {
            if scalar == "\r", peek(offset: 1) == "\n" { return }
            advance()
        }
    }

    private mutating func skipWhitespaceCommentsAndNewlines() throws {
        while let scalar = peek() {
            switch scalar {
            case " ", "\t":
                advance()
            case "#":
                skipComment()
            case "\n":
                advance()
                line += 1
            case "\r" where peek(offset: 1) == "\n":
                advance(2)
                line += 1
            default:
                return
            }
        }
    }

    private func error(_ message: String) -> TOMLSyntaxError {
        TOMLSyntaxError(line: line, message: message)
    }

    /// ", found 'x'" / ", found the end of the line" for messages.
    private func describeFound() -> String {
        guard let scalar = peek() else { return ", found the end of the file" }
        switch scalar {
        case "\n", "\r": return ", found the end of the line"
        case "#": return ", found a comment"
        default: return ", found '\(Character(scalar))'"
        }
    }
}
