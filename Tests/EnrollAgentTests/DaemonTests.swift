import Foundation
import TestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// `enroll-agent run` as systemd runs it: Type=notify over a NOTIFY_SOCKET the
/// test owns, SIGHUP reload, SIGTERM exit 0 within a couple of seconds.
final class DaemonTests: XCTestCase {
    private var server: SCEPServerProcess!
    private var workspace: TemporaryDirectory!

    override func setUpWithError() throws {
        do { server = try SCEPServerProcess.start() } catch let missing as PeerUnavailable where missing.maySkip {
            throw XCTSkip(missing.description)
        }
        workspace = try TemporaryDirectory(prefix: "daemon-it")
    }

    override func tearDown() {
        _ = server?.stop()
        workspace?.remove()
    }

    private func writeConfig(profiles: [String]) throws -> String {
        let challengePath = workspace.appending("challenge")
        try AgentTestFiles.writeSecret(server.challenge, to: challengePath)
        var text = "state_dir = \"\(workspace.appending("state"))\"\n"
        for name in profiles {
            text += """

            [[profile]]
            name = "\(name)"
            scep_url = "\(server.urlString)"
            ca_pin_file = "\(server.caCertificatePath)"
            subject = "CN=\(name),O=Example"
            key_storage = "software"
            [profile.challenge]
            source = "file"
            file = "\(challengePath)"

            """
        }
        let path = workspace.appending("config.toml")
        try AgentTestFiles.writeSecret(text, to: path)
        return path
    }

    private func waitFor(_ what: String, timeout: TimeInterval = 30, _ condition: () -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while !condition() {
            guard Date() < deadline else { throw AgentProcessError("timed out waiting for \(what)") }
            usleep(50_000)
        }
    }

    func testReadyThenEnrollsThenReloadsOnSIGHUPAndStopsOnSIGTERM() throws {
        let socket = try DaemonNotifySocket(path: workspace.appending("notify.sock"))
        let configPath = try writeConfig(profiles: ["first"])
        let agent = try ChildProcess(
            executable: try AgentProcess.locateBinary(), arguments: ["run", "--config", configPath],
            extraEnvironment: ["NOTIFY_SOCKET": socket.path, "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": ""],
            outputPath: workspace.appending("agent.log"))
        defer { _ = agent.terminate(gracePeriod: 1) }

        try waitFor("READY=1") { socket.received.contains { $0.contains("READY=1") } }
        let live = workspace.appending("state/first/live/cert.pem")
        try waitFor("the first certificate") { FileManager.default.fileExists(atPath: live) }
        try waitFor("a watchdog ping", timeout: 5) { socket.received.contains("WATCHDOG=1") }

        // SIGHUP: a second profile appears in the config and gets enrolled without a restart.
        _ = try writeConfig(profiles: ["first", "second"])
        agent.send(signal: SIGHUP)
        try waitFor("RELOADING=1") { socket.received.contains { $0.contains("RELOADING=1") } }
        try waitFor("the second profile's certificate") {
            FileManager.default.fileExists(atPath: workspace.appending("state/second/live/cert.pem"))
        }
        XCTAssertEqual(server.issuedCertificatePaths().count, 2, "the first profile must not be enrolled twice")

        let stoppedAt = Date()
        agent.send(signal: SIGTERM)
        let status = agent.wait(timeout: 5)
        XCTAssertEqual(status, .exited(0), agent.readOutput())
        XCTAssertLessThan(Date().timeIntervalSince(stoppedAt), 3, "SIGTERM must stop the daemon within a couple of seconds")
        XCTAssertTrue(socket.received.contains { $0.contains("STOPPING=1") })
        XCTAssertFalse(agent.readOutput().contains(server.challenge), "the challenge leaked into the daemon's log")
    }

