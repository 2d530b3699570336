import XCTest
@testable import EnrollAgent

final class ConfigValueParsersTests: XCTestCase {
    func testDurations() throws {
        let cases: [(String, TimeInterval)] = [
            ("30d", 30 * 86_400), ("12h", 43_200), ("90m", 5400), ("45s", 45), ("0s", 0),
            ("1d12h", 129_600), ("2h30m", 9000), ("1d1h1m1s", 90_061), ("100000s", 100_000),
        ]
        for (text, seconds) in cases {
            XCTAssertEqual(try ConfigDuration.seconds(from: text), seconds, text)
        }
    }

    func testBadDurationsSayWhatIsExpected() {
        let cases: [(String, String)] = [
            ("", "got an empty string"),
            ("30", "the number 30 has no unit"),
            ("1d12", "the number 12 has no unit"),
            ("d", "a number must come before 'd'"),
            ("30 d", "' ' is not a unit"),
            ("1w", "'w' is not a unit"),
            ("-5m", "'-' is not a unit"),
            ("1.5h", "'.' is not a unit"),
            ("30m1h", "largest first"),
            ("1h1h", "largest first"),
            ("99999999999999999999d", "too long"),
            ("9999999999999999d", "too long"),
        ]
        for (text, fragment) in cases {
            XCTAssertThrowsError(try ConfigDuration.seconds(from: text), text) { error in
                let message = (error as? InvalidConfigValue)?.message ?? ""
                XCTAssertTrue(message.contains(fragment), "\(text): \"\(message)\" lacks \"\(fragment)\"")
            }
        }
    }

    func testDurationFormatting() {
        XCTAssertEqual(ConfigDuration.format(3600), "1h")
        XCTAssertEqual(ConfigDuration.format(129_600), "1d12h")
        XCTAssertEqual(ConfigDuration.format(90_061), "1d1h1m1s")
        XCTAssertEqual(ConfigDuration.format(0), "0s")
    }

    func testPinNormalization() throws {
        let canonical = "3f9a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8"
        let inputs = [
            canonical,
            canonical.uppercased(),
            stride(from: 0, to: 64, by: 2).map { i -> String in
                let start = canonical.index(canonical.startIndex, offsetBy: i)
                return String(canonical[start..<canonical.index(start, offsetBy: 2)]).uppercased()
            }.joined(separator: ":"),
            "3f9a1b2c 3d4e5f60 718293a4 b5c6d7e8\tf90a1b2c 3d4e5f60 718293a4 b5c6d7e8",
        ]
        for input in inputs {
            XCTAssertEqual(try CAPinFingerprint.normalize(input), canonical, input)
        }
    }

    func testBadPins() {
        let cases: [(String, String)] = [
            ("", "got 0 hex digits"),
            ("3f9a", "got 4 hex digits"),
            (String(repeating: "a", count: 40), "SHA-1"),
            (String(repeating: "a", count: 66), "got 66 hex digits"),
            (String(repeating: "g", count: 64), "not hexadecimal"),
            ("3f-9a", "not hexadecimal"),
        ]
        for (text, fragment) in cases {
            XCTAssertThrowsError(try CAPinFingerprint.normalize(text), text) { error in
                let message = (error as? InvalidConfigValue)?.message ?? ""
                XCTAssertTrue(message.contains(fragment), "\(text): \"\(message)\" lacks \"\(fragment)\"")
            }
        }
    }

    func testObjectIdentifiers() {
        for valid in ["1.3.6.1.5.5.7.3.2", "2.5.4.3", "0.9.2342.19200300.100.1.25", "2.999.1", "1.39"] {
            XCTAssertTrue(ObjectIdentifierText.isValid(valid), valid)
        }
        for invalid in ["", "1", "3.1", "1.40", "1..2", "1.2.", ".1.2", "1.02", "1.2.a", "clientAuth", "1.2.-3"] {
            XCTAssertFalse(ObjectIdentifierText.isValid(invalid), invalid)
        }
    }

    func testLoopbackDetection() throws {
        for (text, loopback) in [("http://127.0.0.1:8080/x", true), ("http://localhost/x", true),
                                 ("http://[::1]:80/x", true), ("http://LOCALHOST/x", true),
                                 ("http://127.0.0.2/x", false), ("http://example.com/x", false),
                                 ("http://localhost.example.com/x", false)] {
            let url = try ConfigURL.parseHTTP(text, allowQuery: true)
            XCTAssertEqual(ConfigURL.isLoopback(url), loopback, text)
        }
    }

    func testSuggestions() {
        XCTAssertEqual(didYouMean("tmp", among: ["tpm", "tpm-preferred", "software"]), "; did you mean \"tpm\"?")
        XCTAssertEqual(didYouMean("hsm", among: ["tpm", "tpm-preferred", "software"]), "")
        XCTAssertEqual(didYouMean("key_bit", among: ProfileKeys.names), "; did you mean \"key_bits\"?")
        XCTAssertEqual(editDistance("clientAuht", "clientAuth"), 1)
        XCTAssertEqual(editDistance("", "abc"), 3)
    }

    /// Found by fuzzing (target config): every unknown key was scored against every known key
    /// with a full edit-distance table, so one 60 KB key took 4 s and a 600 KB config of such
    /// keys 46 s (debug build). Lengths too far apart are now skipped unscored.
    func testALongUnknownKeyIsRefusedQuickly() {
        let started = ContinuousClock.now
        let key = String(repeating: "k", count: 200_000)
        XCTAssertEqual(didYouMean(key, among: ProfileKeys.names), "")
        guard case .failure(let error) = AgentConfig.decode("[[profile]]\nname = \"a\"\n\(key) = 1\nkey_storag = \"tpm\"\n", path: "config.toml") else {
            return XCTFail("a config with an unknown key was accepted")
        }
        XCTAssertTrue(error.problems.contains { $0.message == "unknown key" && $0.line == 3 }, "\(error.problems)")
        XCTAssertTrue(error.problems.contains { $0.message == "unknown key; did you mean \"key_storage\"?" }, "\(error.problems)")
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(2))
    }
}
