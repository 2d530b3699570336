import Foundation
import Renewal

/// How a step ended, as the runner saw it. Only verified answers end a transaction;
/// anything unauthenticated (an HTTP error, a dropped connection, a reply that does
/// not verify) leaves it as it was.
public enum StepOutcome: Sendable, Equatable {
    /// `startRequest`: the key and request are on file.
    case prepared(SCEPTransaction)
    /// A verified SUCCESS was installed; `certificate` is the new live one.
    case installed(LiveCertificateFacts, keyStorage: String, jitter: TimeInterval)
    /// A verified PENDING.
    case pending
    /// A verified FAILURE: the transaction is over.
    case rejected(String)
    /// The CA does not know the transaction: a verified badCertId, or (before it ever
    /// acknowledged the request) an HTTP error on CertPoll.
    case unknownToCA(String)
    /// A verified SUCCESS whose content could not be opened.
    case unreadable(String)
    /// Network trouble, an HTTP error, or a reply that did not verify: nothing is known.
    case unverified(String)
    /// A failure on this host (key, challenge, store): the transaction is untouched.
    case localFailure(String)
    /// `abandon` done: the key and request are deleted.
    case abandoned(transactionID: String, reason: String)
    /// `checkRevocation` done (whatever it found: a check without a verdict is not a failure
    /// of the enrollment and starts no backoff).
    case revocationChecked(RevocationCheck)
}

/// The transitions of `EnrollmentPhase`: what a step's outcome makes of the state. Pure,
/// so the whole machine is tested as a table; the runner only performs and persists.
public enum EnrollmentTransitions {
    /// - Parameter liveNotAfter: the live certificate's end; a retry never waits past half
    ///   the time left to it.
    public static func apply(_ outcome: StepOutcome, after action: EnrollmentAction, to state: ProfileState,
                             policy: EnrollmentPolicy, liveNotAfter: Date?, now: Date,
                             using rng: inout some RandomNumberGenerator) -> ProfileState {
        var next = state
        switch outcome {
        case .prepared(let transaction):
            next.phase = .prepared(transaction)
            next.retryAt = nil
        case .installed(let live, let keyStorage, let jitter):
            next.phase = .idle
            next.retryAt = nil
            next.failures = 0
            next.lastError = nil
            next.lastErrorAt = nil
            next.lastSuccessAt = now
            next.lastAttemptAt = now
            next.keyStorage = keyStorage
            next.renewalJitter = RenewalJitter(serial: live.serial, seconds: jitter)
        case .pending:
            next.lastAttemptAt = now
            next.failures = 0
            next.lastError = nil
            next.lastErrorAt = nil
            guard let transaction = state.phase.transaction else { break }
            let polled = action == .poll
            var progress: PendingProgress
            if case .pending(let previous) = state.phase {
                progress = previous
                if polled { progress.polls += 1 }
            } else {
                progress = PendingProgress(transaction: transaction, since: now, polls: polled ? 1 : 0)
            }
            if polled { progress.lastPollAt = now }
            next.phase = .pending(progress)
            next.retryAt = now.addingTimeInterval(PollSchedule.delay(afterPolls: progress.polls, initial: policy.pollInitialInterval))
        case .rejected(let message):
            next.lastAttemptAt = now
            next.phase = .idle
            recordFailure(message, into: &next, liveNotAfter: liveNotAfter, now: now, using: &rng)
        case .unknownToCA(let message):
            next.lastAttemptAt = now
            switch state.phase {
            case .submitted(var submission):
                submission.unrecognized = true
                next.phase = .submitted(submission)
                next.retryAt = nil  // send it again now
                next.lastError = message
                next.lastErrorAt = now
            default:
                // The CA acknowledged it once and now says it never heard of it: over.
                next.phase = .idle
                recordFailure(message, into: &next, liveNotAfter: liveNotAfter, now: now, using: &rng)
            }
        case .unreadable(let reason):
            next.lastAttemptAt = now
            if let transaction = state.phase.transaction {
                var attempts = 1
                if case .replyUnreadable(let previous) = state.phase { attempts = previous.attempts + 1 }
                next.phase = .replyUnreadable(UnreadableReply(transaction: transaction, reason: reason, attempts: attempts))
            }
            recordFailure(reason, into: &next, liveNotAfter: liveNotAfter, now: now, using: &rng)
        case .unverified(let message):
            next.lastAttemptAt = now
            // A request that went out (or may have) is now submitted, whatever came back.
            switch (state.phase, action) {
            case (.prepared(let transaction), .send):
                next.phase = .submitted(Submission(transaction: transaction, sentAt: now))
            case (.submitted(var submission), .resend):
                submission.resends += 1
                submission.unrecognized = false
                submission.sentAt = now
                next.phase = .submitted(submission)
            default:
                break
            }
            recordFailure(message, into: &next, liveNotAfter: liveNotAfter, now: now, using: &rng)
            // Right after sending, the answer may just have been lost: look again soon.
            if case .submitted = next.phase, action == .send || action == .resend {
                next.retryAt = now.addingTimeInterval(Self.firstRecoveryDelay)
            }
        case .localFailure(let message):
            recordFailure(message, into: &next, liveNotAfter: liveNotAfter, now: now, using: &rng)
        case .revocationChecked(let check):
            next.revocation = RevocationRecord.after(check, previous: state.revocation, now: now)
        case .abandoned(let transactionID, let reason):
            next.phase = .idle
            next.retryAt = nil
            next.lastAbandoned = Abandonment(transactionID: transactionID, reason: reason, at: now)
        }
        return next
    }

    /// How soon a request whose answer was lost is polled again.
    public static let firstRecoveryDelay: TimeInterval = 2

    private static func recordFailure(_ message: String, into state: inout ProfileState, liveNotAfter: Date?, now: Date,
                                      using rng: inout some RandomNumberGenerator) {
        state.failures += 1
        state.lastError = message
        state.lastErrorAt = now
        state.retryAt = RetryBackoff.retryTime(now: now, consecutiveFailures: state.failures, notAfter: liveNotAfter, using: &rng)
    }
}
