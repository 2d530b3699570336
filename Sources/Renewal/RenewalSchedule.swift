import Foundation

/// When to renew a certificate: pure functions of its lifetime, the profile's ``RenewalPolicy``
/// and a jitter that is picked once per certificate and persisted with it.
///
/// Nothing here reads the clock or a random source of its own: `now` and the random number
/// generator are parameters, so the daemon, `status` and the tests all agree on the answer.
///
/// The rules follow cert-manager's `pkg/util/pki/renewaltime.go`:
/// - renew `renewBefore` before `notAfter`;
/// - without `renewBefore`, or when it is not shorter than the lifetime (it would mean "renew
///   before the certificate was issued"), renew when `renewalThresholdPercent` of the lifetime
///   remains (Intune's "Renewal threshold (%)"), and without that either, when two thirds of
///   the lifetime have passed;
/// - then subtract the jitter, which only ever makes renewal earlier, never before `notBefore`.
///
/// Both `renewBefore` and a threshold set is a configuration conflict that
/// ``validate(_:lifetime:)`` reports; the schedule then follows `renewBefore`, the more
/// specific of the two.
public enum RenewalSchedule {
    /// The renewal time before jitter.
    ///
    /// A `renewBefore` that is not positive, not finite, or not shorter than the lifetime, and a
    /// threshold outside 1...99, are ignored (``validate(_:lifetime:)`` reports them). For a
    /// malformed certificate whose `notAfter` is not after `notBefore`, this is `notAfter`.
    public static func nominalRenewalTime(_ lifetime: CertificateLifetime, policy: RenewalPolicy) -> Date {
        let duration = lifetime.duration
        guard duration > 0 else { return lifetime.notAfter }
        if let renewBefore = policy.renewBefore, isUsable(renewBefore: renewBefore, duration: duration) {
            return lifetime.notAfter.addingTimeInterval(-renewBefore)
        }
        if let percent = policy.renewalThresholdPercent, RenewalPolicy.renewalThresholdRange.contains(percent) {
            return lifetime.notAfter.addingTimeInterval(-duration * Double(percent) / 100)
        }
        return lifetime.notBefore.addingTimeInterval(duration * RenewalPolicy.defaultRenewalFraction)
    }

    /// The largest jitter that applies to this certificate: the policy's maximum (or the default),
    /// limited so that renewal never moves before `notBefore`.
    public static func jitterBound(_ lifetime: CertificateLifetime, policy: RenewalPolicy) -> TimeInterval {
        let requested = policy.maximumJitter ?? RenewalPolicy.defaultMaximumJitter(lifetime: lifetime)
        // NaN or negative means "no jitter"; infinity is bounded by the room before notBefore.
        guard requested.isNaN == false, requested > 0 else { return 0 }
        let room = nominalRenewalTime(lifetime, policy: policy).timeIntervalSince(lifetime.notBefore)
        return max(0, min(requested, room))
    }

    /// Picks the jitter for a newly installed certificate: whole seconds, uniform in
    /// `0...jitterBound`, by which renewal happens *earlier* than nominal.
    ///
    /// Call this once when a certificate is installed and persist the result next to it; pass
    /// the persisted value to ``renewalTime(_:policy:jitter:)`` and ``decision(now:lifetime:policy:jitter:)``
    /// on every check. Re-rolling on every check would make renewal happen at the earliest of
    /// many draws, defeating the spread.
    public static func pickJitter(
        _ lifetime: CertificateLifetime,
        policy: RenewalPolicy,
        using rng: inout some RandomNumberGenerator
    ) -> TimeInterval {
        let bound = jitterBound(lifetime, policy: policy)
        // Whole seconds keep the persisted value readable. The clamp (~285 million years) keeps
        // the conversion safe for absurd notAfter dates.
        guard bound >= 1 else { return 0 }
        let whole = UInt64(min(bound.rounded(.down), 9.0e15))
        return TimeInterval(UInt64.random(in: 0...whole, using: &rng))
    }

