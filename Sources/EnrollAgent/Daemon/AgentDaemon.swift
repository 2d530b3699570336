import CertStore
import Foundation
import Logging
import Renewal
#if canImport(Glibc)
import Glibc
#endif

/// The long-running service: one loop per profile, each sleeping until its
/// next due time (no polling), supervised by systemd through sd_notify.
///
/// SIGTERM cancels the loops and exits 0 within `shutdownGrace` even when a
/// request is in flight — safe, because every step of an enrollment is
/// persisted and the store swaps generations atomically. SIGHUP reloads the
/// configuration and restarts the loops.
final class AgentDaemon: @unchecked Sendable {
    enum Signal: Sendable { case terminate, reload }

    let options: CommonOptions
    let environment: AgentEnvironment
    let notifier: SystemdNotifier
    let logger: Logger
    var shutdownGrace: TimeInterval = 2

    init(options: CommonOptions, environment: AgentEnvironment, notifier: SystemdNotifier, logger: Logger) {
        self.options = options
        self.environment = environment
        self.notifier = notifier
        self.logger = logger
    }

    func run() async throws {
        let signals = SignalEvents()
        var (config, profiles) = try options.loadProfiles()
        logPermissionProblems(config)
        let watchdog = startWatchdog()
        defer { watchdog?.cancel() }
        notifier.notify("READY=1\nSTATUS=watching \(profiles.count) profile(s)")
        logger.info("daemon started", metadata: ["profiles": "\(profiles.map(\.name).joined(separator: ","))", "config": "\(options.config)"])

        while true {
            let loops = Task { [config, profiles] in
                await withTaskGroup(of: Void.self) { group in
                    for profile in profiles {
                        group.addTask { await self.profileLoop(config: config, profile: profile) }
                    }
                }
            }
            let signal = await signals.next()
            loops.cancel()
            switch signal {
            case .terminate:
                notifier.notify("STOPPING=1")
                logger.info("SIGTERM: stopping")
                // A request in flight may hold its thread until its timeout; do not wait for it.
                let finished = await waitForCompletion(loops, timeout: shutdownGrace)
                if !finished { logger.info("an operation was still running; its state is persisted and resumes on the next start") }
                return
            case .reload:
                notifier.notify("RELOADING=1")
                _ = await waitForCompletion(loops, timeout: 30)
                do {
                    (config, profiles) = try options.loadProfiles()
                    logPermissionProblems(config)
                    logger.info("SIGHUP: configuration reloaded", metadata: ["profiles": "\(profiles.map(\.name).joined(separator: ","))"])
                } catch {
                    logger.error("SIGHUP: the new configuration is invalid; keeping the old one: \(error)")
                }
                notifier.notify("READY=1\nSTATUS=watching \(profiles.count) profile(s)")
            }
        }
    }

    /// One profile: one step at a time, as the planner says; between steps the loop
    /// sleeps until the next due time (capped by WakeupPlanner so a clock jump or a
    /// suspend is noticed). The only place in the agent that waits for the calendar.
    func profileLoop(config: AgentConfig, profile: ProfileConfig) async {
        let enroller = ProfileEnroller(config: config, profile: profile, environment: environment, logger: logger)
        while !Task.isCancelled {
            var next: Date?
            do {
                switch try await enroller.step(intent: .renew()) {
                case .waited(let until, _):
                    next = until
                case .performed(_, _, let installed, let error):
                    if let installed {
                        logger.info("renewed", metadata: ["profile": "\(profile.name)", "via": "\(installed.kind.rawValue)",
                                                          "notAfter": "\(installed.certificate.notValidAfter)"])
                    }
                    if let error { logger.error("\(error.message)") }
                    continue  // the planner decides what follows, at once or later
                }
            } catch is CancellationError {
                return
            } catch {
                if Task.isCancelled { return }
                logger.error("\(AgentError.wrap(error, profile: profile.name).message)")
                next = environment.clock.now().addingTimeInterval(60)
            }
            let now = environment.clock.now()
            let delay = WakeupPlanner.nextWake(now: now, dueTimes: next.map { [$0] } ?? [])
            notifier.notify("STATUS=\(profile.name): next check in \(DurationText.format(delay))")
            do { try await environment.sleeper.sleep(seconds: max(delay, 1)) } catch { return }
        }
    }

    private func logPermissionProblems(_ config: AgentConfig) {
        for problem in config.warnings + config.permissionProblems() {
            logger.warning("\(problem.formatted(path: config.sourcePath))")
        }
    }

    private func startWatchdog() -> Task<Void, Never>? {
        guard let interval = notifier.watchdogInterval else { return nil }
        return Task.detached { [notifier, environment] in
            while !Task.isCancelled {
                notifier.notify("WATCHDOG=1")
                try? await environment.sleeper.sleep(seconds: interval)
            }
        }
    }

    /// Waits for `task` at most `timeout` seconds. Not a task group: a group would
    /// wait for its children, and a request blocked in libcurl ignores cancellation.
    private func waitForCompletion(_ task: Task<Void, Never>, timeout: TimeInterval) async -> Bool {
        let first = FirstResult()
        return await withCheckedContinuation { continuation in
            Task {
                await task.value
                if first.claim() { continuation.resume(returning: true) }
            }
            Task {
                try? await Task.sleep(nanoseconds: UInt64(timeout * 1_000_000_000))
                if first.claim() { continuation.resume(returning: false) }
            }
        }
    }
}

/// Lets exactly one of several racers resume a continuation.
private final class FirstResult: @unchecked Sendable {
    private let lock = NSLock()
    private var claimed = false
    func claim() -> Bool {
        lock.lock(); defer { lock.unlock() }
        if claimed { return false }
        claimed = true
        return true
    }
}

/// SIGTERM/SIGINT/SIGHUP as an async sequence of events.
final class SignalEvents: @unchecked Sendable {
    private var sources: [DispatchSourceSignal] = []
    private let stream: AsyncStream<AgentDaemon.Signal>
    private var iterator: AsyncStream<AgentDaemon.Signal>.Iterator

    init() {
        var continuation: AsyncStream<AgentDaemon.Signal>.Continuation!
        stream = AsyncStream { continuation = $0 }
        iterator = stream.makeAsyncIterator()
        let queue = DispatchQueue(label: "enroll-agent.signals")
        for (number, event) in [(SIGTERM, AgentDaemon.Signal.terminate), (SIGINT, .terminate), (SIGHUP, .reload)] {
            signal(number, SIG_IGN)  // the dispatch source receives it instead
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            source.setEventHandler { [continuation] in continuation!.yield(event) }
            source.resume()
            sources.append(source)
        }
    }

    func next() async -> AgentDaemon.Signal {
        await iterator.next() ?? .terminate
    }
}
