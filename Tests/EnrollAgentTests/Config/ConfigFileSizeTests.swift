import TestSupport
import XCTest
@testable import EnrollAgent

/// The configuration file's size bound, checked before the TOML parser sees a byte.
final class ConfigFileSizeTests: XCTestCase {
    func testAnOversizeConfigurationFileIsRefusedBeforeParsing() throws {
        let directory = try TemporaryDirectory(prefix: "config-size")
        defer { directory.remove() }
        let limit = AgentConfig.maximumFileBytes
        XCTAssertEqual(limit, 1 << 20)

        // Exactly at the limit: read and parsed (it holds no profile, so it is invalid, not unreadable).
        let atLimit = directory.appending("at-limit.toml")
        let comment = "# padding\n"
        var text = String(repeating: comment, count: limit / comment.utf8.count)
        text += String(repeating: "#", count: limit - text.utf8.count - 1) + "\n"
        XCTAssertEqual(text.utf8.count, limit)
        try text.write(toFile: atLimit, atomically: false, encoding: .utf8)
        XCTAssertThrowsError(try AgentConfig.load(path: atLimit)) { error in
            guard case .invalid? = error as? ConfigError else { return XCTFail("\(error)") }
        }

        let oversize = directory.appending("oversize.toml")
        try (text + "#\n").write(toFile: oversize, atomically: false, encoding: .utf8)
        XCTAssertThrowsError(try AgentConfig.load(path: oversize)) { error in
            guard case .unreadable(let path, let reason)? = error as? ConfigError else { return XCTFail("\(error)") }
            XCTAssertEqual(path, oversize)
            XCTAssertTrue(reason.contains("\(limit + 2) bytes"), reason)
            XCTAssertTrue(reason.contains("at most \(limit) bytes"), reason)
            XCTAssertTrue(reason.contains("--config"), reason)
        }
    }

    /// A device (or a pipe) has no size to stat: reading stops one byte past the limit.
    func testAnEndlessFileIsRefusedWithoutReadingItAll() {
        XCTAssertThrowsError(try AgentConfig.load(path: "/dev/zero")) { error in
            guard case .unreadable(_, let reason)? = error as? ConfigError else { return XCTFail("\(error)") }
            XCTAssertTrue(reason.contains("larger than the limit"), reason)
        }
    }
}
