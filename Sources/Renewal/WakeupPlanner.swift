import Foundation

/// How long the daemon sleeps: until the earliest thing due across all profiles, but never
/// longer than `maximumSleep`.
///
/// The clamp is there because sleeping is measured on a monotonic clock while renewal times are
/// wall-clock dates: after a suspend, or when NTP steps the clock, a long sleep would overshoot.
/// The loop must re-read the wall clock after every wake-up and recompute its decisions rather
/// than assume the time slept is the time passed.
public enum WakeupPlanner {
    /// The default longest sleep: one hour.
    public static let defaultMaximumSleep: TimeInterval = 3600

    /// Seconds to sleep from `now`.
    ///
    /// - Parameters:
    ///   - dueTimes: when each profile next needs attention (see ``RenewalDecision/nextCheck(now:)``
    ///     and ``RetryBackoff/retryTime(now:consecutiveFailures:notAfter:base:cap:using:)``).
    ///     Dates that are not a number are ignored.
    ///   - maximumSleep: the clamp; a non-positive or non-finite value falls back to the default.
    /// - Returns: 0 when something is already due; `maximumSleep` when nothing is scheduled.
    public static func nextWake(now: Date, dueTimes: [Date], maximumSleep: TimeInterval = defaultMaximumSleep) -> TimeInterval {
        let limit = maximumSleep.isFinite && maximumSleep > 0 ? maximumSleep : defaultMaximumSleep
        let earliest = dueTimes
            .map { $0.timeIntervalSince(now) }
            .filter { !$0.isNaN }
            .min()
        guard let earliest else { return limit }
        return min(max(earliest, 0), limit)
    }
}
