import Foundation
import Renewal

/// The live certificate as the planner needs it.
public struct LiveCertificateFacts: Sendable, Equatable {
    public var lifetime: CertificateLifetime
    /// Serial number, hex.
    public var serial: String
    /// The certificate names a CRL distribution point: its revocation can be checked.
    public var hasCRLDistributionPoint: Bool

    public init(lifetime: CertificateLifetime, serial: String, hasCRLDistributionPoint: Bool = false) {
        self.lifetime = lifetime
        self.serial = serial
        self.hasCRLDistributionPoint = hasCRLDistributionPoint
    }
}

/// The profile's settings that decide what comes next.
public struct EnrollmentPolicy: Sendable, Equatable {
    public var renewal: RenewalPolicy
    /// `pending_max_age`: a request the CA keeps PENDING (or never answers) longer than
    /// this is abandoned, and a fresh one (new key, new transactionID) follows.
    public var pendingMaxAge: TimeInterval
    /// `poll_initial_interval`: the first delay between polls; doubling, capped at `PollSchedule.maximumDelay`.
    public var pollInitialInterval: TimeInterval
    /// How often an unreadable SUCCESS is fetched again before the transaction is abandoned.
    public var maximumUnreadableAttempts: Int
    /// `revocation_check_interval`: how often `renew` and the daemon check the live
    /// certificate's CRL (0: on every run).
    public var revocationCheckInterval: TimeInterval
    /// `on_revoked`.
    public var onRevoked: RevokedCertificatePolicy

    public static let defaultPendingMaxAge: TimeInterval = 7 * 86_400

    public init(renewal: RenewalPolicy = RenewalPolicy(), pendingMaxAge: TimeInterval = EnrollmentPolicy.defaultPendingMaxAge,
                pollInitialInterval: TimeInterval = 10, maximumUnreadableAttempts: Int = 3,
                revocationCheckInterval: TimeInterval = RevocationSchedule.defaultInterval, onRevoked: RevokedCertificatePolicy = .reenroll) {
        self.renewal = renewal
        self.pendingMaxAge = pendingMaxAge
        self.pollInitialInterval = pollInitialInterval
        self.maximumUnreadableAttempts = maximumUnreadableAttempts
        self.revocationCheckInterval = revocationCheckInterval
        self.onRevoked = onRevoked
    }
}

/// What the run was asked to do.
public enum EnrollmentIntent: Sendable, Equatable {
    /// `enroll`: get a certificate where there is no valid one (`force`: in any case);
    /// `abandonPending`: give up the transaction on file first.
    case enroll(force: Bool = false, abandonPending: Bool = false)
    /// `renew`, the daemon and `status`: act when due (`force`: now).
    case renew(force: Bool = false)

    var isForced: Bool {
        switch self {
        case .enroll(let force, _), .renew(let force): return force
        }
    }
}

/// Why a new request is started.
public enum RequestPurpose: Sendable, Equatable {
    case initial
    case renewal(dueSince: Date)
    case replaceExpired(since: Date)
    case forced
    /// The transaction on file was given up; a fresh one replaces it.
    case afterAbandon
    /// A verified CRL lists the live certificate (`on_revoked = "reenroll"`).
    case replaceRevoked(since: Date)

    /// Whether the live certificate may sign a RenewalReq for it.
    public var mayRenewWithLiveCertificate: Bool {
        switch self {
        case .renewal, .forced: return true
        case .initial, .replaceExpired, .afterAbandon, .replaceRevoked: return false
        }
    }

    public var description: String {
        switch self {
        case .initial: return "no certificate is installed"
        case .renewal: return "renewal is due"
        case .replaceExpired: return "the certificate has expired"
        case .forced: return "forced"
        case .afterAbandon: return "the previous request was abandoned"
        case .replaceRevoked: return "the certificate has been revoked"
        }
    }
}

/// Why nothing is done now.
public enum WaitReason: Sendable, Equatable {
    /// `enroll` and a valid certificate is installed.
    case certificateValid
    /// Renewal is not due before the time given.
    case notDue
    /// After failures, the next attempt waits.
    case backingOff(failures: Int)
    /// The CA said PENDING; the next poll is scheduled.
    case pollScheduled
    /// A request on file waits for its next attempt after a failure.
    case retryScheduled(failures: Int)
}

/// One step for the runner to perform (it performs exactly one, then asks again).
public enum EnrollmentAction: Sendable, Equatable {
    /// Nothing now; `until` is when to ask again (nil: not until something changes).
    case wait(until: Date?, reason: WaitReason)
    /// Create a key, fetch a challenge, build the request and put it on file.
    case startRequest(RequestPurpose)
    /// Send the request on file.
    case send
    /// CertPoll the transaction on file.
    case poll
    /// Send the request on file again, unchanged: the CA did not know it.
    case resend
    /// Give up the transaction on file (its key and request are deleted).
    case abandon(reason: String)
    /// Fetch the live certificate's CRL and check it (changes no installed file).
    case checkRevocation
}

