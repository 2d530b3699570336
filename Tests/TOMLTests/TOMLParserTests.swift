import XCTest
@testable import TOML

final class TOMLParserTests: XCTestCase {
    private func parse(_ text: String, file: StaticString = #filePath, line: UInt = #line) throws -> TOMLTable {
        try TOMLDocument.parse(text).root
    }

    /// The syntax errors of `text` as (line, message) pairs.
    private func syntaxErrors(_ text: String) -> [TOMLSyntaxError] {
        TOMLDocument.parseCollectingErrors(text).1
    }

    // MARK: - Values

    func testEveryValueKindWithLines() throws {
        let root = try parse("""
        # a comment
        basic = "a \\"quoted\\" \\\\ value\\n\\tend \\u00E9 \\U0001F600"
        literal = 'C:\\no\\escapes "here"'

        positive = 1_000_000
        negative = -42
        plus = +7
        zero = 0
        hex = 0xff
        octal = 0o17
        binary = 0b101
        yes = true
        no = false   # trailing comment
        strings = ["a", 'b', "c,d"]
        integers = [1, 2, 3,]
        empty = []
        nested = [[1, 2], ["x"]]
        inline = { a = "b", c.d = 1 }
        "quoted key" = 1
        'literal key' = 2
        dotted.key.path = "deep"
        """)

        XCTAssertEqual(root["basic"], TOMLValue(.string("a \"quoted\" \\ value\n\tend é 😀"), line: 2))
        XCTAssertEqual(root["literal"], TOMLValue(.string("C:\\no\\escapes \"here\""), line: 3))
        XCTAssertEqual(root["positive"], TOMLValue(.integer(1_000_000), line: 5))
        XCTAssertEqual(root["negative"]?.integerValue, -42)
        XCTAssertEqual(root["plus"]?.integerValue, 7)
        XCTAssertEqual(root["zero"]?.integerValue, 0)
        XCTAssertEqual(root["hex"]?.integerValue, 255)
        XCTAssertEqual(root["octal"]?.integerValue, 15)
        XCTAssertEqual(root["binary"]?.integerValue, 5)
        XCTAssertEqual(root["yes"], TOMLValue(.boolean(true), line: 12))
        XCTAssertEqual(root["no"], TOMLValue(.boolean(false), line: 13))
        XCTAssertEqual(root["strings"]?.arrayValue?.compactMap(\.stringValue), ["a", "b", "c,d"])
        XCTAssertEqual(root["integers"]?.arrayValue?.compactMap(\.integerValue), [1, 2, 3])
        XCTAssertEqual(root["empty"]?.arrayValue, [])
        XCTAssertEqual(root["nested"]?.arrayValue?.first?.arrayValue?.compactMap(\.integerValue), [1, 2])
        XCTAssertEqual(root["nested"]?.arrayValue?.last?.arrayValue?.compactMap(\.stringValue), ["x"])
        let inline = try XCTUnwrap(root["inline"]?.tableValue)
        XCTAssertEqual(inline.origin, .inline)
        XCTAssertEqual(inline["a"]?.stringValue, "b")
        XCTAssertEqual(inline["c"]?.tableValue?["d"]?.integerValue, 1)
        XCTAssertEqual(root["quoted key"]?.integerValue, 1)
        XCTAssertEqual(root["literal key"]?.integerValue, 2)
        XCTAssertEqual(root["dotted"]?.tableValue?["key"]?.tableValue?["path"], TOMLValue(.string("deep"), line: 21))
        XCTAssertEqual(root.entries.map(\.key).first, "basic")
    }

    func testMultiLineArrayRemembersEachElementLine() throws {
        let root = try parse("""
        san_dns = [
          "a.example.com",   # first
          # a comment line
          "b.example.com",
        ]
        after = 1
        """)
        let array = try XCTUnwrap(root["san_dns"])
        XCTAssertEqual(array.line, 1)
        XCTAssertEqual(array.arrayValue?.map(\.line), [2, 4])
        XCTAssertEqual(root["after"]?.line, 6)
    }

    func testCRLFLineEndings() throws {
        let root = try parse("a = 1\r\nb = \"x\"\r\n[t]\r\nc = true\r\n")
        XCTAssertEqual(root["b"], TOMLValue(.string("x"), line: 2))
        XCTAssertEqual(root["t"]?.tableValue?["c"], TOMLValue(.boolean(true), line: 4))
    }

