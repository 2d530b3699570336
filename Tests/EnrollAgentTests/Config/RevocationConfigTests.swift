import EnrollmentPlan
import Foundation
import XCTest

@testable import EnrollAgent

/// `revocation_check_interval` and `on_revoked` (issue 10 §3).
final class RevocationConfigTests: XCTestCase {
    private func profile(_ extra: String) -> String {
        """
        [[profile]]
        name = "device"
        scep_url = "https://scep.example.com/scep"
        ca_pin_sha256 = "3f9a000000000000000000000000000000000000000000000000000000000001"
        \(extra)
        [profile.challenge]
        source = "none"
        """
    }

    func testDefaultsAreTwelveHoursAndReenroll() throws {
        let settings = try AgentConfig.parse(profile(""), path: "config.toml").profiles[0].revocation
        XCTAssertEqual(settings.checkInterval, 12 * 3600)
        XCTAssertEqual(settings.onRevoked, .reenroll)
    }

    func testZeroSecondsAndReportAreAccepted() throws {
        let settings = try AgentConfig.parse(profile("revocation_check_interval = \"0s\"\non_revoked = \"report\""), path: "config.toml")
            .profiles[0].revocation
        XCTAssertEqual(settings.checkInterval, 0)
        XCTAssertEqual(settings.onRevoked, .report)
        XCTAssertEqual(try AgentConfig.parse(profile("revocation_check_interval = \"30m\""), path: "config.toml").profiles[0].revocation.checkInterval, 1800)
    }

    func testBadValuesNameTheKeyAndLine() {
        let cases: [(String, String, String)] = [
            ("on_revoked = \"reenrol\"", "profile.device.on_revoked", "did you mean \"reenroll\""),
            ("on_revoked = true", "profile.device.on_revoked", "expected"),
            ("revocation_check_interval = \"soon\"", "profile.device.revocation_check_interval", "soon"),
            ("revocation_check_interval = 12", "profile.device.revocation_check_interval", "duration"),
            ("revocation_check_intervall = \"1h\"", "profile.device.revocation_check_intervall", "revocation_check_interval"),
        ]
        for (line, key, fragment) in cases {
            guard case .failure(let error) = AgentConfig.decode(profile(line), path: "config.toml") else {
                XCTFail("\(line) accepted")
                continue
            }
            XCTAssertEqual(error.problems.count, 1, "\(line): \(error.problems)")
            XCTAssertEqual(error.problems.first?.key, key, line)
            XCTAssertEqual(error.problems.first?.line, 5, line)
            XCTAssertTrue(error.problems.first?.message.contains(fragment) ?? false, "\(line): \(error.problems)")
        }
    }

    /// The shipped example carries both keys with their defaults, and parses.
    func testTheExampleConfigurationNamesTheKeysWithTheirDefaults() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("packaging/config.example.toml").path
        let text = try String(contentsOfFile: path, encoding: .utf8)
        XCTAssertTrue(text.contains("revocation_check_interval = \"12h\""))
        XCTAssertTrue(text.contains("on_revoked = \"reenroll\""))
        if case .failure(let error) = AgentConfig.decode(text, path: path) {
            XCTAssertFalse(error.problems.contains { $0.key.hasSuffix("revocation_check_interval") || $0.key.hasSuffix("on_revoked") }, "\(error.problems)")
        }
    }
}
