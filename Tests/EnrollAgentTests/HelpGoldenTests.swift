import Foundation
import XCTest

/// The help text is user interface: a change to it must be deliberate.
/// To accept a change, regenerate with
/// `for c in "" enroll renew run status ca-info check-config config-keys certificate-user-ids doctor; do n=${c:-enroll-agent};
///  .build/debug/enroll-agent $c --help > Tests/Golden/help-$n.txt; done`.
final class HelpGoldenTests: XCTestCase {
    private static let goldenDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Golden")

    func testHelpTextMatchesTheGoldenFiles() throws {
        for subcommand in ["", "enroll", "renew", "run", "status", "ca-info", "check-config", "config-keys", "certificate-user-ids", "doctor"] {
            let name = subcommand.isEmpty ? "enroll-agent" : subcommand
            let expected = try String(contentsOf: Self.goldenDirectory.appendingPathComponent("help-\(name).txt"), encoding: .utf8)
            let run = try AgentProcess.run(arguments: (subcommand.isEmpty ? [] : [subcommand]) + ["--help"], timeout: 30)
            XCTAssertEqual(run.exitCode, 0, run.transcript)
            XCTAssertEqual(run.standardOutput, expected, "help for '\(name)' changed; see the comment above to accept it")
        }
    }

    func testVersion() throws {
        let run = try AgentProcess.run(arguments: ["--version"], timeout: 30)
        XCTAssertEqual(run.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines), "enroll-agent 0.1.0")
    }
}