    // MARK: - Tables

    func testTablesAndSubTables() throws {
        let root = try parse("""
        top = 1
        [server]
        host = "a"
        [server.tls]
        verify = true
        [other."quoted part"]
        x = 2
        """)
        let server = try XCTUnwrap(root["server"]?.tableValue)
        XCTAssertEqual(server.line, 2)
        XCTAssertEqual(server["host"]?.stringValue, "a")
        XCTAssertEqual(server["tls"]?.tableValue?["verify"]?.booleanValue, true)
        XCTAssertEqual(server["tls"]?.tableValue?.line, 4)
        XCTAssertEqual(root["other"]?.tableValue?.origin, .implicit)
        XCTAssertEqual(root["other"]?.tableValue?["quoted part"]?.tableValue?["x"]?.integerValue, 2)
    }

    func testParentTableMayBeDefinedAfterItsChild() throws {
        let root = try parse("""
        [a.b]
        x = 1
        [a]
        y = 2
        """)
        let a = try XCTUnwrap(root["a"]?.tableValue)
        XCTAssertEqual(a.origin, .header)
        XCTAssertEqual(a.line, 3)
        XCTAssertEqual(a["y"]?.integerValue, 2)
        XCTAssertEqual(a["b"]?.tableValue?["x"]?.integerValue, 1)
    }

    func testArrayOfTablesWithSubTablesApplyToTheLastElement() throws {
        let root = try parse("""
        [[profile]]
        name = "one"
        [profile.challenge]
        source = "file"
        [profile.variables]
        A = "1"

        [[profile]]
        name = "two"
        [profile.challenge]
        source = "none"
        """)
        let profiles = try XCTUnwrap(root["profile"]?.tableArrayValue)
        XCTAssertEqual(profiles.count, 2)
        XCTAssertEqual(profiles.map(\.line), [1, 8])
        XCTAssertEqual(profiles[0]["name"]?.stringValue, "one")
        XCTAssertEqual(profiles[0]["challenge"]?.tableValue?["source"]?.stringValue, "file")
        XCTAssertEqual(profiles[0]["challenge"]?.tableValue?.line, 3)
        XCTAssertEqual(profiles[0]["variables"]?.tableValue?["A"]?.stringValue, "1")
        XCTAssertEqual(profiles[1]["name"]?.stringValue, "two")
        XCTAssertEqual(profiles[1]["challenge"]?.tableValue?["source"]?.stringValue, "none")
        XCTAssertNil(profiles[1]["variables"])
    }

    func testNestedArrayOfTables() throws {
        let root = try parse("""
        [[a]]
        [[a.b]]
        x = 1
        [[a.b]]
        x = 2
        [[a]]
        """)
        let a = try XCTUnwrap(root["a"]?.tableArrayValue)
        XCTAssertEqual(a.count, 2)
        XCTAssertEqual(a[0]["b"]?.tableArrayValue?.compactMap { $0["x"]?.integerValue }, [1, 2])
        XCTAssertNil(a[1]["b"])
    }

    // MARK: - Errors

    func testDuplicateKeyNamesBothLines() {
        let errors = syntaxErrors("""
        a = 1
        b = 2
        a = 3
        """)
        XCTAssertEqual(errors, [TOMLSyntaxError(line: 3, message: "duplicate key a (first defined on line 1)")])
    }

    func testDuplicateKeysInTablesAndDottedKeys() {
        XCTAssertEqual(syntaxErrors("[t]\nx = 1\n[u]\nx = 1\n[t.s]\ny = 1\ny = 2\n").map(\.line), [7])
        XCTAssertEqual(syntaxErrors("a.b = 1\na.b = 2\n").first?.message, "duplicate key a.b (first defined on line 1)")
        XCTAssertEqual(syntaxErrors("a = 1\na.b = 2\n").first?.line, 2)
        XCTAssertEqual(syntaxErrors("x = { a = 1, a = 2 }").first?.message, "duplicate key a (first defined on line 1)")
    }

