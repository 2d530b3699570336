import Foundation

/// How early a certificate is renewed: the `renew_before`, `renewal_threshold_percent` and
/// jitter settings of a profile.
///
/// The policy is data only; ``RenewalSchedule`` turns it into times. Values that make no sense
/// (a `renewBefore` not shorter than the lifetime, negative durations) never crash or stall the
/// schedule: they are ignored there and reported by ``RenewalSchedule/validate(_:lifetime:)``.
public struct RenewalPolicy: Sendable, Equatable {
    /// Renew this long before `notAfter` (config key `renew_before`).
    /// `nil` renews when two thirds of the lifetime have passed.
    public var renewBefore: TimeInterval?

    /// Renew when this share of the lifetime remains, in percent (config key
    /// `renewal_threshold_percent`, as Intune's "Renewal threshold (%)": 20 renews when 80% of
    /// the lifetime has passed). Used when `renewBefore` is not set (or not usable); values
    /// outside 1...99 are ignored and reported by ``RenewalSchedule/validate(_:lifetime:)``.
    public var renewalThresholdPercent: Int?

    /// The largest amount by which renewal may happen earlier than the nominal time, so that a
    /// fleet issued at the same instant does not renew at the same instant.
    /// `nil` uses ``RenewalPolicy/defaultMaximumJitter(lifetime:)``; `0` disables jitter.
    public var maximumJitter: TimeInterval?

    /// - Parameters:
    ///   - renewBefore: renew this long before `notAfter`; `nil` renews at two thirds of the lifetime.
    ///   - maximumJitter: the largest random advance; `nil` for the default.
    ///   - renewalThresholdPercent: renew when this share of the lifetime remains (1...99).
    public init(renewBefore: TimeInterval? = nil, maximumJitter: TimeInterval? = nil,
                renewalThresholdPercent: Int? = nil) {
        self.renewBefore = renewBefore
        self.maximumJitter = maximumJitter
        self.renewalThresholdPercent = renewalThresholdPercent
    }

    /// Renew at two thirds of the lifetime with the default jitter.
    public static let `default` = RenewalPolicy()

    /// The default renewal point as a fraction of the lifetime (cert-manager uses the same).
    public static let defaultRenewalFraction: Double = 2.0 / 3.0

    /// The thresholds `renewal_threshold_percent` accepts: 0 would renew at notAfter (too late
    /// to be useful) and 100 at notBefore (continuously).
    public static let renewalThresholdRange: ClosedRange<Int> = 1...99

    /// Upper bound of the default jitter: 6 hours spreads a large fleet thinly while keeping
    /// renewal close to where the operator expects it.
    public static let defaultJitterCeiling: TimeInterval = 6 * 3600

    /// The default jitter as a fraction of the lifetime, so short-lived certificates get a
    /// proportionally short jitter (a 10-minute certificate: 30 seconds).
    public static let defaultJitterFraction: Double = 0.05

    /// The default maximum jitter: `min(5% of the lifetime, 6 hours)`.
    public static func defaultMaximumJitter(lifetime: CertificateLifetime) -> TimeInterval {
        min(lifetime.duration * defaultJitterFraction, defaultJitterCeiling)
    }
}

/// The validity period of a certificate (RFC 5280 §4.1.2.5: `notBefore` through `notAfter`,
/// both inclusive).
public struct CertificateLifetime: Sendable, Equatable {
    /// Start of validity.
    public var notBefore: Date
    /// End of validity; the certificate is still valid at exactly this instant.
    public var notAfter: Date

    public init(notBefore: Date, notAfter: Date) {
        self.notBefore = notBefore
        self.notAfter = notAfter
    }

    /// `notAfter - notBefore`, or 0 when the dates are reversed (a malformed certificate).
    /// Valid from notBefore through notAfter, both inclusive (RFC 5280 §4.1.2.5): the one
    /// rule `status`, the schedule and the planner share.
    public func isValid(at time: Date) -> Bool {
        notBefore <= time && time <= notAfter
    }

    public var duration: TimeInterval {
        let seconds = notAfter.timeIntervalSince(notBefore)
        return seconds.isFinite && seconds > 0 ? seconds : 0
    }
}
