import Foundation
import Renewal
import XCTest

private let minute: TimeInterval = 60
private let hour: TimeInterval = 3600
private let day: TimeInterval = 86_400
/// A fixed instant all scenarios are relative to (2025-01-01T00:00:00Z).
private let t0 = Date(timeIntervalSince1970: 1_735_689_600)

private func at(_ offset: TimeInterval) -> Date { t0.addingTimeInterval(offset) }

/// A certificate issued at `t0` for `duration`.
private func issued(for duration: TimeInterval) -> CertificateLifetime {
    CertificateLifetime(notBefore: t0, notAfter: at(duration))
}

final class RenewalScheduleTests: XCTestCase {
    /// One row: a certificate, a policy, the persisted jitter, an instant, and what should happen.
    /// Times are offsets from the certificate's notBefore (`t0`).
    struct Scenario {
        var name: String
        var lifetime: TimeInterval?
        var renewBefore: TimeInterval? = nil
        /// `renewal_threshold_percent`.
        var threshold: Int? = nil
        var maximumJitter: TimeInterval? = nil
        var jitter: TimeInterval = 0
        var now: TimeInterval
        var expected: Expected
    }

    enum Expected {
        case noCertificate
        case notDue(until: TimeInterval)
        case due(since: TimeInterval)
        case expired(since: TimeInterval)

        var decision: RenewalDecision {
            switch self {
            case .noCertificate: return .noCertificate
            case .notDue(let until): return .notDue(until: at(until))
            case .due(let since): return .due(since: at(since))
            case .expired(let since): return .expired(since: at(since))
            }
        }
    }

