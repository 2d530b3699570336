import Foundation

/// What a profile should do at a given instant, as decided by
/// ``RenewalSchedule/decision(now:lifetime:policy:jitter:)``.
public enum RenewalDecision: Sendable, Equatable {
    /// No certificate yet: enroll now.
    case noCertificate
    /// The certificate is fine; check again at `until` (the jittered renewal time).
    case notDue(until: Date)
    /// Renewal time has passed (since the jittered renewal time): send a RenewalReq signed with
    /// the current certificate.
    case due(since: Date)
    /// The certificate expired at `since` (its `notAfter`): it can no longer sign a RenewalReq,
    /// so fall back to a fresh PKCSReq.
    case expired(since: Date)

    /// A short word for `enroll-agent status`: `"none"`, `"not due"`, `"due"` or `"expired"`.
    public var reason: String {
        switch self {
        case .noCertificate: return "none"
        case .notDue: return "not due"
        case .due: return "due"
        case .expired: return "expired"
        }
    }

    /// Whether the agent should request a certificate now (enroll, renew or re-enroll).
    public var requiresAction: Bool {
        if case .notDue = self { return false }
        return true
    }

    /// When this decision next needs a look, for ``WakeupPlanner``: the renewal time when not
    /// due, otherwise `now` (act immediately).
    public func nextCheck(now: Date) -> Date {
        if case .notDue(let until) = self { return until }
        return now
    }
}