    func testTableRedefinitions() {
        XCTAssertEqual(syntaxErrors("[a]\n[a]\n"),
                       [TOMLSyntaxError(line: 2, message: "table [a] is defined twice (first on line 1)")])
        XCTAssertEqual(syntaxErrors("[[a]]\n[a]\n").first?.line, 2)
        XCTAssertTrue(syntaxErrors("[[a]]\n[a]\n").first?.message.contains("array of tables") ?? false)
        XCTAssertEqual(syntaxErrors("[a]\n[[a]]\n").first?.line, 2)
        XCTAssertEqual(syntaxErrors("a = 1\n[a]\n").first?.line, 2)
        XCTAssertEqual(syntaxErrors("a = 1\n[a.b]\n").first?.line, 2)
        XCTAssertEqual(syntaxErrors("a = { x = 1 }\n[a.b]\n").first?.line, 2)
        XCTAssertEqual(syntaxErrors("a.b = 1\n[a]\n").first?.message, "table [a] is already defined by dotted keys on line 1")
        // [profile.challenge] before any [[profile]] makes "profile" a table.
        XCTAssertEqual(syntaxErrors("[profile.challenge]\n[[profile]]\n").first?.line, 2)
    }

    func testSyntaxErrorsNameTheLineAndWhatWasExpected() {
        let cases: [(String, Int, String)] = [
            ("a = 1\nb 2\n", 2, "expected '=' after the key b, found '2'"),
            ("a = \n", 1, "expected a value (string, integer, boolean, array or inline table)"),
            ("a = \"unterminated\n", 1, "unterminated string"),
            ("a = 'unterminated\n", 1, "unterminated literal string"),
            ("\n\na = \"\"\"multi\nline\"\"\"\n", 3, "multi-line strings"),
            ("a = '''multi'''\n", 1, "multi-line literal strings"),
            ("a = tpm\n", 1, "strings must be quoted, e.g. \"tpm\""),
            ("a = 1.5\n", 1, "floating-point numbers are not supported"),
            ("a = 1979-05-27\n", 1, "dates and times are not supported"),
            ("a = 012\n", 1, "leading zeros"),
            ("a = 1__0\n", 1, "'_' in an integer"),
            ("a = 99999999999999999999\n", 1, "too large"),
            ("a = \"bad \\x escape\"\n", 1, "invalid escape sequence \\x"),
            ("a = \"\\u12\"\n", 1, "expected 4 hexadecimal digits"),
            ("a = \"\\uD800\"\n", 1, "not a valid Unicode scalar"),
            ("a = 1 2\n", 1, "expected the end of the line, found '2'"),
            ("[table\n", 1, "expected ']' to close the table header [table"),
            ("[[table]\n", 1, "expected ']]'"),
            ("x = [1, 2\ny = 3\n", 2, "expected ',' or ']' in the array opened on line 1"),
            ("x = [\n  \"a\"\n  \"b\",\n]\n", 3, "expected ',' or ']' in the array opened on line 1"),
            ("x = { a = 1,\n", 1, "expected a key"),
            ("x = { a = 1\n", 1, "inline tables must fit on one line"),
            ("= 1\n", 1, "expected a key"),
            ("a = \"tab\u{01}\"\n", 1, "control character U+0001"),
        ]
        for (text, line, fragment) in cases {
            let errors = syntaxErrors(text)
            XCTAssertEqual(errors.first?.line, line, "for \(text.debugDescription): \(errors)")
            XCTAssertTrue(errors.first?.message.contains(fragment) ?? false,
                          "for \(text.debugDescription): \(errors.first?.message ?? "no error") lacks \(fragment)")
        }
    }

    func testParsingContinuesAfterASyntaxError() {
        let errors = syntaxErrors("""
        a = 1
        b = oops
        c = 3
        d = [1,
             2 3,
             4]
        e = "fine"
        f = 1.5
        a = 2
        """)
        XCTAssertEqual(errors.map(\.line), [2, 5, 8, 9])
    }

    func testParseThrowsAllErrors() {
        XCTAssertThrowsError(try TOMLDocument.parse("a = \nb = x\n")) { error in
            XCTAssertEqual((error as? TOMLSyntaxErrors)?.errors.map(\.line), [1, 2])
            XCTAssertTrue("\(error)".hasPrefix("line 1: expected a value"))
        }
    }

    // MARK: - Bounds on hostile input

    private static let limit = TOMLParser.maximumNesting

    /// `key = [[[ ... 1 ... ]]]`, `depth` arrays deep.
    private static func nestedArrays(_ depth: Int) -> String {
        "a = " + String(repeating: "[", count: depth) + "1" + String(repeating: "]", count: depth)
    }