    static let year = 365 * day
    static let scenarios: [Scenario] = [
        // 1-year certificates: 2/3 is 243d8h.
        Scenario(name: "1y default, just before 2/3", lifetime: year, now: 243 * day,
                 expected: .notDue(until: 243 * day + 8 * hour)),
        Scenario(name: "1y default, exactly at 2/3", lifetime: year, now: 243 * day + 8 * hour,
                 expected: .due(since: 243 * day + 8 * hour)),
        Scenario(name: "1y renew_before 30d, at due time", lifetime: year, renewBefore: 30 * day,
                 now: 335 * day, expected: .due(since: 335 * day)),
        Scenario(name: "1y renew_before 30d, 6h jitter", lifetime: year, renewBefore: 30 * day,
                 jitter: 6 * hour, now: 300 * day, expected: .notDue(until: 335 * day - 6 * hour)),

        // 90-day certificates: 2/3 is 60d, default jitter bound 6h.
        Scenario(name: "90d default, 6h jitter, one second early", lifetime: 90 * day, jitter: 6 * hour,
                 now: 60 * day - 6 * hour - 1, expected: .notDue(until: 60 * day - 6 * hour)),
        Scenario(name: "90d default, 6h jitter, exactly at due time", lifetime: 90 * day, jitter: 6 * hour,
                 now: 60 * day - 6 * hour, expected: .due(since: 60 * day - 6 * hour)),
        Scenario(name: "90d renew_before 10d", lifetime: 90 * day, renewBefore: 10 * day,
                 now: 79 * day, expected: .notDue(until: 80 * day)),
        Scenario(name: "90d renew_before == lifetime is ignored", lifetime: 90 * day, renewBefore: 90 * day,
                 now: 1 * day, expected: .notDue(until: 60 * day)),
        Scenario(name: "90d renew_before > lifetime is ignored", lifetime: 90 * day, renewBefore: 120 * day,
                 now: 61 * day, expected: .due(since: 60 * day)),
        Scenario(name: "90d renew_before 0 is ignored", lifetime: 90 * day, renewBefore: 0,
                 now: 1 * day, expected: .notDue(until: 60 * day)),
        Scenario(name: "90d stale jitter from a longer certificate is clamped to 6h", lifetime: 90 * day,
                 jitter: 20 * day, now: 1 * day, expected: .notDue(until: 60 * day - 6 * hour)),
        Scenario(name: "90d negative persisted jitter counts as none", lifetime: 90 * day, jitter: -hour,
                 now: 1 * day, expected: .notDue(until: 60 * day)),
        Scenario(name: "90d jitter disabled by policy", lifetime: 90 * day, maximumJitter: 0, jitter: hour,
                 now: 1 * day, expected: .notDue(until: 60 * day)),
        Scenario(name: "90d now before notBefore (clock behind the CA)", lifetime: 90 * day,
                 now: -2 * hour, expected: .notDue(until: 60 * day)),
        Scenario(name: "90d exactly at notAfter is still valid", lifetime: 90 * day,
                 now: 90 * day, expected: .due(since: 60 * day)),
        Scenario(name: "90d one second after notAfter", lifetime: 90 * day,
                 now: 90 * day + 1, expected: .expired(since: 90 * day)),

        // 1-hour certificates: 2/3 is 40m, default jitter bound 3m (5%).
        Scenario(name: "1h default, one second early", lifetime: hour,
                 now: 40 * minute - 1, expected: .notDue(until: 40 * minute)),
        Scenario(name: "1h default, exactly at due time", lifetime: hour,
                 now: 40 * minute, expected: .due(since: 40 * minute)),
        Scenario(name: "1h oversized jitter clamped to 5%", lifetime: hour, jitter: hour,
                 now: 0, expected: .notDue(until: 37 * minute)),
        Scenario(name: "1h renew_before 59m, jitter bounded by notBefore", lifetime: hour,
                 renewBefore: 59 * minute, maximumJitter: hour, jitter: 10 * minute,
                 now: 0, expected: .due(since: 0)),
        Scenario(name: "1h expired", lifetime: hour, now: 2 * hour, expected: .expired(since: hour)),

        // 10-minute certificates: 2/3 is 6m40s, default jitter bound 30s.
        Scenario(name: "10m default, 30s jitter", lifetime: 10 * minute, jitter: 30,
                 now: 6 * minute, expected: .notDue(until: 6 * minute + 10)),
        Scenario(name: "10m default, at due time", lifetime: 10 * minute, jitter: 30,
                 now: 6 * minute + 10, expected: .due(since: 6 * minute + 10)),
        Scenario(name: "10m renew_before 1m", lifetime: 10 * minute, renewBefore: minute,
                 now: 9 * minute - 1, expected: .notDue(until: 9 * minute)),
        Scenario(name: "10m renew_before 1h is ignored", lifetime: 10 * minute, renewBefore: hour,
                 now: 7 * minute, expected: .due(since: 6 * minute + 40)),

        // renewal_threshold_percent (Intune's "Renewal threshold (%)": renew when that share remains).
        Scenario(name: "1y threshold 20%, one second before 80% of the lifetime", lifetime: year, threshold: 20,
                 now: 292 * day - 1, expected: .notDue(until: 292 * day)),
        Scenario(name: "1y threshold 20%, exactly at 80%", lifetime: year, threshold: 20,
                 now: 292 * day, expected: .due(since: 292 * day)),
        Scenario(name: "90d threshold 20%, 6h jitter", lifetime: 90 * day, threshold: 20, jitter: 6 * hour,
                 now: 1 * day, expected: .notDue(until: 72 * day - 6 * hour)),
        Scenario(name: "10m threshold 50%", lifetime: 10 * minute, threshold: 50, maximumJitter: 0,
                 now: 5 * minute, expected: .due(since: 5 * minute)),
        Scenario(name: "90d threshold 1% renews a day before notAfter (less 0.9 days)", lifetime: 90 * day, threshold: 1,
                 now: 89 * day, expected: .notDue(until: 89 * day + 2 * hour + 24 * minute)),
        Scenario(name: "90d threshold 99% renews almost at once", lifetime: 90 * day, threshold: 99, maximumJitter: 0,
                 now: 1 * day, expected: .due(since: 21 * hour + 36 * minute)),
        Scenario(name: "90d threshold 0% is ignored (two thirds)", lifetime: 90 * day, threshold: 0,
                 now: 1 * day, expected: .notDue(until: 60 * day)),
        Scenario(name: "90d threshold 100% is ignored (two thirds)", lifetime: 90 * day, threshold: 100,
                 now: 1 * day, expected: .notDue(until: 60 * day)),
        Scenario(name: "90d renew_before 10d wins over threshold 50%", lifetime: 90 * day, renewBefore: 10 * day,
                 threshold: 50, now: 50 * day, expected: .notDue(until: 80 * day)),
        Scenario(name: "90d renew_before 120d is ignored, threshold 20% applies", lifetime: 90 * day,
                 renewBefore: 120 * day, threshold: 20, now: 1 * day, expected: .notDue(until: 72 * day)),
        Scenario(name: "90d threshold 20%, expired", lifetime: 90 * day, threshold: 20,
                 now: 91 * day, expected: .expired(since: 90 * day)),

        Scenario(name: "no certificate installed", lifetime: nil, now: 0, expected: .noCertificate),
    ]