/// The pure decision of what comes next for one profile, shared by `enroll`, `renew`,
/// the daemon and `status` so they cannot disagree (cert-manager's renewal time,
/// certmonger's one step at a time). No clock, no files: everything is an argument.
public enum EnrollmentPlanner {
    /// - Parameter revocationCheckedThisRun: the run (a command, one daemon wake-up) has
    ///   checked the CRL already; with `revocation_check_interval = "0s"` it would otherwise
    ///   check again at every step.
    public static func next(state: ProfileState, live: LiveCertificateFacts?, policy: EnrollmentPolicy,
                            intent: EnrollmentIntent, now: Date, revocationCheckedThisRun: Bool = false) -> EnrollmentAction {
        let force = intent.isForced
        if case .enroll(_, true) = intent, state.phase.transaction != nil {
            return .abandon(reason: "abandoned by hand (enroll --abandon-pending)")
        }
        if let transaction = state.phase.transaction,
           let reason = expiry(of: transaction, phase: state.phase, live: live, policy: policy, now: now) {
            return .abandon(reason: reason)
        }
        let retryPending = !force && (state.retryAt.map { $0 > now } ?? false)

        switch state.phase {
        case .prepared:
            if retryPending { return .wait(until: state.retryAt, reason: .retryScheduled(failures: state.failures)) }
            return .send
        case .submitted(let submission):
            if submission.unrecognized {
                guard submission.resends == 0 else {
                    return .abandon(reason: "the CA does not know transaction \(submission.transaction.transactionID) even after it was sent again")
                }
                return .resend
            }
            if retryPending { return .wait(until: state.retryAt, reason: .retryScheduled(failures: state.failures)) }
            return .poll
        case .pending:
            if retryPending {
                return .wait(until: state.retryAt, reason: state.failures > 0 ? .retryScheduled(failures: state.failures) : .pollScheduled)
            }
            return .poll
        case .replyUnreadable(let reply):
            guard reply.attempts < policy.maximumUnreadableAttempts else {
                return .abandon(reason: "the CA's answer could not be opened \(reply.attempts) times (\(reply.reason))")
            }
            if retryPending { return .wait(until: state.retryAt, reason: .retryScheduled(failures: state.failures)) }
            return .poll
        case .idle:
            // `renew` and the daemon look at the CRL before deciding anything else: a
            // revoked certificate must not sign a RenewalReq. `enroll` does not check.
            if case .renew = intent, !revocationCheckedThisRun,
               RevocationSchedule.isDue(state: state, live: live, interval: policy.revocationCheckInterval, now: now) {
                return .checkRevocation
            }
            return idle(state: state, live: live, policy: policy, intent: intent, now: now)
        }
    }

    private static func idle(state: ProfileState, live: LiveCertificateFacts?, policy: EnrollmentPolicy,
                             intent: EnrollmentIntent, now: Date) -> EnrollmentAction {
        let decision = renewalDecision(state: state, live: live, policy: policy, now: now)
        let revoked = RevocationSchedule.revocation(state, for: live)
        let replacesRevoked = revoked.map { _ in policy.onRevoked == .reenroll } ?? false
        if case .enroll(let force, _) = intent {
            // A person asked: no backoff, but nothing to do while the certificate is valid.
            if let revoked, force || replacesRevoked { return .startRequest(.replaceRevoked(since: revoked.revokedAt)) }
            if force { return .startRequest(.forced) }
            switch decision {
            case .noCertificate: return .startRequest(state.lastAbandoned == nil ? .initial : .afterAbandon)
            case .expired(let since): return .startRequest(.replaceExpired(since: since))
            case .due, .notDue: return .wait(until: nil, reason: .certificateValid)
            }
        }
        if let revoked, intent.isForced { return .startRequest(.replaceRevoked(since: revoked.revokedAt)) }
        if intent.isForced { return .startRequest(.forced) }
        if let retryAt = state.retryAt, retryAt > now, state.failures > 0 {
            return .wait(until: retryAt, reason: .backingOff(failures: state.failures))
        }
        if let revoked, replacesRevoked { return .startRequest(.replaceRevoked(since: revoked.revokedAt)) }
        switch decision {
        case .noCertificate: return .startRequest(justAbandoned(state, now) ? .afterAbandon : .initial)
        case .expired(let since): return .startRequest(.replaceExpired(since: since))
        case .due(let since): return .startRequest(justAbandoned(state, now) ? .afterAbandon : .renewal(dueSince: since))
        case .notDue(let until): return .wait(until: until, reason: .notDue)
        }
    }

    private static func justAbandoned(_ state: ProfileState, _ now: Date) -> Bool {
        guard let abandoned = state.lastAbandoned else { return false }
        return state.lastSuccessAt.map { abandoned.at > $0 } ?? true
    }

