import Foundation

/// The `Retry-After` header (RFC 9110 §10.2.3) as a delay in seconds.
///
///     Retry-After = HTTP-date / delay-seconds
///     delay-seconds = 1*DIGIT
///
/// A pure function of the header and a reference time, so the table of cases is
/// tested without a clock. The caller clamps the result: a server may ask for a year.
enum RetryAfter {
    /// The delay the header asks for, or nil when it is absent or not understood
    /// (then the caller backs off on its own). An HTTP-date in the past means "now": 0.
    ///
    /// - Parameter now: the time an HTTP-date is measured from. Pass the reply's own
    ///   `Date` header when it has one: both then come from the server's clock, so a
    ///   device whose clock is wrong (common before its first enrollment) still waits
    ///   as long as the server meant.
    static func delay(_ value: String?, now: Date) -> Double? {
        guard let value else { return nil }
        let text = value.trimmingCharacters(in: .whitespaces)
        if !text.isEmpty, text.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) {
            // Digits only, so this parses; far too many digits give a huge value, clamped later.
            return Double(text)
        }
        guard let date = HTTPDate.parse(text, now: now) else { return nil }
        return max(0, date.timeIntervalSince(now))
    }
}

/// HTTP-date (RFC 9110 §5.6.7): recipients must accept all three forms.
///
///     IMF-fixdate  = day-name "," SP day SP month SP year SP hour ":" minute ":" second SP "GMT"
///                    ; Sun, 06 Nov 1994 08:49:37 GMT
///     rfc850-date  = day-name-l "," SP day "-" month "-" 2DIGIT SP time-of-day SP "GMT"
///                    ; Sunday, 06-Nov-94 08:49:37 GMT
///     asctime-date = day-name SP month SP ( 2DIGIT / ( SP DIGIT ) ) SP time-of-day SP year
///                    ; Sun Nov  6 08:49:37 1994
enum HTTPDate {
    private static let months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]

    /// The date, or nil for anything else. `now` resolves rfc850's two-digit year.
    static func parse(_ text: String, now: Date) -> Date? {
        let fields = text.split(whereSeparator: { $0 == " " || $0 == "," || $0 == "-" }).map(String.init)
        guard let dayName = fields.first, dayName.count >= 3, dayName.allSatisfy(\.isLetter) else { return nil }
        let day: String, month: String, year: String, time: String
        switch fields.count {
        case 6 where fields[5] == "GMT":   // IMF-fixdate, rfc850-date
            (day, month, year, time) = (fields[1], fields[2], fields[3], fields[4])
        case 5:                            // asctime-date
            (month, day, time, year) = (fields[1], fields[2], fields[3], fields[4])
        default:
            return nil
        }
        guard let monthNumber = months.firstIndex(of: month.lowercased()).map({ $0 + 1 }),
              let dayNumber = number(day, digits: 1...2), (1...31).contains(dayNumber),
              let yearNumber = fullYear(year, now: now) else { return nil }
        let clock = time.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard clock.count == 3,
              let hour = number(clock[0], digits: 2...2), hour < 24,
              let minute = number(clock[1], digits: 2...2), minute < 60,
              let second = number(clock[2], digits: 2...2), second <= 60 else { return nil }

        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "GMT")!
        let components = DateComponents(year: yearNumber, month: monthNumber, day: dayNumber,
                                        hour: hour, minute: minute, second: min(second, 59))
        // Reject 31 Feb and the like instead of letting the calendar roll it over.
        guard let date = calendar.date(from: components),
              calendar.component(.day, from: date) == dayNumber else { return nil }
        return date
    }

    private static func number(_ text: String, digits: ClosedRange<Int>) -> Int? {
        guard digits.contains(text.count), text.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return Int(text)
    }

    /// A four-digit year as is; a two-digit one (rfc850) in the century that puts it
    /// at most 50 years after `now`, as RFC 9110 §5.6.7 requires.
    private static func fullYear(_ text: String, now: Date) -> Int? {
        if let year = number(text, digits: 4...4) { return year }
        guard let twoDigits = number(text, digits: 2...2) else { return nil }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "GMT")!
        let current = calendar.component(.year, from: now)
        var year = current - current % 100 + twoDigits
        if year > current + 50 { year -= 100 }
        return year
    }
}