    func testScenarioTable() {
        for scenario in Self.scenarios {
            let policy = RenewalPolicy(renewBefore: scenario.renewBefore, maximumJitter: scenario.maximumJitter,
                                       renewalThresholdPercent: scenario.threshold)
            let decision = RenewalSchedule.decision(
                now: at(scenario.now), lifetime: scenario.lifetime.map(issued(for:)),
                policy: policy, jitter: scenario.jitter)
            XCTAssertEqual(decision, scenario.expected.decision, scenario.name)
        }
    }

    func testNominalRenewalTimeIsTwoThirdsByDefault() {
        let cases: [(String, TimeInterval, TimeInterval)] = [
            ("1y", Self.year, 243 * day + 8 * hour),
            ("90d", 90 * day, 60 * day),
            ("1h", hour, 40 * minute),
            ("10m", 10 * minute, 6 * minute + 40),
        ]
        for (name, duration, expected) in cases {
            XCTAssertEqual(RenewalSchedule.nominalRenewalTime(issued(for: duration), policy: .default), at(expected), name)
        }
    }

    func testDefaultJitterBoundIsFivePercentCappedAtSixHours() {
        let cases: [(String, TimeInterval, TimeInterval)] = [
            ("1y", Self.year, 6 * hour),
            ("90d", 90 * day, 6 * hour),
            ("1h", hour, 3 * minute),
            ("10m", 10 * minute, 30),
        ]
        for (name, duration, expected) in cases {
            XCTAssertEqual(RenewalSchedule.jitterBound(issued(for: duration), policy: .default), expected,
                           accuracy: 1e-6, name)
        }
    }

    func testReversedLifetimeRenewsAtNotAfterAndNeverCrashes() {
        let reversed = CertificateLifetime(notBefore: at(day), notAfter: t0)
        XCTAssertEqual(reversed.duration, 0)
        XCTAssertEqual(RenewalSchedule.nominalRenewalTime(reversed, policy: .default), t0)
        var rng = SplitMix64(seed: 1)
        XCTAssertEqual(RenewalSchedule.pickJitter(reversed, policy: .default, using: &rng), 0)
        XCTAssertEqual(RenewalSchedule.decision(now: at(1), lifetime: reversed, policy: .default, jitter: 0),
                       .expired(since: t0))
    }

    func testAbsurdDatesNeverCrash() {
        let absurd = CertificateLifetime(notBefore: t0, notAfter: Date(timeIntervalSince1970: 1e300))
        var rng = SplitMix64(seed: 2)
        let jitter = RenewalSchedule.pickJitter(absurd, policy: RenewalPolicy(maximumJitter: .infinity), using: &rng)
        XCTAssertGreaterThanOrEqual(jitter, 0)
        XCTAssertEqual(RenewalSchedule.decision(now: t0, lifetime: absurd, policy: .default, jitter: .nan).reason, "not due")
        let notANumber = CertificateLifetime(notBefore: Date(timeIntervalSince1970: .nan), notAfter: t0)
        XCTAssertEqual(RenewalSchedule.pickJitter(notANumber, policy: .default, using: &rng), 0)
        XCTAssertEqual(RenewalSchedule.decision(now: at(-1), lifetime: notANumber, policy: .default, jitter: 0),
                       .notDue(until: t0))
    }

