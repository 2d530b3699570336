import CertStore
import EnrollmentPlan
import Foundation
import Logging
import Renewal
import SCEPClient
import X509

/// What `enroll` did for one profile.
enum EnrollResult {
    case alreadyValid(Certificate)
    case installed(InstalledGeneration, Certificate)
}

/// What `renew` did for one profile.
enum RenewResult {
    /// Nothing to do before `until` (no network was used).
    case notDue(until: Date)
    /// A recent failure: the next attempt waits until `until` (exponential backoff).
    case backingOff(until: Date)
    /// A new certificate is live, obtained with `messageType`.
    case renewed(InstalledGeneration, Certificate, messageType: MessageType)
}

/// How a command-line run (`enroll`, `renew`) ended.
enum RunEnd {
    case waiting(until: Date?, reason: WaitReason)
    case installed(InstalledCertificate)
}

/// Drives one profile's state machine for a command: asks `ProfileRunner` for one step
/// at a time until the planner says wait, within bounds — at most `maximumSteps` steps,
/// and waits (for the next poll, or right after a lost answer) only while they end
/// within `poll_max_wait` of the start. Sleeps between steps without the lock.
struct ProfileEnroller {
    let config: AgentConfig
    let profile: ProfileConfig
    let environment: AgentEnvironment
    let logger: Logger
    /// More than any good run needs (prepare, send, poll, resend, poll, install…):
    /// a bound against a planner bug, not a policy.
    static let maximumSteps = 16

    init(config: AgentConfig, profile: ProfileConfig, environment: AgentEnvironment, logger: Logger) {
        self.config = config
        self.profile = profile
        self.environment = environment
        var logger = logger
        logger[metadataKey: "profile"] = "\(profile.name)"
        self.logger = logger
    }

    /// One step, its blocking work off the cooperative pool (`BlockingWorkExecutor`).
    func step(intent: EnrollmentIntent, revocationCheckedThisRun: Bool = false) async throws -> StepReport {
        let runner = self.runner
        return try await withTaskExecutorPreference(BlockingWorkExecutor.shared) {
            try await runner.step(intent: intent, revocationCheckedThisRun: revocationCheckedThisRun)
        }
    }

    var runner: ProfileRunner { ProfileRunner(config: config, profile: profile, environment: environment, logger: logger) }

    var storeDirectory: String { runner.storeDirectory }

    /// `enroll`: does nothing when a valid certificate is live (unless `force`).
    func enroll(force: Bool, abandonPending: Bool = false) async throws -> EnrollResult {
        switch try await run(.enroll(force: force, abandonPending: abandonPending)) {
        case .installed(let installed):
            return .installed(installed.generation, installed.certificate)
        case .waiting(_, .certificateValid):
            let live = try LiveCertificate.load(from: ProfileStore(readingFrom: storeDirectory))
            guard let live else { throw AgentError(.internalError, "the planner saw a valid certificate that cannot be read", profile: profile.name) }
            logger.info("a valid certificate is installed; nothing to do (use --force to enroll again)",
                        metadata: ["subject": "\(live.certificate.subject)", "notAfter": "\(live.certificate.notValidAfter)"])
            return .alreadyValid(live.certificate)
        case .waiting(let until, let reason):
            throw stillWaiting(until: until, reason: reason)
        }
    }

    /// `renew`: a no-op without network unless renewal is due (or `force`), a request
    /// is on file, or there is no certificate yet.
    func renew(force: Bool) async throws -> RenewResult {
        switch try await run(.renew(force: force)) {
        case .installed(let installed):
            return .renewed(installed.generation, installed.certificate, messageType: installed.kind == .renewalReq ? .renewalReq : .pkcsReq)
        case .waiting(let until?, .notDue):
            logger.debug("renewal not due", metadata: ["until": "\(until)"])
            return .notDue(until: until)
        case .waiting(let until?, .backingOff(let failures)):
            logger.info("renewal due, but backing off after \(failures) failure(s)", metadata: ["nextAttempt": "\(until)"])
            return .backingOff(until: until)
        case .waiting(let until, let reason):
            throw stillWaiting(until: until, reason: reason)
        }
    }

