import Foundation
import Logging
import TestSupport
import XCTest
@testable import EnrollAgent

/// Under systemd every stderr line gets its own syslog priority, so `journalctl -p err` works;
/// anywhere else the lines carry no prefix.
final class JournalPriorityTests: XCTestCase {
    func testEachLevelHasItsSyslogPriority() {
        let table: [(Logger.Level, Int)] = [
            (.critical, 2), (.error, 3), (.warning, 4), (.notice, 5), (.info, 6), (.debug, 7), (.trace, 7),
        ]
        for (level, priority) in table {
            XCTAssertEqual(LogLineFormat.syslogPriority(level), priority, "\(level)")
            XCTAssertEqual(LogLineFormat(journalPriorities: true).line(level, "m"), "<\(priority)>\(level.rawValue): m\n")
            XCTAssertEqual(LogLineFormat(journalPriorities: false).line(level, "m"), "\(level.rawValue): m\n")
        }
    }

    func testALineStaysOneLineWithItsFields() {
        let line = LogLineFormat(journalPriorities: true).line(.warning, "subject CN=a\nb", fields: ["profile=dev\nice"])
        XCTAssertEqual(line.filter { $0 == "\n" }.count, 1, line)
        XCTAssertTrue(line.hasPrefix("<4>warning: subject CN=a"), line)
    }

    func testJournalStreamMustNameStandardErrorsDeviceAndInode() {
        let cases: [(value: String, matches: Bool)] = [
            ("8:12345", true), ("8:12346", false), ("9:12345", false), ("8:", false), (":12345", false),
            ("8:12345:1", false), ("x:12345", false), ("", false), ("8 :12345", false),
        ]
        for (value, matches) in cases {
            XCTAssertEqual(LogLineFormat.isJournalStream(value, device: 8, inode: 12345), matches, value)
        }
        XCTAssertFalse(LogLineFormat.forStandardError(environment: [:]).journalPriorities)
        XCTAssertFalse(LogLineFormat.forStandardError(environment: ["JOURNAL_STREAM": "0:0"]).journalPriorities)
    }

    /// The binary, with `JOURNAL_STREAM` naming its real stderr (as systemd does): every line
    /// carries a priority and the failure is `<3>`. With a stale value (stderr redirected
    /// elsewhere by a shell), nothing is prefixed.
    func testTheBinaryPrefixesOnlyWhenStderrIsTheJournalStream() throws {
        let directory = try TemporaryDirectory(prefix: "journal")
        defer { directory.remove() }
        let config = directory.appending("config.toml")
        try """
            state_dir = "\(directory.appending("state"))"
            [[profile]]
            name = "device"
            scep_url = "http://127.0.0.1:9/scep"
            ca_pin_sha256 = "\(String(repeating: "ab", count: 32))"
            key_storage = "software"
            http_timeout = "5s"
            [profile.challenge]
            source = "none"
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let agent = try AgentProcess.locateBinary()
        let wrapper = #"JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2) exec "$@""#

        let journal = try ChildProcess.run(executable: "/bin/sh",
                                           arguments: ["-c", wrapper, "sh", agent, "enroll", "--config", config], timeout: 60)
        let journalLines = String(decoding: journal.standardError, as: UTF8.self).split(separator: "\n")
        XCTAssertFalse(journalLines.isEmpty)
        for line in journalLines {
            XCTAssertNotNil(line.range(of: #"^<[2-7]>"#, options: .regularExpression), "unprefixed: \(line)")
        }
        XCTAssertTrue(journalLines.contains { $0.hasPrefix("<3>error: ") }, journalLines.joined(separator: "\n"))

        let stale = try ChildProcess.run(executable: agent, arguments: ["enroll", "--config", config],
                                         extraEnvironment: ["JOURNAL_STREAM": "1:1"], timeout: 60)
        let staleText = String(decoding: stale.standardError, as: UTF8.self)
        XCTAssertTrue(staleText.contains("error: "), staleText)
        XCTAssertFalse(staleText.split(separator: "\n").contains { $0.hasPrefix("<") }, staleText)
    }
}
