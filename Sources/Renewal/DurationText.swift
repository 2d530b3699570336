import Foundation

/// Durations as people write them in the config (`renew_before = "30d"`): the two largest
/// non-zero units of days, hours, minutes and seconds, e.g. `"60d"`, `"1d12h"`, `"40m"`, `"-5h59m"`.
public enum DurationText {
    /// Formats `seconds`, rounded to whole seconds.
    public static func format(_ seconds: TimeInterval) -> String {
        guard seconds.isFinite else { return "\(seconds)s" }
        let rounded = seconds.rounded()
        // Beyond ~292 billion years Int64 overflows; nobody renews that far out.
        guard abs(rounded) < 9.0e15 else { return "\(rounded)s" }
        var remaining = Int64(abs(rounded))
        let sign = rounded < 0 ? "-" : ""
        guard remaining > 0 else { return "0s" }
        var parts: [String] = []
        for (unit, size) in [("d", Int64(86_400)), ("h", 3_600), ("m", 60), ("s", 1)] {
            let count = remaining / size
            remaining %= size
            if count > 0 || !parts.isEmpty { parts.append("\(count)\(unit)") }
        }
        // Keep the two leading units, dropping zero-valued trailing ones ("2d0h" → "2d").
        let shown = parts.prefix(2).filter { !$0.hasPrefix("0") }
        return sign + shown.joined()
    }
}