    /// A SIGHUP after the config was replaced by 100 000 nested brackets used to
    /// overflow the parser's stack and kill the daemon; now it keeps the old config.
    func testSIGHUPWithAHostilelyDeepConfigKeepsTheOldOne() throws {
        let socket = try DaemonNotifySocket(path: workspace.appending("notify.sock"))
        let configPath = try writeConfig(profiles: ["first"])
        let agent = try ChildProcess(
            executable: try AgentProcess.locateBinary(), arguments: ["run", "--config", configPath],
            extraEnvironment: ["NOTIFY_SOCKET": socket.path], outputPath: workspace.appending("agent.log"))
        defer { _ = agent.terminate(gracePeriod: 1) }
        try waitFor("READY=1") { socket.received.contains { $0.contains("READY=1") } }
        try waitFor("the first certificate") {
            FileManager.default.fileExists(atPath: workspace.appending("state/first/live/cert.pem"))
        }
        try waitFor("the profile loop to settle") { socket.received.contains { $0.hasPrefix("STATUS=first: next check") } }

        let levels = 100_000
        try AgentTestFiles.writeSecret("state_dir = \"\(workspace.appending("state"))\"\nbomb = "
            + String(repeating: "[", count: levels) + String(repeating: "]", count: levels) + "\n", to: configPath)
        let before = socket.received.count
        agent.send(signal: SIGHUP)
        func sinceReload() -> [String] { Array(socket.received.dropFirst(before)) }
        try waitFor("READY=1 after the failed reload") {
            guard agent.isRunning else { return true }  // died: reported below, without waiting for the timeout
            let messages = sinceReload()
            guard let reloading = messages.firstIndex(where: { $0.contains("RELOADING=1") }) else { return false }
            return messages[reloading...].contains { $0.contains("READY=1") }
        }
        guard agent.isRunning else { return XCTFail("the daemon died on SIGHUP (\(String(describing: agent.exitStatus))): \(agent.readOutput())") }
        XCTAssertTrue(sinceReload().contains { $0.contains("STATUS=watching 1 profile(s)") }, "\(sinceReload())")
        // The old profile's loop runs again under the old configuration.
        try waitFor("the old profile's loop after the reload") {
            sinceReload().contains { $0.hasPrefix("STATUS=first: next check") }
        }
        let log = agent.readOutput()
        XCTAssertTrue(log.contains("SIGHUP: the new configuration is invalid; keeping the old one"), log)
        XCTAssertTrue(log.contains("\(configPath):2:"), log)
        XCTAssertTrue(log.contains("more than \(32) levels deep"), log)

        agent.send(signal: SIGTERM)
        XCTAssertEqual(agent.wait(timeout: 5), .exited(0), agent.readOutput())
        XCTAssertEqual(server.issuedCertificatePaths().count, 1)
    }

    func testSIGTERMWhileARequestHangsStillExitsPromptly() throws {
        // A SCEP "server" that accepts connections and never answers.
        let hanging = try TestHTTPServer(response: .hang)
        defer { hanging.stop() }
        let challengePath = workspace.appending("challenge")
        try AgentTestFiles.writeSecret("irrelevant", to: challengePath)
        let configPath = workspace.appending("config.toml")
        try AgentTestFiles.writeSecret("""
        state_dir = "\(workspace.appending("state"))"
        [[profile]]
        name = "stuck"
        scep_url = "\(hanging.urlString)/scep"
        ca_pin_file = "\(server.caCertificatePath)"
        key_storage = "software"
        http_timeout = "60s"
        [profile.challenge]
        source = "file"
        file = "\(challengePath)"
        """, to: configPath)
        let socket = try DaemonNotifySocket(path: workspace.appending("notify.sock"))
        let agent = try ChildProcess(
            executable: try AgentProcess.locateBinary(), arguments: ["run", "--config", configPath],
            extraEnvironment: ["NOTIFY_SOCKET": socket.path], outputPath: workspace.appending("agent.log"))
        defer { _ = agent.terminate(gracePeriod: 1) }
        try waitFor("READY=1") { socket.received.contains { $0.contains("READY=1") } }
        XCTAssertTrue(hanging.waitForRequests(count: 1, timeout: 10), "the daemon never contacted the server")

        let stoppedAt = Date()
        agent.send(signal: SIGTERM)
        XCTAssertEqual(agent.wait(timeout: 10), .exited(0), agent.readOutput())
        XCTAssertLessThan(Date().timeIntervalSince(stoppedAt), 4)
    }

