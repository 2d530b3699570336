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

    func testHookSeesProfileAndPathsInItsEnvironment() async throws {
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

        let status = await PostInstallHook(argv: [hook, "reload"]).run(profile: "device", paths: paths, logger: logger)

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

    func testFailingHookReturnsItsStatusAndLogsAnError() async throws {
        let hook = try script("exit 3", named: "fail.sh")
        let status = await PostInstallHook(argv: [hook]).run(profile: "device", paths: paths, logger: logger)

        XCTAssertEqual(status, 3)
        let errorLines = capture.text.split(separator: "\n").filter { $0.hasPrefix("error:") }
        XCTAssertEqual(errorLines.count, 1, capture.text)
        XCTAssertTrue(errorLines.first?.contains("status 3") ?? false, capture.text)
        XCTAssertTrue(errorLines.first?.contains(hook) ?? false, capture.text)
    }

    func testMissingExecutableReturnsNilAndLogs() async throws {
        let missing = workspace.appending("no-such-hook")
        let status = await PostInstallHook(argv: [missing]).run(profile: "device", paths: paths, logger: logger)

        XCTAssertNil(status)
        XCTAssertTrue(capture.text.contains("error:"), capture.text)
        XCTAssertTrue(capture.text.contains(missing), capture.text)
    }

    func testEmptyArgvReturnsNil() async {
        let status = await PostInstallHook(argv: []).run(profile: "device", paths: paths, logger: logger)
        XCTAssertNil(status)
    }

    func testHookExceedingTheTimeoutIsStopped() async throws {
        let pidFile = workspace.appending("pid")
        let hook = try script("echo $$ > '\(pidFile)'\nexec sleep 30", named: "slow.sh")
        let started = Date()
        let status = await PostInstallHook(argv: [hook], timeout: 1).run(profile: "device", paths: paths, logger: logger)
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
    func testChildrenOfATimedOutHookAreStoppedToo() async throws {
        let pidFile = workspace.appending("pid")
        let hook = try script("sleep 30 &\necho $! > '\(pidFile)'\nwait", named: "forks.sh")
        let status = await PostInstallHook(argv: [hook], timeout: 1).run(profile: "device", paths: paths, logger: logger)

        XCTAssertNil(status)
        let childPid = try XCTUnwrap(ScriptProcessProbe.readPid(pidFile))
        defer { kill(childPid, SIGKILL) }
        XCTAssertTrue(ScriptProcessProbe.hasExited(childPid, within: 8), "the hook's child \(childPid) outlived the hook")
    }

    /// A hook that ignores SIGTERM must still not outlive its timeout.
    func testHookIgnoringSIGTERMIsKilled() async throws {
        let pidFile = workspace.appending("pid")
        // Ignored signals survive exec, so `sleep` ignores SIGTERM too.
        let hook = try script("trap '' TERM\necho $$ > '\(pidFile)'\nexec sleep 30", named: "stubborn.sh")
        let status = await PostInstallHook(argv: [hook], timeout: 1).run(profile: "device", paths: paths, logger: logger)

        XCTAssertNil(status)
        let pid = try XCTUnwrap(ScriptProcessProbe.readPid(pidFile))
        defer { kill(pid, SIGKILL) }
        XCTAssertTrue(ScriptProcessProbe.hasExited(pid, within: 8), "the hook \(pid) ignored SIGTERM and still runs")
    }

    /// The group is set by posix_spawn before exec: by the time the hook's first command
    /// runs it already leads a group of its own (a setpgid after the spawn fails with
    /// EACCES once the child has exec'd, leaving it in the agent's group).
    func testTheHookLeadsItsOwnProcessGroupFromItsFirstCommand() async throws {
        let report = workspace.appending("group")
        let hook = try script("echo \"$$ $(ps -o pgid= $$)\" > '\(report)'", named: "group.sh")
        let status = await PostInstallHook(argv: [hook]).run(profile: "device", paths: paths, logger: logger)

        XCTAssertEqual(status, 0, capture.text)
        let fields = try String(contentsOfFile: report, encoding: .utf8).split(whereSeparator: \.isWhitespace).compactMap { pid_t($0) }
        XCTAssertEqual(fields.count, 2, "pid and pgid expected in \(report)")
        XCTAssertEqual(fields.first, fields.last, "the hook's process group is not its own")
        XCTAssertNotEqual(fields.last, getpgrp(), "the hook runs in the agent's process group")
    }

    /// Shutdown: the task running the hook is cancelled; the hook and its child go at
    /// once instead of living on for the rest of their 300 s.
    func testCancellingTheTaskStopsTheHookAndItsChildrenPromptly() async throws {
        let (pid, childPid, elapsed, status) = try await runAndCancel("sleep 30 &")
        defer { kill(pid, SIGKILL); kill(childPid, SIGKILL) }

        XCTAssertNil(status)
        XCTAssertLessThan(elapsed, .seconds(1), "the cancelled hook took \(elapsed) to stop")
        XCTAssertTrue(ScriptProcessProbe.hasExited(pid, within: 1), "the hook \(pid) outlived the cancellation")
        XCTAssertTrue(ScriptProcessProbe.hasExited(childPid, within: 1), "the hook's child \(childPid) outlived the cancellation")
        XCTAssertTrue(capture.text.contains("was stopped because the agent is stopping or reloading"), capture.text)
    }

    /// The hook dies of SIGTERM but its child ignores it: the rest of the group gets
    /// SIGKILL as soon as the hook is gone, without waiting out the grace period.
    func testCancellingAlsoKillsAChildThatIgnoresSIGTERM() async throws {
        let (pid, childPid, elapsed, status) = try await runAndCancel("(trap '' TERM; exec sleep 30) &")
        defer { kill(pid, SIGKILL); kill(childPid, SIGKILL) }

        XCTAssertNil(status)
        XCTAssertLessThan(elapsed, .seconds(1), "the cancelled hook took \(elapsed) to stop")
        XCTAssertTrue(ScriptProcessProbe.hasExited(childPid, within: 1), "the child \(childPid) ignored SIGTERM and still runs")
    }

    /// The hook itself ignores SIGTERM: SIGKILL follows after the grace period (2 s).
    func testCancellingAHookThatIgnoresSIGTERMKillsItAfterTheGracePeriod() async throws {
        let (pid, childPid, elapsed, status) = try await runAndCancel("trap '' TERM\nsleep 30 &")
        defer { kill(pid, SIGKILL); kill(childPid, SIGKILL) }

        XCTAssertNil(status)
        XCTAssertGreaterThanOrEqual(elapsed, .milliseconds(1_900), "SIGKILL came before the grace period was over")
        XCTAssertLessThan(elapsed, .seconds(4), "the cancelled hook took \(elapsed) to stop")
        XCTAssertTrue(ScriptProcessProbe.hasExited(pid, within: 1), "the hook \(pid) ignored SIGTERM and still runs")
        XCTAssertTrue(ScriptProcessProbe.hasExited(childPid, within: 1), "the child \(childPid) still runs")
    }

    /// Starts a hook that runs `start` (which puts a child in the background), waits until
    /// it has written its own pid and the child's, cancels the task and times its end.
    private func runAndCancel(_ start: String) async throws -> (pid_t, pid_t, Duration, Int32?) {
        let pidFile = workspace.appending("pid"), childFile = workspace.appending("child")
        let hook = try script("\(start)\necho $! > '\(childFile)'\necho $$ > '\(pidFile)'\nwait", named: "long.sh")
        let paths = self.paths, logger = self.logger!
        let running = Task { await PostInstallHook(argv: [hook], timeout: 300).run(profile: "device", paths: paths, logger: logger) }
        guard let pid = ScriptProcessProbe.readPid(pidFile), let childPid = ScriptProcessProbe.readPid(childFile) else {
            running.cancel()
            _ = await running.value
            throw HookDidNotStart(log: capture.text)
        }
        let cancelled = ContinuousClock.now
        running.cancel()
        let status = await running.value
        return (pid, childPid, ContinuousClock.now - cancelled, status)
    }

    /// A hook runs for minutes (up to 300 s) while the daemon has other work: waiting for
    /// it must not hold a thread of the cooperative pool. Here the pool is one thread wide
    /// (a task executor of a single thread), and a task on it ticks every 100 ms throughout
    /// a 5 s hook.
    func testTheCooperativePoolKeepsRunningWhileAHookRuns() async throws {
        let hook = try script("sleep 5", named: "five.sh")
        let paths = self.paths, logger = self.logger!
        let pool = SingleThreadExecutor()
        defer { pool.shutDown() }

        let started = ContinuousClock.now
        let (status, ticks) = await TickRecorder.ticks(every: .milliseconds(100), on: pool) {
            await PostInstallHook(argv: [hook]).run(profile: "device", paths: paths, logger: logger)
        }
        let elapsed = ContinuousClock.now - started

        XCTAssertEqual(status, 0, capture.text)
        XCTAssertGreaterThanOrEqual(elapsed, .seconds(5))
        XCTAssertTrue(ticks.allOnPool, "a tick ran off the one-thread pool: the test does not test what it says")
        XCTAssertGreaterThanOrEqual(ticks.count, 40, "only \(ticks.count) ticks in \(elapsed)")
        XCTAssertLessThan(ticks.longestGap, .milliseconds(500), "the pool stalled for \(ticks.longestGap) while the hook ran")
    }

    /// The measurement above can fail: a blocking wait on the one-thread pool shows up
    /// as a gap as long as the wait.
    func testTheTickRecorderSeesABlockedPool() async {
        let pool = SingleThreadExecutor()
        defer { pool.shutDown() }
        let (_, ticks) = await TickRecorder.ticks(every: .milliseconds(100), on: pool) {
            try? await Task.sleep(for: .milliseconds(300))
            usleep(1_200_000)  // what the old hook runner did, in 10 ms slices, for up to 300 s
            try? await Task.sleep(for: .milliseconds(300))
        }
        XCTAssertGreaterThanOrEqual(ticks.longestGap, .seconds(1))
    }
}

private struct HookDidNotStart: Error, CustomStringConvertible {
    let log: String
    var description: String { "the hook never wrote its pids; log: \(log)" }
}
