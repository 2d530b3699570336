import Foundation

/// A problem with a renewal policy, found by ``RenewalSchedule/validate(_:lifetime:)``.
///
/// `description` says what is wrong, with the durations involved, and what to do; it is meant
/// for `enroll-agent check-config` output. Equality compares the code only, so tests and
/// callers can match on the kind of problem without depending on the wording.
public struct RenewalPolicyProblem: Error, Sendable, Equatable, CustomStringConvertible {
    /// The kind of problem.
    public enum Code: String, Sendable, Equatable {
        /// `renew_before` is zero, negative or not a number.
        case renewBeforeNotPositive
        /// `renew_before` is not shorter than the certificate's lifetime.
        case renewBeforeNotShorterThanLifetime
        /// The maximum jitter is negative or not a number.
        case maximumJitterNegative
        /// The certificate's `notAfter` is not after its `notBefore`.
        case emptyLifetime
        /// `renewal_threshold_percent` is outside 1...99.
        case renewalThresholdOutOfRange
        /// Both `renew_before` and `renewal_threshold_percent` are set: two answers to one question.
        case renewBeforeAndThresholdBothSet
    }

    /// The config key the problem is about (`renew_before`, `renew_jitter`,
    /// `renewal_threshold_percent`), so `check-config` can point at its line.
    public var configKey: String {
        switch code {
        case .maximumJitterNegative: return "renew_jitter"
        case .renewalThresholdOutOfRange, .renewBeforeAndThresholdBothSet: return "renewal_threshold_percent"
        case .renewBeforeNotPositive, .renewBeforeNotShorterThanLifetime, .emptyLifetime: return "renew_before"
        }
    }

    /// The kind of problem.
    public let code: Code
    /// What is wrong and what to do, naming the config key and durations.
    public let description: String

    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.code == rhs.code }

    static func renewBeforeNotPositive(_ value: TimeInterval) -> Self {
        Self(code: .renewBeforeNotPositive,
             description: "renew_before (\(DurationText.format(value))) must be a positive duration; "
                + "it is ignored and renewal happens at two thirds of the lifetime. "
                + "Set it to e.g. \"30d\" or remove it.")
    }

    static func renewBeforeNotShorterThanLifetime(
        renewBefore: TimeInterval, lifetime: TimeInterval, renewsAfter: TimeInterval,
        fallback: String = "at two thirds of the lifetime"
    ) -> Self {
        Self(code: .renewBeforeNotShorterThanLifetime,
             description: "renew_before (\(DurationText.format(renewBefore))) is not shorter than the "
                + "certificate lifetime (\(DurationText.format(lifetime))); it is ignored and renewal "
                + "happens \(fallback) (\(DurationText.format(renewsAfter)) after notBefore). "
                + "Set renew_before below \(DurationText.format(lifetime)) or remove it.")
    }

    static func renewalThresholdOutOfRange(_ percent: Int) -> Self {
        Self(code: .renewalThresholdOutOfRange,
             description: "renewal_threshold_percent (\(percent)) must be between 1 and 99 (the share of the "
                + "lifetime that remains when renewal starts; Intune's default is 20); it is ignored.")
    }

    static func renewBeforeAndThresholdBothSet(renewBefore: TimeInterval, percent: Int) -> Self {
        Self(code: .renewBeforeAndThresholdBothSet,
             description: "renewal_threshold_percent (\(percent)) and renew_before (\(DurationText.format(renewBefore))) "
                + "both say when to renew; renew_before wins and the threshold is ignored. "
                + "Keep one of them.")
    }

    static func maximumJitterNegative(_ value: TimeInterval) -> Self {
        Self(code: .maximumJitterNegative,
             description: "renewal jitter (\(DurationText.format(value))) must be zero or a positive duration; "
                + "it is treated as 0 (no jitter).")
    }

    static func emptyLifetime(_ lifetime: CertificateLifetime) -> Self {
        Self(code: .emptyLifetime,
             description: "the certificate's notAfter (\(lifetime.notAfter)) is not after its notBefore "
                + "(\(lifetime.notBefore)); it cannot be renewed on a schedule. Re-enroll to replace it.")
    }
}
