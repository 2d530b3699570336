import Foundation
import Renewal
import XCTest

@testable import EnrollmentPlan

/// Revocation in the planner (issue 10 §3) as scenario tables: when the CRL is checked,
/// what a revoked certificate leads to, and what a check's result makes of the state.
final class RevocationPlanningTests: XCTestCase {
    typealias P = EnrollmentPlannerTests
    static let start = P.start, day = P.day, hour: TimeInterval = 3600
    /// The 90-day certificate, naming a CRL distribution point.
    static let live = LiveCertificateFacts(lifetime: P.live.lifetime, serial: "0a", hasCRLDistributionPoint: true)
    static let revocation = Revocation(revokedAt: start + day, reason: "keyCompromise")

    static func record(checkedAt: Date, result: RevocationCheckStatus = .good, revoked: Revocation? = nil, nextUpdate: Date? = nil,
                       serial: String = "0a") -> RevocationRecord {
        RevocationRecord(serial: serial, checkedAt: checkedAt, lastResult: result, revoked: revoked, crlNextUpdate: nextUpdate)
    }

    static func policy(interval: TimeInterval = 12 * hour, onRevoked: RevokedCertificatePolicy = .reenroll) -> EnrollmentPolicy {
        var policy = P.policy
        policy.revocationCheckInterval = interval
        policy.onRevoked = onRevoked
        return policy
    }

    struct Scenario {
        let name: String
        var state = ProfileState()
        var live: LiveCertificateFacts? = RevocationPlanningTests.live
        var policy = RevocationPlanningTests.policy()
        var intent = EnrollmentIntent.renew()
        var checkedThisRun = false
        let now: Date
        let expected: EnrollmentAction
    }

