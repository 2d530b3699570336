import Foundation
import XCTest

@testable import EnrollAgent

/// `RetryAfter.delay` and `HTTPDate.parse` (RFC 9110 §10.2.3, §5.6.7) as tables.
final class RetryAfterTests: XCTestCase {
    /// Sun, 06 Nov 1994 08:49:37 GMT, the RFC's example date.
    private let now = Date(timeIntervalSince1970: 784_111_777)

    func testDelayTable() {
        let cases: [(String?, Double?, String)] = [
            (nil, nil, "absent"),
            ("", nil, "empty"),
            ("0", 0, "zero"),
            ("7", 7, "delta-seconds"),
            ("  120 ", 120, "surrounding spaces"),
            ("99999999", 99_999_999, "huge: returned as is, the caller clamps"),
            ("-5", nil, "negative"),
            ("+5", nil, "signed"),
            ("1.5", nil, "fraction"),
            ("7s", nil, "unit"),
            ("soon", nil, "garbage"),
            ("0x10", nil, "hex"),
            ("Sun, 06 Nov 1994 08:50:37 GMT", 60, "IMF-fixdate"),
            ("Sunday, 06-Nov-94 08:50:37 GMT", 60, "rfc850-date"),
            ("Sun Nov  6 08:50:37 1994", 60, "asctime-date"),
            ("Sun, 06 Nov 1994 08:48:37 GMT", 0, "a date in the past: retry now"),
            ("Mon, 07 Nov 1994 08:49:37 GMT", 86_400, "a day later"),
            ("Sun, 31 Feb 1994 08:50:37 GMT", nil, "no such day"),
            ("Sun, 06 Nov 1994 25:00:00 GMT", nil, "no such hour"),
            ("Sun, 06 Nov 1994 08:50:37 PST", nil, "not GMT"),
            ("Sun, 06 Foo 1994 08:50:37 GMT", nil, "no such month"),
            ("Sun, 06 Nov 1994 08:50 GMT", nil, "no seconds"),
        ]
        for (value, expected, what) in cases {
            XCTAssertEqual(RetryAfter.delay(value, now: now), expected, "\(what): \(value ?? "nil")")
        }
    }

    func testAbsurdlyManyDigitsGiveAHugeFiniteOrInfiniteValueNotNil() throws {
        let delay = try XCTUnwrap(RetryAfter.delay(String(repeating: "9", count: 40), now: now))
        XCTAssertGreaterThan(delay, 1e39)
        XCTAssertEqual(min(300, delay), 300)
    }

    /// RFC 9110 §5.6.7: a two-digit year more than 50 years ahead is in the past century.
    func testRFC850TwoDigitYears() throws {
        let in2026 = try XCTUnwrap(HTTPDate.parse("Thu, 01 Jan 2026 00:00:00 GMT", now: now))
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "GMT")!
        func year(_ text: String) -> Int? {
            HTTPDate.parse(text, now: in2026).map { calendar.component(.year, from: $0) }
        }
        XCTAssertEqual(year("Thursday, 01-Jan-26 00:00:00 GMT"), 2026)
        XCTAssertEqual(year("Wednesday, 01-Jan-76 00:00:00 GMT"), 2076)
        XCTAssertEqual(year("Monday, 01-Jan-77 00:00:00 GMT"), 1977)
        XCTAssertEqual(year("Sunday, 06-Nov-94 08:49:37 GMT"), 1994)
    }

    func testTheThreeFormsAreTheSameInstant() {
        let forms = ["Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"]
        for form in forms {
            XCTAssertEqual(HTTPDate.parse(form, now: now), now, form)
        }
    }
}