    // MARK: Jitter

    func testJitterOverTenThousandDrawsStaysWithinBoundsAndSpreads() {
        let lifetime = issued(for: 90 * day)
        let bound = 6 * hour
        var rng = SplitMix64(seed: 0x5EED)
        let draws = (0..<10_000).map { _ in RenewalSchedule.pickJitter(lifetime, policy: .default, using: &rng) }

        XCTAssertTrue(draws.allSatisfy { $0 >= 0 && $0 <= bound }, "every draw within 0...6h")
        XCTAssertTrue(draws.allSatisfy { $0 == $0.rounded() }, "whole seconds")
        // Uniform over 21,601 values: 10,000 draws reach both ends and centre on 3h.
        XCTAssertLessThan(draws.min() ?? .infinity, 60)
        XCTAssertGreaterThan(draws.max() ?? 0, bound - 60)
        let mean = draws.reduce(0, +) / Double(draws.count)
        XCTAssertEqual(mean, bound / 2, accuracy: 300)
        // No bucket of a 10-bucket histogram is empty or holds more than twice its share.
        var buckets = [Int](repeating: 0, count: 10)
        for draw in draws { buckets[min(Int(draw / bound * 10), 9)] += 1 }
        XCTAssertTrue(buckets.allSatisfy { $0 > 500 && $0 < 2000 }, "\(buckets)")
    }

    func testJitterNeverMakesRenewalLaterThanNominalNorBeforeNotBefore() {
        let policies: [(String, RenewalPolicy)] = [
            ("default", .default),
            ("maximum jitter longer than the lifetime", RenewalPolicy(maximumJitter: 10 * Self.year)),
            ("renew_before 54m, maximum jitter 1h", RenewalPolicy(renewBefore: 54 * minute, maximumJitter: hour)),
        ]
        let durations: [TimeInterval] = [Self.year, 90 * day, hour, 10 * minute]
        var rng = SplitMix64(seed: 42)
        for (name, policy) in policies {
            for duration in durations {
                let lifetime = issued(for: duration)
                let nominal = RenewalSchedule.nominalRenewalTime(lifetime, policy: policy)
                for _ in 0..<10_000 {
                    let jitter = RenewalSchedule.pickJitter(lifetime, policy: policy, using: &rng)
                    let renewal = RenewalSchedule.renewalTime(lifetime, policy: policy, jitter: jitter)
                    XCTAssertLessThanOrEqual(renewal, nominal, "\(name), \(duration)s")
                    XCTAssertGreaterThanOrEqual(renewal, lifetime.notBefore, "\(name), \(duration)s")
                }
            }
        }
    }

    func testJitterIsReproducibleFromTheSeed() {
        let lifetime = issued(for: 90 * day)
        var first = SplitMix64(seed: 7)
        var second = SplitMix64(seed: 7)
        let a = (0..<100).map { _ in RenewalSchedule.pickJitter(lifetime, policy: .default, using: &first) }
        let b = (0..<100).map { _ in RenewalSchedule.pickJitter(lifetime, policy: .default, using: &second) }
        XCTAssertEqual(a, b)
        XCTAssertGreaterThan(Set(a).count, 90, "draws differ from each other")
    }

    func testPersistedJitterGivesTheSameAnswerOnEveryCheck() {
        // The jitter is an input, not re-rolled: checking many times before the renewal time
        // always reports the same instant, and it becomes due exactly there.
        let lifetime = issued(for: 90 * day)
        var rng = SplitMix64(seed: 99)
        let jitter = RenewalSchedule.pickJitter(lifetime, policy: .default, using: &rng)
        let renewal = RenewalSchedule.renewalTime(lifetime, policy: .default, jitter: jitter)
        for check in stride(from: 0, to: renewal.timeIntervalSince(t0), by: 7 * hour) {
            XCTAssertEqual(RenewalSchedule.decision(now: at(check), lifetime: lifetime, policy: .default, jitter: jitter),
                           .notDue(until: renewal))
        }
        XCTAssertEqual(RenewalSchedule.decision(now: renewal, lifetime: lifetime, policy: .default, jitter: jitter),
                       .due(since: renewal))
    }

