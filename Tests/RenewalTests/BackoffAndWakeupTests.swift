import Foundation
import Renewal
import XCTest

final class RetryBackoffTests: XCTestCase {
    func testCeilingDoublesFromBaseAndIsCapped() {
        let expected: [(Int, TimeInterval)] = [
            (0, 0), (-3, 0), (1, 60), (2, 120), (3, 240), (4, 480), (9, 15_360), (10, 21_600), (11, 21_600),
            (1_000, 21_600), (.max, 21_600),
        ]
        for (failures, ceiling) in expected {
            XCTAssertEqual(RetryBackoff.ceiling(consecutiveFailures: failures), ceiling, "\(failures) failures")
        }
        XCTAssertEqual(RetryBackoff.ceiling(consecutiveFailures: 3, base: 10, cap: 25), 25)
        XCTAssertEqual(RetryBackoff.ceiling(consecutiveFailures: 3, base: .nan), 0)
    }

    func testDelayIsFullJitterWithinTheCeiling() {
        var rng = SplitMix64(seed: 11)
        for failures in [1, 2, 5, 9, 10, 50] {
            let ceiling = RetryBackoff.ceiling(consecutiveFailures: failures)
            let delays = (0..<2_000).map { _ in RetryBackoff.delay(consecutiveFailures: failures, using: &rng) }
            XCTAssertTrue(delays.allSatisfy { $0 >= 0 && $0 <= ceiling }, "\(failures) failures")
            // Full jitter: draws span the whole range, not a band near the ceiling.
            XCTAssertLessThan(delays.min() ?? .infinity, ceiling * 0.05, "\(failures) failures")
            XCTAssertGreaterThan(delays.max() ?? 0, ceiling * 0.95, "\(failures) failures")
            let mean = delays.reduce(0, +) / Double(delays.count)
            XCTAssertEqual(mean, ceiling / 2, accuracy: ceiling * 0.05, "\(failures) failures")
        }
        XCTAssertEqual(RetryBackoff.delay(consecutiveFailures: 0, using: &rng), 0)
    }

    func testAverageDelayGrowsWithFailures() {
        var rng = SplitMix64(seed: 12)
        let means = (1...10).map { failures in
            (0..<2_000).map { _ in RetryBackoff.delay(consecutiveFailures: failures, using: &rng) }
                .reduce(0, +) / 2_000
        }
        for (earlier, later) in zip(means, means.dropFirst()) {
            XCTAssertGreaterThan(later, earlier, "\(means)")
        }
    }

    func testRetryNeverSleepsThroughExpiryOfAValidCertificate() {
        let now = Date(timeIntervalSince1970: 1_000_000)
        var rng = SplitMix64(seed: 13)
        for _ in 0..<1_000 {
            // 10 minutes left, 10 failures (ceiling 6h): at most halfway to notAfter.
            let notAfter = now.addingTimeInterval(600)
            let retry = RetryBackoff.retryTime(now: now, consecutiveFailures: 10, notAfter: notAfter, using: &rng)
            XCTAssertGreaterThanOrEqual(retry, now)
            XCTAssertLessThanOrEqual(retry, now.addingTimeInterval(300))
        }
        // Already expired: plain backoff (re-enrollment), still within the ceiling.
        let expired = now.addingTimeInterval(-60)
        let retry = RetryBackoff.retryTime(now: now, consecutiveFailures: 2, notAfter: expired, using: &rng)
        XCTAssertLessThanOrEqual(retry.timeIntervalSince(now), 120)
        XCTAssertGreaterThanOrEqual(retry.timeIntervalSince(now), 0)
    }
}

final class WakeupPlannerTests: XCTestCase {
    let now = Date(timeIntervalSince1970: 1_735_689_600)

    func testPicksTheEarliestDueTime() {
        let dueTimes = [now + 1_800, now + 600, now + 3_000]
        XCTAssertEqual(WakeupPlanner.nextWake(now: now, dueTimes: dueTimes), 600)
    }

    func testClampsToTheMaximumSleep() {
        XCTAssertEqual(WakeupPlanner.nextWake(now: now, dueTimes: [now + 30 * 86_400]), 3_600)
        XCTAssertEqual(WakeupPlanner.nextWake(now: now, dueTimes: [now + 30 * 86_400], maximumSleep: 900), 900)
        XCTAssertEqual(WakeupPlanner.nextWake(now: now, dueTimes: [], maximumSleep: 900), 900)
    }

    func testReturnsZeroWhenSomethingIsPastDue() {
        XCTAssertEqual(WakeupPlanner.nextWake(now: now, dueTimes: [now + 600, now - 5]), 0)
        XCTAssertEqual(WakeupPlanner.nextWake(now: now, dueTimes: [now]), 0)
    }

    func testIgnoresNonsenseInputs() {
        let nan = Date(timeIntervalSince1970: .nan)
        XCTAssertEqual(WakeupPlanner.nextWake(now: now, dueTimes: [nan, now + 60]), 60)
        XCTAssertEqual(WakeupPlanner.nextWake(now: now, dueTimes: [now + 7_200], maximumSleep: 0), 3_600)
        XCTAssertEqual(WakeupPlanner.nextWake(now: now, dueTimes: [now + 7_200], maximumSleep: -.infinity), 3_600)
    }
}
