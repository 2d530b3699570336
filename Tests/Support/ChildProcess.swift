import Foundation
import Glibc

/// How a child process ended.
public enum ChildExitStatus: Sendable, Equatable, CustomStringConvertible {
    /// It called exit with this code.
    case exited(Int32)
    /// A signal (e.g. SIGTERM = 15) ended it.
    case signaled(Int32)

    /// True for `exited(0)`.
    public var isSuccess: Bool { self == .exited(0) }

    public var description: String {
        switch self {
        case .exited(let code): return "exit \(code)"
        case .signaled(let signal): return "signal \(signal)"
        }
    }
}

/// A program started with `posix_spawn`, its stdout and stderr going to files
/// (a pipe nobody drains can fill up and stall a server), with waits that time
/// out and signals.
///
/// A dedicated thread blocks in `waitpid` for this one pid, so exit is noticed
/// at once and no other child of the test process is reaped by mistake.
/// The child inherits the test's process group: Ctrl-C on `swift test` stops it too.
public final class ChildProcess: @unchecked Sendable {
    /// Absolute path of the program that runs.
    public let executablePath: String
    /// Arguments after argv[0].
    public let arguments: [String]
    /// The child's pid.
    public let pid: pid_t
    /// File receiving the child's stdout.
    public let outputPath: String
    /// File receiving the child's stderr (may equal `outputPath`).
    public let errorPath: String
    /// When it was spawned.
    public let startTime: Date

    /// Shared with the reaper thread, which must not hold `self` (a
    /// deinitialising ChildProcess still has to learn about the exit).
    private final class ExitState: @unchecked Sendable {
        let condition = NSCondition()
        var status: ChildExitStatus?
        var endTime: Date?
    }
    private let state = ExitState()
    private var condition: NSCondition { state.condition }
    private var status: ChildExitStatus? { state.status }

    /// Starts `executable` (a path, or a name searched on PATH).
    ///
    /// - Parameters:
    ///   - environment: the complete environment; `nil` inherits the test's.
    ///   - extraEnvironment: added on top (use it for secrets: never put them in argv).
    ///   - workingDirectory: where the child starts; `nil` keeps the test's.
    ///   - outputPath: stdout goes here (created or appended to).
    ///   - errorPath: stderr goes here; `nil` means the same file as stdout.
    /// stdin is /dev/null.
    public init(
        executable: String,
        arguments: [String] = [],
        environment: [String: String]? = nil,
        extraEnvironment: [String: String] = [:],
        workingDirectory: String? = nil,
        outputPath: String,
        errorPath: String? = nil
    ) throws {
        guard let resolved = PeerRequirement.locate(executable) else {
            throw TestSupportError(.spawnFailed, "no executable '\(executable)' (PATH searched for bare names)")
        }
        executablePath = resolved
        self.arguments = arguments
        self.outputPath = outputPath
        self.errorPath = errorPath ?? outputPath

        var env = environment ?? ProcessInfo.processInfo.environment
        env.merge(extraEnvironment) { _, new in new }

        pid = try Self.spawn(path: resolved, arguments: arguments, environment: env,
                             workingDirectory: workingDirectory,
                             outputPath: outputPath, errorPath: errorPath)
        startTime = Date()
        startReaper()
    }

    /// Runs a program to completion and returns its exit status and output.
    /// On timeout the child is killed (SIGTERM, then SIGKILL) and
    /// `TestSupportError.processTimedOut` is thrown with its output so far.
    public static func run(
        executable: String,
        arguments: [String] = [],
        environment: [String: String]? = nil,
        extraEnvironment: [String: String] = [:],
        workingDirectory: String? = nil,
        timeout: TimeInterval = 60
    ) throws -> ChildProcessResult {
        let scratch = try TemporaryDirectory(prefix: "child-output")
        let child = try ChildProcess(
            executable: executable, arguments: arguments, environment: environment,
            extraEnvironment: extraEnvironment, workingDirectory: workingDirectory,
            outputPath: scratch.appending("stdout"), errorPath: scratch.appending("stderr"))
        guard let status = child.wait(timeout: timeout) else {
            child.terminate()
            throw TestSupportError(.processTimedOut, """
                \(child.commandLine) did not finish within \(timeout) s; \
                stdout: \(child.readOutput()) stderr: \(child.readErrorOutput())
                """)
        }
        return ChildProcessResult(
            status: status, standardOutput: child.readOutputBytes(),
            standardError: child.readErrorOutputBytes(),
            duration: child.duration ?? 0)
    }