    /// The renewal time: nominal minus the persisted jitter.
    ///
    /// The jitter is clamped to `0...jitterBound`, so a stale or corrupt persisted value
    /// (from a longer-lived certificate, edited by hand, negative) can neither delay renewal past
    /// nominal nor move it before `notBefore`.
    public static func renewalTime(_ lifetime: CertificateLifetime, policy: RenewalPolicy, jitter: TimeInterval) -> Date {
        let nominal = nominalRenewalTime(lifetime, policy: policy)
        let usable = jitter.isNaN ? 0 : min(max(jitter, 0), jitterBound(lifetime, policy: policy))
        return nominal.addingTimeInterval(-usable)
    }

    /// What to do at `now`.
    ///
    /// - `nil` lifetime (no certificate installed): ``RenewalDecision/noCertificate``.
    /// - after `notAfter`: ``RenewalDecision/expired(since:)``. At exactly `notAfter` the
    ///   certificate is still valid (RFC 5280 §4.1.2.5), so it can still sign a RenewalReq.
    /// - at or after the renewal time: ``RenewalDecision/due(since:)``.
    /// - otherwise, including before `notBefore` (clock behind the CA's):
    ///   ``RenewalDecision/notDue(until:)``.
    public static func decision(
        now: Date,
        lifetime: CertificateLifetime?,
        policy: RenewalPolicy,
        jitter: TimeInterval
    ) -> RenewalDecision {
        guard let lifetime else { return .noCertificate }
        if now > lifetime.notAfter { return .expired(since: lifetime.notAfter) }
        let renewal = renewalTime(lifetime, policy: policy, jitter: jitter)
        return now >= renewal ? .due(since: renewal) : .notDue(until: renewal)
    }

    /// Problems `check-config` should report for this policy, optionally against a certificate's
    /// lifetime (known once a certificate is installed). Empty when the policy is fine.
    ///
    /// The schedule never fails on these: it ignores the offending value and uses the default,
    /// so an agent keeps renewing while the operator fixes the configuration.
    public static func validate(_ policy: RenewalPolicy, lifetime: CertificateLifetime? = nil) -> [RenewalPolicyProblem] {
        var problems: [RenewalPolicyProblem] = []
        if let renewBefore = policy.renewBefore, !(renewBefore.isFinite && renewBefore > 0) {
            problems.append(.renewBeforeNotPositive(renewBefore))
        }
        if let jitter = policy.maximumJitter, !(jitter.isFinite && jitter >= 0) {
            problems.append(.maximumJitterNegative(jitter))
        }
        if let percent = policy.renewalThresholdPercent {
            if !RenewalPolicy.renewalThresholdRange.contains(percent) {
                problems.append(.renewalThresholdOutOfRange(percent))
            } else if let renewBefore = policy.renewBefore {
                problems.append(.renewBeforeAndThresholdBothSet(renewBefore: renewBefore, percent: percent))
            }
        }
        guard let lifetime else { return problems }
        guard lifetime.duration > 0 else {
            problems.append(.emptyLifetime(lifetime))
            return problems
        }
        if let renewBefore = policy.renewBefore, renewBefore.isFinite, renewBefore >= lifetime.duration {
            let used = nominalRenewalTime(lifetime, policy: policy).timeIntervalSince(lifetime.notBefore)
            problems.append(.renewBeforeNotShorterThanLifetime(
                renewBefore: renewBefore, lifetime: lifetime.duration, renewsAfter: used,
                fallback: fallbackDescription(policy)))
        }
        return problems
    }

    /// What the schedule uses when `renewBefore` is ignored, in words.
    private static func fallbackDescription(_ policy: RenewalPolicy) -> String {
        if let percent = policy.renewalThresholdPercent, RenewalPolicy.renewalThresholdRange.contains(percent) {
            return "when \(percent)% of the lifetime remains"
        }
        return "at two thirds of the lifetime"
    }

    private static func isUsable(renewBefore: TimeInterval, duration: TimeInterval) -> Bool {
        renewBefore.isFinite && renewBefore > 0 && renewBefore < duration
    }
}
