import Foundation
import Glibc
import TestSupport
import XCTest

@testable import SCEPTestSupport

/// The daemon's loops as structured tasks (issue 9 §3), with the real binary: the
/// watchdog keeps its time on one CPU while a long hook runs; SIGHUP and SIGTERM wait
/// for the running step to stop (the hook is stopped, not left behind).
final class DaemonStructureTests: XCTestCase {
    private var workspace: TestServerWorkspace!

    override func setUpWithError() throws {
        workspace = try TestServerWorkspace(prefix: "daemon-structure")
    }

    override func tearDown() { workspace = nil }

    /// A hook that records its pid, then sleeps `seconds`.
    private func sleepingHook(_ seconds: Int) throws -> String {
        let hook = workspace.appending("hook.sh")
        try "#!/bin/sh\necho $$ > \(workspace.appending("hook.pid"))\nexec sleep \(seconds)\n".write(toFile: hook, atomically: true, encoding: .utf8)
        chmod(hook, 0o755)
        return hook
    }

    private var hookPid: pid_t? {
        (try? String(contentsOfFile: workspace.appending("hook.pid"), encoding: .utf8))
            .flatMap { pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    private func isRunning(_ pid: pid_t) -> Bool { kill(pid, 0) == 0 }

    private func waitFor(_ what: String, timeout: TimeInterval, _ condition: () -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while !condition() {
            guard Date() < deadline else { throw AgentProcessError("timed out waiting for \(what)") }
            usleep(50_000)
        }
    }

    private func startDaemon(configText: String, socket: DaemonNotifySocket, environment: [String: String] = [:],
                             oneCPU: Bool = false) throws -> ChildProcess {
        let configPath = workspace.appending("config.toml")
        try AgentTestFiles.writeSecret(configText, to: configPath)
        let binary = try AgentProcess.locateBinary()
        let command = oneCPU ? ("taskset", ["-c", "0", binary, "run", "--config", configPath]) : (binary, ["run", "--config", configPath])
        return try ChildProcess(executable: command.0, arguments: command.1,
                                extraEnvironment: ["NOTIFY_SOCKET": socket.path].merging(environment) { $1 },
                                outputPath: workspace.appending("agent.log"))
    }

    private func log(_ agent: ChildProcess) -> String { agent.readOutput() }

    /// On one CPU (`taskset -c 0`), a post_install hook of 30 s does not hold up the
    /// watchdog: WATCHDOG=1 keeps coming every WatchdogSec/2 (1 s here).
    func testTheWatchdogKeepsItsTimeOnOneCPUWhileA30SecondHookRuns() throws {
        try PeerRequirement.require(binary: "taskset")
        let server = try TestSCEPServer(ca: try TestPKI.ca())
        defer { server.stop() }
        let socket = try DaemonNotifySocket(path: workspace.appending("notify.sock"))
        let agent = try startDaemon(configText: try workspace.config(for: server, extra: ["post_install = [\"\(try sleepingHook(30))\"]"]),
                                    socket: socket, environment: ["WATCHDOG_USEC": "2000000"], oneCPU: true)
        defer { _ = agent.terminate(gracePeriod: 1) }
        try waitFor("the hook to start", timeout: 30) { hookPid != nil }
        let hookStarted = Date()
        Thread.sleep(forTimeInterval: 30)
        let pings = socket.timedMessages.filter { $0.message.contains("WATCHDOG=1") && $0.at >= hookStarted.addingTimeInterval(-1) }.map(\.at)
        XCTAssertGreaterThanOrEqual(pings.count, 25, "watchdog pings during the hook: \(pings.count)\n\(log(agent))")
        let gaps = zip(pings, pings.dropFirst()).map { $1.timeIntervalSince($0) }
        XCTAssertLessThan(gaps.max() ?? 99, 1.9, "a watchdog gap of \(gaps.max() ?? 99) s (WatchdogSec 2 s)\n\(log(agent))")
        XCTAssertTrue(agent.isRunning, "the daemon died:\n\(log(agent))")
    }

    /// SIGHUP while a hook runs: the hook (the old loop's step) is stopped before the
    /// new configuration's loops start.
    func testSIGHUPStopsTheRunningStepBeforeTheNewLoopsStart() throws {
        let server = try TestSCEPServer(ca: try TestPKI.ca())
        defer { server.stop() }
        let socket = try DaemonNotifySocket(path: workspace.appending("notify.sock"))
        let agent = try startDaemon(configText: try workspace.config(for: server, extra: ["post_install = [\"\(try sleepingHook(60))\"]"]),
                                    socket: socket)
        defer { _ = agent.terminate(gracePeriod: 1) }
        try waitFor("the hook to start", timeout: 30) { hookPid != nil }
        let pid = try XCTUnwrap(hookPid)
        agent.send(signal: SIGHUP)
        try waitFor("the reload", timeout: 10) { log(agent).contains("SIGHUP: configuration reloaded") }
        XCTAssertFalse(isRunning(pid), "the old loop's hook still runs after the reload")
        let text = log(agent)
        let stopped = try XCTUnwrap(text.range(of: "was stopped because the agent is stopping or reloading"), text)
        let reloaded = try XCTUnwrap(text.range(of: "SIGHUP: configuration reloaded"), text)
        XCTAssertLessThan(stopped.lowerBound, reloaded.lowerBound, "the new loops started before the old step ended:\n\(text)")
        XCTAssertTrue(agent.isRunning)
    }

    /// SIGTERM while a hook runs: exit 0 promptly, and the hook is gone by then.
    func testSIGTERMReturnsOnlyWhenTheLoopsHaveStopped() throws {
        let server = try TestSCEPServer(ca: try TestPKI.ca())
        defer { server.stop() }
        let socket = try DaemonNotifySocket(path: workspace.appending("notify.sock"))
        let agent = try startDaemon(configText: try workspace.config(for: server, extra: ["post_install = [\"\(try sleepingHook(60))\"]"]),
                                    socket: socket)
        defer { _ = agent.terminate(gracePeriod: 1) }
        try waitFor("the hook to start", timeout: 30) { hookPid != nil }
        let pid = try XCTUnwrap(hookPid)
        let stoppedAt = Date()
        agent.send(signal: SIGTERM)
        XCTAssertEqual(agent.wait(timeout: 10), .exited(0), log(agent))
        XCTAssertLessThan(Date().timeIntervalSince(stoppedAt), 5)
        XCTAssertFalse(isRunning(pid), "the hook outlived the daemon")
        XCTAssertTrue(socket.received.contains { $0.contains("STOPPING=1") })
    }
}
