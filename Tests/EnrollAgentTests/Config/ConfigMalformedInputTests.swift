import XCTest
@testable import EnrollAgent

/// Malformed input must give problems, never a crash or a hang, and every problem
/// must point at a line that exists.
final class ConfigMalformedInputTests: XCTestCase {
    /// SplitMix64: deterministic, so a failure can be replayed.
    private struct SeededGenerator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    private static let alphabet = Array("[]{}\"'=,.#\\\n\r\t abc019_-:+{{}}") + ["é", "\u{0}"]

    func testMutatedConfigurationsGiveProblemsWithValidLines() {
        var generator = SeededGenerator(state: 8894)
        let original = Array(AgentConfigTests.designExample)
        var invalidCount = 0
        for _ in 0..<1500 {
            var characters = original
            for _ in 0..<Int.random(in: 1...4, using: &generator) {
                let position = Int.random(in: 0..<characters.count, using: &generator)
                switch Int.random(in: 0..<3, using: &generator) {
                case 0: characters.remove(at: position)
                case 1: characters.insert(Self.alphabet.randomElement(using: &generator) ?? "x", at: position)
                default: characters[position] = Self.alphabet.randomElement(using: &generator) ?? "x"
                }
            }
            let text = String(characters)
            let lineCount = text.unicodeScalars.filter { $0 == "\n" }.count + 1
            if case .failure(let error) = AgentConfig.decode(text, path: "fuzz.toml") {
                invalidCount += 1
                XCTAssertFalse(error.problems.isEmpty, text)
                for problem in error.problems {
                    if let line = problem.line {
                        XCTAssertTrue((1...lineCount).contains(line), "line \(line) of \(lineCount): \(problem)\n\(text)")
                    }
                }
            }
        }
        // Most random edits break something; if none did, the mutation itself is broken.
        XCTAssertGreaterThan(invalidCount, 300)
    }

    func testRandomSubjectsAndTemplatesNeverCrash() {
        var generator = SeededGenerator(state: 4514)
        let alphabet = Array("CNOU=,+\\\"#;<> 2Cc{}aé") + ["\u{0}"]
        var parsed = 0
        for _ in 0..<3000 {
            let length = Int.random(in: 0...16, using: &generator)
            let text = String((0..<length).map { _ in alphabet.randomElement(using: &generator) ?? "x" })
            if let subject = try? SubjectName.parse(text) {
                parsed += 1
                // Whatever parses must survive a round trip through its own RFC 4514 string.
                XCTAssertEqual(try? SubjectName.parse(subject.description), subject, text)
            }
            _ = try? TemplateRenderer(variables: ["a": "b"]).render(text)
        }
        XCTAssertGreaterThan(parsed, 0)
    }
}