    // MARK: check-config

    func testValidateReportsRenewBeforeNotShorterThanLifetimeWithBothDurations() {
        for renewBefore in [90 * day, 120 * day] {
            let problems = RenewalSchedule.validate(RenewalPolicy(renewBefore: renewBefore), lifetime: issued(for: 90 * day))
            XCTAssertEqual(problems.map(\.code), [.renewBeforeNotShorterThanLifetime])
            let message = problems.first?.description ?? ""
            XCTAssertTrue(message.contains("renew_before (\(DurationText.format(renewBefore)))"), message)
            XCTAssertTrue(message.contains("lifetime (90d)"), message)
            XCTAssertTrue(message.contains("60d after notBefore"), message)
        }
    }

    func testValidateReportsAThresholdOutsideOneToNinetyNine() {
        for percent in [0, 100, -5, 250] {
            let problems = RenewalSchedule.validate(RenewalPolicy(renewalThresholdPercent: percent))
            XCTAssertEqual(problems.map(\.code), [.renewalThresholdOutOfRange], "\(percent)")
            XCTAssertEqual(problems.first?.configKey, "renewal_threshold_percent")
            XCTAssertTrue(problems.first?.description.contains("(\(percent)) must be between 1 and 99") ?? false,
                          problems.first?.description ?? "")
        }
        for percent in [1, 20, 99] {
            XCTAssertEqual(RenewalSchedule.validate(RenewalPolicy(renewalThresholdPercent: percent),
                                                    lifetime: issued(for: 90 * day)), [], "\(percent)")
        }
    }

    func testValidateReportsRenewBeforeAndThresholdTogetherAsAConflict() {
        let problems = RenewalSchedule.validate(RenewalPolicy(renewBefore: 30 * day, renewalThresholdPercent: 20))
        XCTAssertEqual(problems.map(\.code), [.renewBeforeAndThresholdBothSet])
        XCTAssertEqual(problems.first?.configKey, "renewal_threshold_percent")
        let message = problems.first?.description ?? ""
        XCTAssertTrue(message.contains("renewal_threshold_percent (20) and renew_before (30d)"), message)
        XCTAssertTrue(message.contains("renew_before wins"), message)
    }

    func testAnIgnoredRenewBeforeNamesTheThresholdThatApplies() {
        let policy = RenewalPolicy(renewBefore: 120 * day, renewalThresholdPercent: 20)
        let problems = RenewalSchedule.validate(policy, lifetime: issued(for: 90 * day))
        XCTAssertEqual(problems.map(\.code), [.renewBeforeAndThresholdBothSet, .renewBeforeNotShorterThanLifetime])
        let message = problems.last?.description ?? ""
        XCTAssertTrue(message.contains("renewal happens when 20% of the lifetime remains (72d after notBefore)"), message)
    }

    func testValidateAcceptsSensiblePolicies() {
        XCTAssertEqual(RenewalSchedule.validate(.default, lifetime: issued(for: 90 * day)), [])
        XCTAssertEqual(RenewalSchedule.validate(RenewalPolicy(renewBefore: 30 * day), lifetime: issued(for: Self.year)), [])
        XCTAssertEqual(RenewalSchedule.validate(RenewalPolicy(renewBefore: 30 * day, maximumJitter: 0)), [])
        XCTAssertEqual(RenewalSchedule.validate(RenewalPolicy(renewBefore: 30 * day, maximumJitter: hour)), [])
    }

    func testValidateWithoutCertificateChecksOnlyThePolicy() {
        // Without a certificate the lifetime is unknown: a long renew_before is not yet a problem.
        XCTAssertEqual(RenewalSchedule.validate(RenewalPolicy(renewBefore: 10 * Self.year)), [])
        XCTAssertEqual(RenewalSchedule.validate(RenewalPolicy(renewBefore: 0)).map(\.code), [.renewBeforeNotPositive])
        XCTAssertEqual(RenewalSchedule.validate(RenewalPolicy(renewBefore: -day, maximumJitter: -1)).map(\.code),
                       [.renewBeforeNotPositive, .maximumJitterNegative])
        XCTAssertEqual(RenewalSchedule.validate(RenewalPolicy(renewBefore: .nan)).map(\.code), [.renewBeforeNotPositive])
    }