    func testScenarios() {
        let start = Self.start, day = Self.day, hour = Self.hour
        let t = P.transaction()
        let notDue = EnrollmentAction.wait(until: start + 60 * day, reason: .notDue)
        let revokedRecord = Self.record(checkedAt: start + 2 * day, result: .revoked, revoked: Self.revocation)
        let scenarios: [Scenario] = [
            // When the CRL is looked at.
            Scenario(name: "never checked: check", now: start + day, expected: .checkRevocation),
            Scenario(name: "no distribution point: never checked",
                     live: LiveCertificateFacts(lifetime: P.live.lifetime, serial: "0a"), now: start + day, expected: notDue),
            Scenario(name: "checked 11h ago: not yet", state: ProfileState(revocation: Self.record(checkedAt: start + day - 11 * hour)),
                     now: start + day, expected: notDue),
            Scenario(name: "checked 12h ago: due", state: ProfileState(revocation: Self.record(checkedAt: start + day - 12 * hour)),
                     now: start + day, expected: .checkRevocation),
            Scenario(name: "the cached CRL's nextUpdate passed: due before the interval",
                     state: ProfileState(revocation: Self.record(checkedAt: start + day - hour, nextUpdate: start + day - 60)),
                     now: start + day, expected: .checkRevocation),
            Scenario(name: "checked after nextUpdate passed: not again until the interval",
                     state: ProfileState(revocation: Self.record(checkedAt: start + day - 60, nextUpdate: start + day - hour)),
                     now: start + day, expected: notDue),
            Scenario(name: "interval 0s: every run", state: ProfileState(revocation: Self.record(checkedAt: start + day - 1)),
                     policy: Self.policy(interval: 0), now: start + day, expected: .checkRevocation),
            Scenario(name: "interval 0s: once per run", state: ProfileState(revocation: Self.record(checkedAt: start + day - 1)),
                     policy: Self.policy(interval: 0), checkedThisRun: true, now: start + day, expected: notDue),
            Scenario(name: "a record for another serial is stale: check the new certificate",
                     state: ProfileState(revocation: Self.record(checkedAt: start + day - 60, serial: "0b")), now: start + day,
                     expected: .checkRevocation),
            Scenario(name: "enroll does not check", intent: .enroll(), now: start + day, expected: .wait(until: nil, reason: .certificateValid)),
            Scenario(name: "a transaction on file is finished first",
                     state: ProfileState(phase: .pending(PendingProgress(transaction: t, since: start))), now: start + 60, expected: .poll),
            Scenario(name: "an expired certificate is replaced, not checked", now: start + 91 * day,
                     expected: .startRequest(.replaceExpired(since: start + 90 * day))),
            Scenario(name: "renew --force checks first", intent: .renew(force: true), now: start + day, expected: .checkRevocation),
            // A revoked certificate.
            Scenario(name: "revoked, reenroll: a fresh request at once", state: ProfileState(revocation: revokedRecord),
                     now: start + 2 * day + 60, expected: .startRequest(.replaceRevoked(since: start + day))),
            Scenario(name: "revoked, report: renewed only when due", state: ProfileState(revocation: revokedRecord),
                     policy: Self.policy(onRevoked: .report), now: start + 2 * day + 60, expected: notDue),
            Scenario(name: "revoked, report, due: the renewal (the runner makes it a PKCSReq)", state: ProfileState(revocation: revokedRecord),
                     policy: Self.policy(onRevoked: .report), now: start + 61 * day,
                     expected: .checkRevocation),
            Scenario(name: "revoked, report, due, checked this run", state: ProfileState(revocation: revokedRecord),
                     policy: Self.policy(onRevoked: .report), checkedThisRun: true, now: start + 61 * day,
                     expected: .startRequest(.renewal(dueSince: start + 60 * day))),
            Scenario(name: "revoked, reenroll, backing off after a failed request",
                     state: ProfileState(retryAt: start + 3 * day, failures: 1, revocation: revokedRecord), now: start + 2 * day + 60,
                     expected: .wait(until: start + 3 * day, reason: .backingOff(failures: 1))),
            Scenario(name: "revoked, renew --force: a replacement, never a forced RenewalReq", state: ProfileState(revocation: revokedRecord),
                     policy: Self.policy(onRevoked: .report), intent: .renew(force: true), checkedThisRun: true, now: start + 2 * day + 60,
                     expected: .startRequest(.replaceRevoked(since: start + day))),
            Scenario(name: "revoked, enroll, reenroll: replaced", state: ProfileState(revocation: revokedRecord), intent: .enroll(),
                     now: start + 2 * day + 60, expected: .startRequest(.replaceRevoked(since: start + day))),
            Scenario(name: "revoked, enroll, report: left alone", state: ProfileState(revocation: revokedRecord),
                     policy: Self.policy(onRevoked: .report), intent: .enroll(), now: start + 2 * day + 60,
                     expected: .wait(until: nil, reason: .certificateValid)),
            Scenario(name: "a revocation of the previous certificate does not count",
                     state: ProfileState(revocation: Self.record(checkedAt: start + 2 * day, result: .revoked, revoked: Self.revocation, serial: "09")),
                     checkedThisRun: true, now: start + 2 * day + 60, expected: notDue),
        ]
        for scenario in scenarios {
            let action = EnrollmentPlanner.next(state: scenario.state, live: scenario.live, policy: scenario.policy,
                                                intent: scenario.intent, now: scenario.now, revocationCheckedThisRun: scenario.checkedThisRun)
            XCTAssertEqual(action, scenario.expected, scenario.name)
        }
    }

    func testARevokedCertificateNeverSignsARenewalReq() {
        for purpose: RequestPurpose in [.renewal(dueSince: Self.start), .forced, .replaceRevoked(since: Self.start)] {
            for mode in RenewalRequestMode.allCases {
                XCTAssertEqual(EnrollmentPlanner.requestKind(purpose: purpose, mode: mode, serverOffersRenewal: true,
                                                             liveCertificateValid: true, liveCertificateRevoked: true), .pkcsReq, "\(purpose) \(mode)")
            }
        }
        XCTAssertEqual(EnrollmentPlanner.requestKind(purpose: .replaceRevoked(since: Self.start), mode: .renewalReq, serverOffersRenewal: true,
                                                     liveCertificateValid: true), .pkcsReq)
        XCTAssertFalse(RequestPurpose.replaceRevoked(since: Self.start).mayRenewWithLiveCertificate)
    }