    /// `program arg1 arg2…` for messages (arguments as given: keep secrets out of them).
    public var commandLine: String {
        ([executablePath] + arguments).joined(separator: " ")
    }

    /// The exit status, or nil while it runs.
    public var exitStatus: ChildExitStatus? {
        condition.lock()
        defer { condition.unlock() }
        return status
    }

    /// Whether the child has not been reaped yet.
    public var isRunning: Bool { exitStatus == nil }

    /// Wall time from spawn to exit, once it has exited.
    public var duration: TimeInterval? {
        condition.lock()
        defer { condition.unlock() }
        return state.endTime.map { $0.timeIntervalSince(startTime) }
    }

    /// Waits up to `timeout` seconds; nil if it is still running then.
    @discardableResult
    public func wait(timeout: TimeInterval) -> ChildExitStatus? {
        let deadline = Date(timeIntervalSinceNow: timeout)
        condition.lock()
        defer { condition.unlock() }
        while status == nil {
            if !condition.wait(until: deadline) { break }
        }
        return status
    }

    /// Waits for as long as it takes.
    @discardableResult
    public func wait() -> ChildExitStatus {
        condition.lock()
        defer { condition.unlock() }
        while status == nil { condition.wait() }
        return status!
    }

    /// Waits until stdout so far satisfies `predicate`, the child exits or `timeout` passes;
    /// returns whether `predicate` held. For a child that reports progress on stdout (the
    /// file is re-read every 10 ms; an exit ends the wait at once).
    @discardableResult
    public func waitForOutput(timeout: TimeInterval, until predicate: (String) -> Bool) -> Bool {
        let deadline = Date(timeIntervalSinceNow: timeout)
        while !predicate(readOutput()) {
            condition.lock()
            let exited = status != nil
            if !exited && Date() < deadline {
                _ = condition.wait(until: min(deadline, Date(timeIntervalSinceNow: 0.01)))
            }
            condition.unlock()
            if exited || Date() >= deadline { return predicate(readOutput()) }
        }
        return true
    }

    /// Sends `signal` (e.g. SIGTERM, SIGHUP, SIGKILL) unless it has exited.
    public func send(signal: Int32) {
        // Holding the lock keeps the reaper from reaping between our check and
        // kill(), so the pid cannot have been reused by another process.
        condition.lock()
        defer { condition.unlock() }
        if status == nil { kill(pid, signal) }
    }

    /// SIGTERM, then SIGKILL after `gracePeriod` seconds; returns how it ended.
    @discardableResult
    public func terminate(gracePeriod: TimeInterval = 5) -> ChildExitStatus {
        send(signal: SIGTERM)
        if let status = wait(timeout: gracePeriod) { return status }
        send(signal: SIGKILL)
        return wait()
    }

    /// stdout so far, as UTF-8 (invalid bytes replaced).
    public func readOutput() -> String { String(decoding: readOutputBytes(), as: UTF8.self) }
    /// stderr so far, as UTF-8.
    public func readErrorOutput() -> String { String(decoding: readErrorOutputBytes(), as: UTF8.self) }
    /// stdout so far, raw.
    public func readOutputBytes() -> [UInt8] { Self.readFile(outputPath) }
    /// stderr so far, raw.
    public func readErrorOutputBytes() -> [UInt8] { Self.readFile(errorPath) }