    /// The renewal decision for the live certificate with the persisted jitter (0 when
    /// none was picked for this certificate yet).
    public static func renewalDecision(state: ProfileState, live: LiveCertificateFacts?, policy: EnrollmentPolicy, now: Date) -> RenewalDecision {
        guard let live else { return .noCertificate }
        let jitter = state.renewalJitter.flatMap { $0.serial == live.serial ? $0.seconds : nil } ?? 0
        return RenewalSchedule.decision(now: now, lifetime: live.lifetime, policy: policy.renewal, jitter: jitter)
    }

    /// When a transaction on file must be given up: `pending_max_age` after it started,
    /// and for a renewal never later than the renewed certificate's end minus a margin,
    /// so a fresh request still has time before it expires.
    public static func deadline(for transaction: SCEPTransaction, live: LiveCertificateFacts?, policy: EnrollmentPolicy) -> Date {
        var deadline = transaction.startedAt.addingTimeInterval(policy.pendingMaxAge)
        if let renewed = transaction.renews, let live, live.serial == renewed.serial, renewed.notAfter > transaction.startedAt {
            deadline = min(deadline, renewed.notAfter.addingTimeInterval(-renewalMargin(live.lifetime)))
            deadline = max(deadline, transaction.startedAt)
        }
        return deadline
    }

    /// Time kept before notAfter for a fresh request: a tenth of the lifetime, at most a day.
    public static func renewalMargin(_ lifetime: CertificateLifetime) -> TimeInterval {
        min(86_400, lifetime.duration / 10)
    }

    private static func expiry(of transaction: SCEPTransaction, phase: EnrollmentPhase, live: LiveCertificateFacts?,
                               policy: EnrollmentPolicy, now: Date) -> String? {
        // A request not yet sent has cost nothing at the CA; it is sent, not aged out.
        if case .prepared = phase { return nil }
        let deadline = deadline(for: transaction, live: live, policy: policy)
        guard now >= deadline else { return nil }
        let age = DurationText.format(now.timeIntervalSince(transaction.startedAt))
        if deadline < transaction.startedAt.addingTimeInterval(policy.pendingMaxAge) {
            return "transaction \(transaction.transactionID) has been open for \(age) and the certificate it renews ends soon; a fresh request gets its chance"
        }
        return "transaction \(transaction.transactionID) has been open for \(age), longer than pending_max_age (\(DurationText.format(policy.pendingMaxAge)))"
    }

    /// Which request a new one is: RenewalReq signed with the live certificate when the
    /// purpose allows it and the profile and the server agree, else PKCSReq.
    /// A revoked live certificate never signs one (`liveCertificateRevoked`), whatever the purpose,
    /// nor does one whose key cannot receive the reply (`liveKeyReceivesReplies` false: an
    /// EC key, while SCEP encrypts replies with RSA key transport to the request's signer).
    /// After a CA rollover (`liveCertificateFromCurrentCA` false: a CA the server no longer
    /// presents issued it) the new CA may refuse a RenewalReq signed by it, so `auto` sends
    /// a PKCSReq with a fresh challenge, as for an expired certificate; `renewalreq` is the
    /// administrator's explicit choice and stays.
    public static func requestKind(purpose: RequestPurpose, mode: RenewalRequestMode, serverOffersRenewal: Bool,
                                   liveCertificateValid: Bool, liveCertificateRevoked: Bool = false,
                                   liveKeyReceivesReplies: Bool = true,
                                   liveCertificateFromCurrentCA: Bool = true) -> RequestKind {
        guard purpose.mayRenewWithLiveCertificate, liveCertificateValid, !liveCertificateRevoked,
              liveKeyReceivesReplies else { return .pkcsReq }
        switch mode {
        case .pkcsReq: return .pkcsReq
        case .renewalReq: return .renewalReq
        case .auto: return serverOffersRenewal && liveCertificateFromCurrentCA ? .renewalReq : .pkcsReq
        }
    }
}

/// `renewal_mode`.
public enum RenewalRequestMode: String, CaseIterable, Equatable, Sendable {
    /// RenewalReq when the server advertises `Renewal`, else PKCSReq with a new challenge.
    case auto
    /// Always RenewalReq, signed with the current certificate.
    case renewalReq = "renewalreq"
    /// Always PKCSReq with a fresh challenge.
    case pkcsReq = "pkcsreq"
}

/// Delay before the next CertPoll: initial × 2^polls, capped at 10 minutes.
public enum PollSchedule {
    public static let maximumDelay: TimeInterval = 600

    public static func delay(afterPolls polls: Int, initial: TimeInterval) -> TimeInterval {
        min(maximumDelay, initial * pow(2, Double(min(max(polls, 0), 20))))
    }
}