    func testAnInvalidConfigurationExits78() throws {
        let path = workspace.appending("config.toml")
        try AgentTestFiles.writeSecret("[[profile]]\nname = \"x\"\nkey_bits = 1024\n", to: path)
        let run = try AgentProcess.run(arguments: ["run", "--config", path], timeout: 30)
        XCTAssertEqual(run.exitCode, 78, run.transcript)
        XCTAssertTrue(run.standardError.contains("key_bits"), run.transcript)
    }
}

/// A unix datagram socket standing in for systemd's notify socket.
final class DaemonNotifySocket: @unchecked Sendable {
    /// What the reader thread shares with the listener (the thread must not own the listener).
    private final class Inbox: @unchecked Sendable {
        let lock = NSLock()
        var messages: [String] = []
        var times: [Date] = []
        var closed = false
    }

    let path: String
    private let descriptor: Int32
    private let inbox = Inbox()

    init(path: String) throws {
        self.path = path
        let descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        guard descriptor >= 0 else { throw AgentProcessError("socket: errno \(errno)") }
        self.descriptor = descriptor
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8) + [0]) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0 else { close(descriptor); throw AgentProcessError("bind \(path): errno \(errno)") }
        var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        Thread.detachNewThread { [inbox] in Self.readLoop(descriptor, inbox) }
    }

    deinit {
        inbox.lock.lock(); inbox.closed = true; inbox.lock.unlock()
        // The reader wakes within its receive timeout, sees `closed` and closes the socket.
    }

    var received: [String] { inbox.lock.lock(); defer { inbox.lock.unlock() }; return inbox.messages }

    /// Every message with the time it arrived.
    var timedMessages: [(at: Date, message: String)] {
        inbox.lock.lock(); defer { inbox.lock.unlock() }
        return Array(zip(inbox.times, inbox.messages)).map { (at: $0.0, message: $0.1) }
    }

    private static func readLoop(_ descriptor: Int32, _ inbox: Inbox) {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            inbox.lock.lock(); let closed = inbox.closed; inbox.lock.unlock()
            if closed { close(descriptor); return }
            let count = recv(descriptor, &buffer, buffer.count, 0)
            if count > 0 {
                let message = String(decoding: buffer.prefix(count), as: UTF8.self)
                inbox.lock.lock(); inbox.messages.append(message); inbox.times.append(Date()); inbox.lock.unlock()
            }
        }
    }
}

/// `check-config` on hostile files: a message, never a crash.
final class HostileConfigCheckTests: XCTestCase {
    func testCheckConfigReportsDeepNestingInsteadOfCrashing() throws {
        let levels = 100_000
        let run = try AgentProcess.run(
            arguments: ["check-config"],
            config: "state_dir = \"/var/lib/enroll-agent\"\nbomb = "
                + String(repeating: "[", count: levels) + String(repeating: "]", count: levels) + "\n",
            timeout: 60)
        XCTAssertEqual(run.exitCode, 78, run.transcript)
        XCTAssertTrue(run.standardError.contains("config.toml:2: this array is nested more than 32 levels deep")
                      || run.standardOutput.contains("config.toml:2: this array is nested more than 32 levels deep"), run.transcript)
    }

    func testCheckConfigRefusesAnOversizeFile() throws {
        let run = try AgentProcess.run(
            arguments: ["check-config"], config: String(repeating: "# padding\n", count: 120_000), timeout: 60)
        XCTAssertEqual(run.exitCode, 78, run.transcript)
        XCTAssertTrue((run.standardError + run.standardOutput).contains("the file is 1200000 bytes; a configuration may be at most 1048576 bytes"),
                      run.transcript)
    }
}