    /// The daemon's wake-up for the next check.
    func testNextCheck() {
        let start = Self.start, hour = Self.hour
        let checked = start + 10 * hour
        let cases: [(String, ProfileState, TimeInterval, Date?)] = [
            ("interval after the last check", ProfileState(revocation: Self.record(checkedAt: checked)), 12 * hour, checked + 12 * hour),
            ("nextUpdate first", ProfileState(revocation: Self.record(checkedAt: checked, nextUpdate: checked + hour)), 12 * hour, checked + hour),
            ("nextUpdate already passed at the check", ProfileState(revocation: Self.record(checkedAt: checked, nextUpdate: checked - hour)),
             12 * hour, checked + 12 * hour),
            ("0s: no wake-up of its own", ProfileState(revocation: Self.record(checkedAt: checked)), 0, nil),
            ("never checked: at once", ProfileState(), 12 * hour, start),
        ]
        for (name, state, interval, expected) in cases {
            XCTAssertEqual(RevocationSchedule.nextCheck(state: state, live: Self.live, interval: interval), expected, name)
        }
        XCTAssertNil(RevocationSchedule.nextCheck(state: ProfileState(), live: LiveCertificateFacts(lifetime: P.live.lifetime, serial: "0a"),
                                                  interval: 12 * Self.hour))
    }

    /// What a check makes of the state: a verdict replaces the last one; a check without
    /// one keeps the revocation on record; nothing touches the enrollment's failures.
    func testTransitions() {
        let now = Self.start + Self.day
        var rng = SystemRandomNumberGenerator()
        func apply(_ check: RevocationCheck, to state: ProfileState) -> ProfileState {
            EnrollmentTransitions.apply(.revocationChecked(check), after: .checkRevocation, to: state, policy: Self.policy(),
                                        liveNotAfter: nil, now: now, using: &rng)
        }
        let failing = ProfileState(retryAt: now + 60, failures: 2, lastError: "earlier")
        let revoked = apply(RevocationCheck(serial: "0a", result: .revoked(Self.revocation), crlNextUpdate: now + Self.hour, crlURL: "http://x/crl"),
                            to: failing)
        XCTAssertEqual(revoked.revocation?.revoked, Self.revocation)
        XCTAssertEqual(revoked.revocation?.lastResult, .revoked)
        XCTAssertEqual(revoked.revocation?.crlNextUpdate, now + Self.hour)
        XCTAssertEqual(revoked.revocation?.checkedAt, now)
        XCTAssertEqual(revoked.failures, 2)
        XCTAssertEqual(revoked.lastError, "earlier")
        XCTAssertEqual(revoked.retryAt, now + 60)

        let unavailable = apply(RevocationCheck(serial: "0a", result: .unavailable(cause: "HTTP 404")), to: revoked)
        XCTAssertEqual(unavailable.revocation?.revoked, Self.revocation, "a check without a verdict undoes nothing")
        XCTAssertEqual(unavailable.revocation?.lastResult, .unavailable)
        XCTAssertEqual(unavailable.revocation?.lastCause, "HTTP 404")
        XCTAssertEqual(unavailable.revocation?.crlNextUpdate, now + Self.hour, "the last verified CRL's nextUpdate stands")
        XCTAssertEqual(unavailable.failures, 2)

        let good = apply(RevocationCheck(serial: "0a", result: .good, crlNextUpdate: now + 2 * Self.hour), to: unavailable)
        XCTAssertNil(good.revocation?.revoked, "lifted (certificateHold released)")
        XCTAssertEqual(good.revocation?.lastResult, .good)
        XCTAssertNil(good.revocation?.lastCause)

        let newCertificate = apply(RevocationCheck(serial: "0b", result: .unavailable(cause: "timeout")), to: revoked)
        XCTAssertEqual(newCertificate.revocation?.serial, "0b")
        XCTAssertNil(newCertificate.revocation?.revoked, "the old certificate's revocation is not carried over")
    }
}
