import Foundation

/// How long to wait after failed enrollment or renewal attempts: exponential backoff with full
/// jitter (each delay uniform in `0...min(cap, base · 2^(failures-1))`), so agents that failed
/// together (the CA was down) do not come back together.
public enum RetryBackoff {
    /// The delay before the next attempt.
    ///
    /// - Parameters:
    ///   - consecutiveFailures: failures since the last success; 0 or less means no delay.
    ///   - base: the ceiling after the first failure.
    ///   - cap: the largest ceiling, reached after about `log2(cap / base)` failures.
    ///   - rng: the random source (seeded in tests and simulations).
    public static func delay(
        consecutiveFailures: Int,
        base: TimeInterval = 60,
        cap: TimeInterval = 6 * 3600,
        using rng: inout some RandomNumberGenerator
    ) -> TimeInterval {
        let ceiling = ceiling(consecutiveFailures: consecutiveFailures, base: base, cap: cap)
        guard ceiling > 0 else { return 0 }
        return TimeInterval.random(in: 0...ceiling, using: &rng)
    }

    /// The upper bound of ``delay(consecutiveFailures:base:cap:using:)`` before the random draw.
    public static func ceiling(consecutiveFailures: Int, base: TimeInterval = 60, cap: TimeInterval = 6 * 3600) -> TimeInterval {
        guard consecutiveFailures > 0, base.isFinite, base > 0, cap.isFinite, cap > 0 else { return 0 }
        // 2^60 · base exceeds any sensible cap already; clamping the exponent avoids infinity.
        let exponent = Double(min(consecutiveFailures - 1, 60))
        return min(cap, base * pow(2, exponent))
    }

    /// When to try again: `now` plus the backoff delay, but while the current certificate is
    /// still valid never later than halfway to its `notAfter`.
    ///
    /// Halving the remaining validity means an agent keeps retrying with growing urgency as expiry
    /// approaches instead of sleeping through it; after expiry the plain backoff applies (the
    /// agent then re-enrolls with a fresh PKCSReq).
    ///
    /// - Parameter notAfter: the current certificate's `notAfter`, or `nil` when there is none.
    public static func retryTime(
        now: Date,
        consecutiveFailures: Int,
        notAfter: Date?,
        base: TimeInterval = 60,
        cap: TimeInterval = 6 * 3600,
        using rng: inout some RandomNumberGenerator
    ) -> Date {
        var wait = delay(consecutiveFailures: consecutiveFailures, base: base, cap: cap, using: &rng)
        if let notAfter {
            let remaining = notAfter.timeIntervalSince(now)
            if remaining > 0 { wait = min(wait, remaining / 2) }
        }
        return now.addingTimeInterval(wait)
    }
}