    func testValidateReportsReversedLifetime() {
        let reversed = CertificateLifetime(notBefore: at(day), notAfter: t0)
        XCTAssertEqual(RenewalSchedule.validate(.default, lifetime: reversed).map(\.code), [.emptyLifetime])
    }

    // MARK: Decision

    func testDecisionReasonsAndNextCheck() {
        let now = at(5)
        let cases: [(RenewalDecision, String, Bool, Date)] = [
            (.noCertificate, "none", true, now),
            (.notDue(until: at(100)), "not due", false, at(100)),
            (.due(since: at(1)), "due", true, now),
            (.expired(since: at(2)), "expired", true, now),
        ]
        for (decision, reason, acts, next) in cases {
            XCTAssertEqual(decision.reason, reason)
            XCTAssertEqual(decision.requiresAction, acts, reason)
            XCTAssertEqual(decision.nextCheck(now: now), next, reason)
        }
    }

    // MARK: Fake clock

    /// The daemon loop in miniature, driven by a manual clock: decide, plan the sleep, advance.
    func testLoopWithManualClockRenewsExactlyAtTheRenewalTime() {
        let lifetime = issued(for: hour)
        var rng = SplitMix64(seed: 3)
        let jitter = RenewalSchedule.pickJitter(lifetime, policy: .default, using: &rng)
        let renewal = RenewalSchedule.renewalTime(lifetime, policy: .default, jitter: jitter)

        var now = t0
        var wakeUps = 0
        while true {
            let decision = RenewalSchedule.decision(now: now, lifetime: lifetime, policy: .default, jitter: jitter)
            if decision.requiresAction {
                XCTAssertEqual(decision, .due(since: renewal))
                break
            }
            now += WakeupPlanner.nextWake(now: now, dueTimes: [decision.nextCheck(now: now)], maximumSleep: 10 * minute)
            wakeUps += 1
            XCTAssertLessThan(wakeUps, 100, "loop must terminate")
        }
        XCTAssertEqual(now, renewal)
        let expectedWakeUps = Int((renewal.timeIntervalSince(t0) / (10 * minute)).rounded(.up))
        XCTAssertEqual(wakeUps, expectedWakeUps)
    }

    func testClockJumpPastExpiryIsNoticedAtTheNextWakeUp() {
        // A laptop suspended for two hours: the wall clock jumps; the next check sees expiry.
        let lifetime = issued(for: hour)
        let now = at(10 * minute)
        let decision = RenewalSchedule.decision(now: now, lifetime: lifetime, policy: .default, jitter: 0)
        let sleep = WakeupPlanner.nextWake(now: now, dueTimes: [decision.nextCheck(now: now)], maximumSleep: 10 * minute)
        XCTAssertEqual(sleep, 10 * minute)
        let afterResume = now + sleep + 2 * hour
        XCTAssertEqual(RenewalSchedule.decision(now: afterResume, lifetime: lifetime, policy: .default, jitter: 0),
                       .expired(since: at(hour)))
    }

    // MARK: Formatting

    func testDurationText() {
        let cases: [(TimeInterval, String)] = [
            (0, "0s"), (45, "45s"), (40 * minute, "40m"), (6 * minute + 40, "6m40s"), (6 * hour, "6h"),
            (30 * day, "30d"), (day + 12 * hour, "1d12h"), (2 * day + 5 * minute, "2d"),
            (243 * day + 8 * hour, "243d8h"), (-(5 * hour + 59 * minute), "-5h59m"), (0.4, "0s"),
        ]
        for (seconds, text) in cases {
            XCTAssertEqual(DurationText.format(seconds), text, "\(seconds)")
        }
        XCTAssertEqual(DurationText.format(.infinity), "infs")
    }
}
