import CertStore
import Foundation
import Logging
import Renewal
import ServiceLifecycle
#if canImport(Glibc)
import Glibc
#endif

/// The long-running service: one loop per profile, each doing one step when the planner
/// says and sleeping until the next due time otherwise, supervised by systemd through
/// sd_notify. It runs in a swift-service-lifecycle `ServiceGroup`, which turns SIGTERM
/// and SIGINT into a graceful shutdown.
///
/// Structured: the profile loops are child tasks of one task group per configuration.
/// SIGHUP cancels that group, waits until every loop has stopped, then starts the loops
/// of the re-read configuration (or the old one when the new one is invalid), so old and
/// new loops never run together. SIGTERM returns only when the loops have stopped. That
/// takes no time: sleeps, HTTP transfers, the hook and the challenge command all end
/// when their task is cancelled, and every step is persisted.
struct AgentDaemon: Service {
    enum Event: Sendable { case terminate, reload }

    let options: CommonOptions
    let environment: AgentEnvironment
    let notifier: SystemdNotifier
    let logger: Logger

    func run() async throws {
        var (config, profiles) = try options.loadProfiles()
        let reloads = ReloadSignal()
        logPermissionProblems(config)
        notifier.notify("READY=1\nSTATUS=watching \(profiles.count) profile(s)")
        logger.info("daemon started", metadata: ["profiles": "\(profiles.map(\.name).joined(separator: ","))", "config": "\(options.config)"])

        await withTaskGroup(of: Void.self) { daemon in
            if let interval = notifier.watchdogInterval {
                daemon.addTask { [notifier, environment] in
                    while !Task.isCancelled {
                        notifier.notify("WATCHDOG=1")
                        try? await environment.sleeper.sleep(seconds: interval)
                    }
                }
            }
            while true {
                let event = await runLoops(config: config, profiles: profiles, reloads: reloads)
                if event == .terminate { break }
                do {
                    (config, profiles) = try options.loadProfiles()
                    logPermissionProblems(config)
                    logger.info("SIGHUP: configuration reloaded", metadata: ["profiles": "\(profiles.map(\.name).joined(separator: ","))"])
                } catch {
                    logger.error("SIGHUP: the new configuration is invalid; keeping the old one: \(error)")
                }
                notifier.notify("READY=1\nSTATUS=watching \(profiles.count) profile(s)")
            }
            daemon.cancelAll()  // the watchdog
        }
        logger.info("stopped")
    }

    /// The loops of one configuration, until SIGHUP or shutdown; returns once they all stopped.
    private func runLoops(config: AgentConfig, profiles: [ProfileConfig], reloads: ReloadSignal) async -> Event {
        await withTaskGroup(of: Event?.self) { group in
            for profile in profiles {
                group.addTask { await profileLoop(config: config, profile: profile); return nil }
            }
            group.addTask { await reloads.wait() ? .reload : nil }
            group.addTask {
                // Throws only when cancelled (a reload); then there is nothing to report.
                do { try await gracefulShutdown(); return .terminate } catch { return nil }
            }
            var event = Event.terminate
            while let next = await group.next() {
                if let next { event = next; break }
            }
            switch event {
            case .terminate:
                notifier.notify("STOPPING=1")
                logger.info("SIGTERM: stopping")
            case .reload:
                notifier.notify("RELOADING=1")
            }
            group.cancelAll()
            return event  // leaving the group waits for every loop
        }
    }

    /// One profile: one step at a time, as the planner says; between steps the loop
    /// sleeps until the next due time (capped by WakeupPlanner so a clock jump or a
    /// suspend is noticed). The only place in the agent that waits for the calendar.
    func profileLoop(config: AgentConfig, profile: ProfileConfig) async {
        let enroller = ProfileEnroller(config: config, profile: profile, environment: environment, logger: logger)
        // One wake-up is one run: it checks the CRL at most once (see revocation_check_interval).
        var checkedRevocation = false
        while !Task.isCancelled {
            var next: Date?
            do {
                switch try await enroller.step(intent: .renew(), revocationCheckedThisRun: checkedRevocation) {
                case .waited(let until, _):
                    next = until
                case .performed(let action, _, let installed, let error):
                    if action == .checkRevocation { checkedRevocation = true }
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
            MetricsTextfile.export(config, logger: logger, now: environment.clock.now())
            let now = environment.clock.now()
            let nextRevocationCheck = enroller.nextRevocationCheck()
            let delay = WakeupPlanner.nextWake(now: now, dueTimes: [next, nextRevocationCheck].compactMap { $0 })
            notifier.notify("STATUS=\(profile.name): next check in \(DurationText.format(delay))")
            do { try await environment.sleeper.sleep(seconds: max(delay, 1)) } catch { return }
            checkedRevocation = false
        }
    }

    private func logPermissionProblems(_ config: AgentConfig) {
        for problem in config.warnings + config.permissionProblems() {
            logger.warning("\(problem.formatted(path: config.sourcePath))")
        }
    }
}

/// SIGHUP, waited for by one task at a time: a request that arrives while nobody waits is
/// kept for the next waiter; cancelling the waiting task ends its wait (false).
///
/// `@unchecked Sendable`: `pending` and `waiter` are only touched with `lock` held.
final class ReloadSignal: @unchecked Sendable {
    private let lock = NSLock()
    private var pending = false
    private var waiter: CheckedContinuation<Bool, Never>?
    private let source: DispatchSourceSignal

    init() {
        signal(SIGHUP, SIG_IGN)  // the dispatch source receives it instead
        source = DispatchSource.makeSignalSource(signal: SIGHUP, queue: DispatchQueue(label: "enroll-agent.sighup"))
        source.setEventHandler { [weak self] in self?.fire() }
        source.resume()
    }

    /// True on SIGHUP, false when the waiting task was cancelled.
    func wait() async -> Bool {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                lock.lock()
                if pending {
                    pending = false
                    lock.unlock()
                    continuation.resume(returning: true)
                } else if Task.isCancelled {
                    lock.unlock()
                    continuation.resume(returning: false)
                } else {
                    waiter = continuation
                    lock.unlock()
                }
            }
        } onCancel: {
            resume(with: false)
        }
    }

    private func fire() {
        lock.lock()
        if waiter == nil { pending = true }
        lock.unlock()
        resume(with: true)
    }

    private func resume(with value: Bool) {
        lock.lock()
        let continuation = waiter
        waiter = nil
        lock.unlock()
        continuation?.resume(returning: value)
    }
}