    /// `key = {b = {b = ... 1 ...}}`, `depth` inline tables deep.
    private static func nestedInlineTables(_ depth: Int) -> String {
        "a = " + String(repeating: "{b = ", count: depth) + "1" + String(repeating: "}", count: depth)
    }

    /// How many arrays / tables deep `value` goes.
    private func depth(of value: TOMLValue?) -> Int {
        var depth = 0
        var current = value
        while let value = current {
            if let first = value.arrayValue?.first {
                current = first
            } else if let inner = value.tableValue?["b"] {
                current = inner
            } else {
                break
            }
            depth += 1
        }
        return depth
    }

    func testNestingAtTheLimitParses() throws {
        XCTAssertEqual(Self.limit, 32)
        XCTAssertEqual(depth(of: try parse(Self.nestedArrays(Self.limit))["a"]), Self.limit)
        XCTAssertEqual(depth(of: try parse(Self.nestedInlineTables(Self.limit))["a"]), Self.limit)
        // Arrays and inline tables count together.
        let half = Self.limit / 2
        let mixed = "a = " + String(repeating: "[", count: half) + String(repeating: "{b = ", count: half)
            + "1" + String(repeating: "}", count: half) + String(repeating: "]", count: half)
        XCTAssertEqual(depth(of: try parse(mixed)["a"]), Self.limit)
        let dotted = (1...Self.limit).map { "k\($0)" }.joined(separator: ".")
        XCTAssertNotNil(try parse("\(dotted) = 1\n[\(dotted.replacingOccurrences(of: "k1.", with: "t1."))]\n")["t1"])
    }

    func testOneLevelPastTheLimitIsAnErrorNamingTheLineAndTheLimit() throws {
        for deep in [Self.nestedArrays(Self.limit + 1), Self.nestedInlineTables(Self.limit + 1)] {
            let (document, errors) = TOMLDocument.parseCollectingErrors("before = 1\n\(deep)\nafter = 2\n")
            XCTAssertEqual(errors.map(\.line), [2], "\(errors)")
            let message = try XCTUnwrap(errors.first?.message)
            XCTAssertTrue(message.contains("more than \(Self.limit) levels"), message)
            XCTAssertTrue(message.contains("flatten the value"), message)
            // The parser resumes after the deep value, as after any syntax error.
            XCTAssertEqual(document.root["after"]?.integerValue, 2)
        }
        let tooManyParts = (1...Self.limit + 1).map { "k\($0)" }.joined(separator: ".")
        for text in ["\(tooManyParts) = 1\n", "x = 1\n[\(tooManyParts)]\n", "x = 1\n[[\(tooManyParts)]]\n"] {
            let errors = syntaxErrors(text)
            XCTAssertEqual(errors.count, 1, "\(errors)")
            XCTAssertEqual(errors.first?.line, text.hasPrefix("x") ? 2 : 1)
            XCTAssertTrue(errors.first?.message.contains("at most \(Self.limit) parts") ?? false, "\(errors)")
        }
    }

    /// 200 KB of brackets used to overflow the stack (SIGSEGV in check-config and on SIGHUP).
    func testHundredThousandLevelsAreAnErrorNotACrash() {
        let levels = 100_000
        let hostile = [
            Self.nestedArrays(levels),
            "a = " + String(repeating: "[", count: levels),                    // never closed
            Self.nestedInlineTables(levels),
            String(repeating: "k.", count: levels) + "k = 1",                  // dotted key
            "[" + String(repeating: "t.", count: levels) + "t]",               // table header
        ]
        for text in hostile {
            let (_, errors) = TOMLDocument.parseCollectingErrors("ok = 1\n\(text)\nlast = 1\n")
            XCTAssertEqual(errors.map(\.line), [2], "\(text.prefix(20))…: \(errors.prefix(3))")
            XCTAssertTrue(errors.first?.message.contains("\(Self.limit)") ?? false, "\(errors.prefix(1))")
        }
    }

    func testKeyPathRendering() {
        XCTAssertEqual(tomlKeyPath(["profile", "key_bits"]), "profile.key_bits")
        XCTAssertEqual(tomlKeyPath(["a", "odd key", "q\""]), "a.\"odd key\".\"q\\\"\"")
    }
}
