import Foundation
import Glibc
import Logging
import TestSupport
import XCTest

@testable import EnrollAgent

/// `PostInstallHook` runs real shell scripts from a temporary directory.
final class PostInstallHookTests: XCTestCase {
    private var workspace: TemporaryDirectory!
    private var capture: LogCapture!
    private var logger: Logger!

    private let paths = (certificate: "/var/lib/enroll-agent/device/current/cert.pem",
                         key: "/var/lib/enroll-agent/device/current/key.pem",
                         fullchain: "/var/lib/enroll-agent/device/current/fullchain.pem")

    override func setUpWithError() throws {
        workspace = try TemporaryDirectory(prefix: "post-install")
        let capture = LogCapture()
        self.capture = capture
        logger = Logger(label: "post-install-test") { _ in capture.handler }
    }

    override func tearDown() { workspace?.remove() }

    private func script(_ body: String, named name: String) throws -> String {
        let path = workspace.appending(name)
        try "#!/bin/sh\n\(body)\n".write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertEqual(chmod(path, 0o755), 0)
        return path
    }

    func testHookSeesProfileAndPathsInItsEnvironment() throws {
        let report = workspace.appending("env")
        let hook = try script("""
            {
              echo "profile=$ENROLL_AGENT_PROFILE"
              echo "certificate=$ENROLL_AGENT_CERTIFICATE"
              echo "key=$ENROLL_AGENT_KEY"
              echo "fullchain=$ENROLL_AGENT_FULLCHAIN"
              echo "arg=$1"
            } > '\(report)'
            """, named: "hook.sh")

        let status = PostInstallHook(argv: [hook, "reload"]).run(profile: "device", paths: paths, logger: logger)

        XCTAssertEqual(status, 0)
        let lines = try String(contentsOfFile: report, encoding: .utf8).split(separator: "\n").map(String.init)
        XCTAssertEqual(lines, [
            "profile=device",
            "certificate=\(paths.certificate)",
            "key=\(paths.key)",
            "fullchain=\(paths.fullchain)",
            "arg=reload",
        ])
        XCTAssertTrue(capture.text.contains("post_install hook succeeded"), capture.text)
        XCTAssertFalse(capture.text.contains("error:"), capture.text)
    }

    func testFailingHookReturnsItsStatusAndLogsAnError() throws {
        let hook = try script("exit 3", named: "fail.sh")
        let status = PostInstallHook(argv: [hook]).run(profile: "device", paths: paths, logger: logger)

        XCTAssertEqual(status, 3)
        let errorLines = capture.text.split(separator: "\n").filter { $0.hasPrefix("error:") }
        XCTAssertEqual(errorLines.count, 1, capture.text)
        XCTAssertTrue(errorLines.first?.contains("status 3") ?? false, capture.text)
        XCTAssertTrue(errorLines.first?.contains(hook) ?? false, capture.text)
    }

    func testMissingExecutableReturnsNilAndLogs() throws {
        let missing = workspace.appending("no-such-hook")
        let status = PostInstallHook(argv: [missing]).run(profile: "device", paths: paths, logger: logger)

        XCTAssertNil(status)
        XCTAssertTrue(capture.text.contains("error:"), capture.text)
        XCTAssertTrue(capture.text.contains(missing), capture.text)
    }

    func testEmptyArgvReturnsNil() {
        XCTAssertNil(PostInstallHook(argv: []).run(profile: "device", paths: paths, logger: logger))
    }

    func testHookExceedingTheTimeoutIsStopped() throws {
        let pidFile = workspace.appending("pid")
        let hook = try script("echo $$ > '\(pidFile)'\nexec sleep 30", named: "slow.sh")
        let started = Date()
        let status = PostInstallHook(argv: [hook], timeout: 1).run(profile: "device", paths: paths, logger: logger)
        let elapsed = Date().timeIntervalSince(started)

        XCTAssertNil(status)
        XCTAssertLessThan(elapsed, 4, "a 1 s timeout took \(elapsed) s")
        XCTAssertTrue(capture.text.contains("did not finish within 1 s"), capture.text)
        let pid = try XCTUnwrap(ScriptProcessProbe.readPid(pidFile))
        defer { kill(pid, SIGKILL) }
        XCTAssertTrue(ScriptProcessProbe.hasExited(pid, within: 3), "the hook \(pid) still runs after its timeout")
    }

    /// A shell hook's own children (a `sleep`, a reload that hangs) are
    /// stopped with it, not left running as orphans.
    func testChildrenOfATimedOutHookAreStoppedToo() throws {
        let pidFile = workspace.appending("pid")
        let hook = try script("sleep 30 &\necho $! > '\(pidFile)'\nwait", named: "forks.sh")
        let status = PostInstallHook(argv: [hook], timeout: 1).run(profile: "device", paths: paths, logger: logger)

        XCTAssertNil(status)
        let childPid = try XCTUnwrap(ScriptProcessProbe.readPid(pidFile))
        defer { kill(childPid, SIGKILL) }
        XCTAssertTrue(ScriptProcessProbe.hasExited(childPid, within: 8), "the hook's child \(childPid) outlived the hook")
    }

    /// A hook that ignores SIGTERM must still not outlive its timeout.
    func testHookIgnoringSIGTERMIsKilled() throws {
        let pidFile = workspace.appending("pid")
        // Ignored signals survive exec, so `sleep` ignores SIGTERM too.
        let hook = try script("trap '' TERM\necho $$ > '\(pidFile)'\nexec sleep 30", named: "stubborn.sh")
        let status = PostInstallHook(argv: [hook], timeout: 1).run(profile: "device", paths: paths, logger: logger)

        XCTAssertNil(status)
        let pid = try XCTUnwrap(ScriptProcessProbe.readPid(pidFile))
        defer { kill(pid, SIGKILL) }
        XCTAssertTrue(ScriptProcessProbe.hasExited(pid, within: 8), "the hook \(pid) ignored SIGTERM and still runs")
    }
}