    /// Steps until the planner says wait beyond this run's budget, or a step fails.
    func run(_ intent: EnrollmentIntent) async throws -> RunEnd {
        let started = environment.clock.now()
        var intent = intent
        var lastFailure: AgentError?
        var checkedRevocation = false
        for _ in 0..<Self.maximumSteps {
            switch try await step(intent: intent, revocationCheckedThisRun: checkedRevocation) {
            case .waited(let until, let reason):
                guard let until, Self.waitsWithinRun(reason),
                      until.timeIntervalSince(started) <= profile.pollMaxWait else {
                    // A run that failed along the way says so, even if the plan is now to wait.
                    if let lastFailure { throw lastFailure }
                    return .waiting(until: until, reason: reason)
                }
                let delay = until.timeIntervalSince(environment.clock.now())
                if delay > 0 {
                    logger.info("waiting for the next step", metadata: ["inSeconds": "\(Int(delay.rounded(.up)))"])
                    try await environment.sleeper.sleep(seconds: delay)
                }
            case .performed(let action, let outcome, let installed, let error):
                // One certificate per run: what comes after it is the next run's business.
                if let installed { return .installed(installed) }
                // "force" is for the first step (and for the request that replaces an abandoned
                // one); afterwards the ordinary plan applies, waits included.
                // A revocation check comes before the step that was asked for.
                switch action {
                case .abandon: break
                case .checkRevocation: checkedRevocation = true
                default: intent = Self.unforced(intent)
                }
                if let error {
                    lastFailure = error
                    if !Self.recoverableInRun(outcome, after: action) { throw error }
                }
            }
        }
        throw lastFailure ?? AgentError(.internalError, "\(Self.maximumSteps) steps in one run without an end; this is a bug", profile: profile.name)
    }

    /// Waits a command sits out: the CA's PENDING, and a retry of a request on file.
    static func waitsWithinRun(_ reason: WaitReason) -> Bool {
        switch reason {
        case .pollScheduled, .retryScheduled: return true
        case .certificateValid, .notDue, .backingOff: return false
        }
    }

    /// A lost answer right after sending, or a CA that did not know the request: the same
    /// run looks again (bounded by the steps and `poll_max_wait`).
    static func recoverableInRun(_ outcome: StepOutcome, after action: EnrollmentAction) -> Bool {
        switch outcome {
        case .unknownToCA: return true
        case .unverified: return action == .send || action == .resend
        default: return false
        }
    }

    static func unforced(_ intent: EnrollmentIntent) -> EnrollmentIntent {
        switch intent {
        case .enroll: return .enroll(force: false, abandonPending: false)
        case .renew: return .renew(force: false)
        }
    }

    private func stillWaiting(until: Date?, reason: WaitReason) -> AgentError {
        let state = (try? ProfileStore(readingFrom: storeDirectory).loadState()) ?? ProfileState()
        let transaction = state.phase.transaction
        switch reason {
        case .pollScheduled:
            let age = transaction.map { DurationText.format(environment.clock.now().timeIntervalSince($0.startedAt)) } ?? "?"
            return AgentError(.pending, "the request (transactionID \(transaction?.transactionID ?? "-")) is still PENDING, \(age) after it was sent (this run waited up to poll_max_wait \(DurationText.format(profile.pollMaxWait))); it stays on file and the next run resumes polling — a CA administrator may need to approve it",
                              profile: profile.name)
        case .retryScheduled, .backingOff:
            let detail = state.lastError.map { ": \($0)" } ?? ""
            return AgentError(.server, "the request on file could not be completed\(detail); it stays on file and is tried again\(until.map { " after \(ProfileStatus.format($0))" } ?? "")",
                              profile: profile.name)
        case .certificateValid, .notDue:
            return AgentError(.internalError, "nothing to do", profile: profile.name)
        }
    }
}