    deinit {
        // Never leave a child behind, even when a test forgot to stop it.
        if isRunning {
            send(signal: SIGKILL)
            wait()
        }
    }

    // MARK: - Internals

    static func readFile(_ path: String) -> [UInt8] {
        (FileManager.default.contents(atPath: path)).map { [UInt8]($0) } ?? []
    }

    private func startReaper() {
        let pid = self.pid
        let state = self.state
        // The closure captures only the state and pid, not self, so a
        // forgotten ChildProcess can still be deinitialised (which kills it).
        let reaper = Thread {
            var raw: Int32 = 0
            var result: pid_t
            repeat { result = waitpid(pid, &raw, 0) } while result == -1 && errno == EINTR
            let ended: ChildExitStatus
            if result == -1 {
                ended = .exited(-1)  // Reaped by someone else; nothing more to learn.
            } else if raw & 0x7f == 0 {
                ended = .exited((raw >> 8) & 0xff)
            } else {
                ended = .signaled(raw & 0x7f)
            }
            state.condition.lock()
            state.status = ended
            state.endTime = Date()
            state.condition.broadcast()
            state.condition.unlock()
        }
        reaper.name = "ChildProcess.reaper(\(pid))"
        reaper.start()
    }

    private typealias AddChdir = @convention(c) (
        UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32

    /// glibc ≥ 2.29 has posix_spawn_file_actions_addchdir_np, but Swift's
    /// Glibc module does not export it; look it up at run time.
    private static let addChdir: AddChdir? = {
        guard let symbol = dlsym(nil, "posix_spawn_file_actions_addchdir_np") else { return nil }
        return unsafeBitCast(symbol, to: AddChdir.self)
    }()

    private static func spawn(
        path: String, arguments: [String], environment: [String: String],
        workingDirectory: String?, outputPath: String, errorPath: String?
    ) throws -> pid_t {
        let flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC
        let stdoutFD = open(outputPath, flags, 0o600)
        guard stdoutFD >= 0 else { throw TestSupportError.posix(.spawnFailed, "open \(outputPath)") }
        defer { close(stdoutFD) }
        var stderrFD = stdoutFD
        if let errorPath, errorPath != outputPath {
            stderrFD = open(errorPath, flags, 0o600)
            guard stderrFD >= 0 else { throw TestSupportError.posix(.spawnFailed, "open \(errorPath)") }
        }
        defer { if stderrFD != stdoutFD { close(stderrFD) } }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        // dup2 clears FD_CLOEXEC on the target, so only 0, 1, 2 (and fds the
        // test opened without CLOEXEC) reach the child.
        posix_spawn_file_actions_adddup2(&actions, stdoutFD, 1)
        posix_spawn_file_actions_adddup2(&actions, stderrFD, 2)
        if let workingDirectory {
            guard let addChdir else {
                throw TestSupportError(.spawnFailed, "this libc cannot set a child's working directory")
            }
            let rc = addChdir(&actions, workingDirectory)
            guard rc == 0 else { throw TestSupportError.posix(.spawnFailed, "chdir action", errno: rc) }
        }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Ignored signals survive exec: a test runner ignoring SIGPIPE would
        // otherwise hand that on. Reset all signals to default, unblock all.
        var defaults = sigset_t()
        sigfillset(&defaults)
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, path, &actions, &attributes, argv, envp)
        guard rc == 0 else { throw TestSupportError.posix(.spawnFailed, "posix_spawn \(path)", errno: rc) }
        return pid
    }
}

/// What `ChildProcess.run` returns.
public struct ChildProcessResult: Sendable {
    public let status: ChildExitStatus
    public let standardOutput: [UInt8]
    public let standardError: [UInt8]
    /// Wall time from spawn to exit, in seconds.
    public let duration: TimeInterval

    /// stdout as UTF-8 text.
    public var output: String { String(decoding: standardOutput, as: UTF8.self) }
    /// stderr as UTF-8 text.
    public var errorOutput: String { String(decoding: standardError, as: UTF8.self) }
}
