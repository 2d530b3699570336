import Foundation
import Subprocess
import Synchronization

/// Runs a configured program (the challenge `command`, the `post_install` hook): the one
/// way the agent starts a process.
///
/// swift-subprocess spawns it with `posix_spawn` and `POSIX_SPAWN_SETPGROUP`, so it leads a
/// process group of its own from its first instruction (a `setpgid` after the spawn races
/// the child's own forks, and fails with EACCES once it has exec'd). stdin is /dev/null,
/// stderr is ours (the program's log belongs in the agent's journal), stdout is ours too
/// unless it is captured. Waiting costs no thread: Subprocess watches a pidfd and the pipe
/// with epoll on a thread of its own, so a hook that runs for minutes leaves the cooperative
/// pool free.
///
/// At the deadline, or as soon as the calling task is cancelled, the whole group gets
/// SIGTERM and, unless the program has exited within `killGrace`, SIGKILL. Whatever is left
/// of the group once the program itself is gone (a child that ignored SIGTERM, one holding
/// the pipe open) is killed at once: nothing in it is ours to wait for any more.
struct ChildCommand: Sendable {
    enum Outcome: Equatable, Sendable {
        /// It exited with this status; `output` is its stdout when captured, else empty.
        case exited(Int32, output: [UInt8])
        /// A signal that was not ours ended it before the deadline.
        case signaled(Int32)
        /// It ran past the deadline and was stopped.
        case timedOut
    }

    /// Why the program could not be started, in words for a log line.
    struct LaunchFailure: Error, CustomStringConvertible {
        let description: String
    }

    /// The program (an absolute path) and its arguments.
    let argv: [String]
    /// The program's complete environment; nil passes on the agent's own.
    var environment: [String: String]? = nil
    var timeout: Duration
    /// Capture stdout, keeping at most this many bytes; the rest is read and dropped so the
    /// program never blocks on a full pipe. nil leaves stdout on the agent's.
    var outputLimit: Int? = nil
    /// Between SIGTERM and SIGKILL.
    var killGrace: Duration = .seconds(2)

    /// Throws `AgentError(.config)` for an empty argv, `LaunchFailure` when the program
    /// cannot be started, `CancellationError` when the calling task was cancelled (the
    /// program is stopped first).
    func run() async throws -> Outcome {
        guard let executable = argv.first else { throw AgentError(.config, "empty command") }
        let configuration = Configuration(
            executable: .path(.init(executable)),
            arguments: Arguments(Array(argv.dropFirst())),
            environment: environment.map(Self.exactly) ?? .inherit,
            platformOptions: Self.ownProcessGroup(killGrace: killGrace))
        let group = SpawnedGroup()

        return try await withThrowingTaskGroup(of: Event.self) { tasks in
            tasks.addTask { try await self.spawnAndWait(configuration, recordingIn: group) }
            tasks.addTask {
                // Returns early when the program finishes first (cancelAll below) or the
                // caller is cancelled; either way the next step tells which.
                try? await Task.sleep(for: self.timeout)
                return .deadlinePassed
            }
            // A launch failure is thrown from here, before any deadline.
            let first = try await tasks.next()!
            // Stops the timer; or, when the deadline passed or the caller was cancelled, makes
            // Subprocess tear the group down (`teardownSequence`): SIGTERM, then SIGKILL if
            // the program outlives the grace period.
            tasks.cancelAll()
            if case .finished(let status, let output) = first, !Task.isCancelled {
                return Self.outcome(status, output: output)
            }
            while (try? await tasks.next()) != nil {}
            group.killWhatIsLeft()
            if Task.isCancelled { throw CancellationError() }
            return .timedOut
        }
    }

    private enum Event: Sendable {
        case finished(TerminationStatus, output: [UInt8])
        case deadlinePassed
    }

    private func spawnAndWait(_ configuration: Configuration, recordingIn group: SpawnedGroup) async throws -> Event {
        do {
            if let outputLimit {
                let result = try await Subprocess.run(configuration, input: .none, output: .sequence, error: .currentStandardError) { execution in
                    group.record(execution.processIdentifier.value)
                    return try await Self.collect(execution.standardOutput, keeping: outputLimit)
                }
                return .finished(result.terminationStatus, output: result.closureResult)
            }
            let result = try await Subprocess.run(
                configuration, input: .none, output: .currentStandardOutput, error: .currentStandardError
            ) { execution in
                group.record(execution.processIdentifier.value)
            }
            return .finished(result.terminationStatus, output: [])
        } catch let error as SubprocessError where error.code == .executableNotFound || error.code == .spawnFailed {
            throw LaunchFailure(description: Self.reason(error, executable: configuration.executable.description))
        }
    }

    private static func outcome(_ status: TerminationStatus, output: [UInt8]) -> Outcome {
        switch status {
        case .exited(let code): return .exited(code, output: output)
        case .signaled(let signal): return .signaled(signal)
        }
    }

    /// Reads stdout to its end (the program's exit ends it too, even while a child of
    /// the program still holds the pipe), keeping the first `limit` bytes.
    private static func collect(_ output: SubprocessOutputSequence, keeping limit: Int) async throws -> [UInt8] {
        var kept: [UInt8] = []
        for try await buffer in output where kept.count < limit {
            buffer.withUnsafeBytes { kept.append(contentsOf: $0.prefix(limit - kept.count)) }
        }
        return kept
    }

    private static func ownProcessGroup(killGrace: Duration) -> PlatformOptions {
        var options = PlatformOptions()
        options.processGroupID = 0  // a new group, its id the child's pid
        // The implicit final SIGKILL goes to the group too (it follows the last step).
        options.teardownSequence = [.gracefulShutDown(toProcessGroup: true, allowedDurationToNextStep: killGrace)]
        return options
    }

    /// Exactly these variables, nothing of the agent's own environment.
    private static func exactly(_ variables: [String: String]) -> Environment {
        .custom(Dictionary(uniqueKeysWithValues: variables.compactMap { name, value in
            Environment.Key(rawValue: name).map { ($0, value) }
        }))
    }

    private static func reason(_ error: SubprocessError, executable: String) -> String {
        if error.code == .executableNotFound {
            // Subprocess says ENOENT also for a file that exists but may not be executed:
            // ask the file system which it is.
            if access(executable, X_OK) != 0 { return String(cString: strerror(errno)) }
            return "it is not an executable program"
        }
        return error.underlyingError.map { "\($0)" } ?? "\(error)"
    }
}

/// The spawned program's process group, known once it runs; only used to stop it.
private final class SpawnedGroup: Sendable {
    private let leader = Mutex<pid_t?>(nil)

    func record(_ pid: pid_t) { leader.withLock { $0 = pid } }

    /// SIGKILL to what is left of a group that was told to stop. The group id cannot
    /// have been reused while any member lives, and an empty group just gives ESRCH.
    func killWhatIsLeft() {
        guard let pid = leader.withLock({ $0 }) else { return }
        kill(-pid, SIGKILL)
    }
}
