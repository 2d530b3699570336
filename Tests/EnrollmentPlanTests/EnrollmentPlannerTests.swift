import Foundation
import Renewal
import XCTest

@testable import EnrollmentPlan

/// The planner as a scenario table: phase, live certificate, intent, clock → action.
final class EnrollmentPlannerTests: XCTestCase {
    static let start = Date(timeIntervalSince1970: 1_800_000_000)
    static let day: TimeInterval = 86_400
    /// A 90-day certificate issued at `start`: default renewal at two thirds (day 60).
    static let live = LiveCertificateFacts(lifetime: CertificateLifetime(notBefore: start, notAfter: start + 90 * day), serial: "0a")
    static let policy = EnrollmentPolicy(renewal: RenewalPolicy(maximumJitter: 0), pendingMaxAge: 7 * day, pollInitialInterval: 10)

    static func transaction(startedAt: Date = start, renews: RenewedCertificate? = nil) -> SCEPTransaction {
        SCEPTransaction(transactionID: "AB12", kind: renews == nil ? .pkcsReq : .renewalReq, senderNonce: [1, 2],
                        signerCertificateDER: [0x30], issuerDER: [0x30], subjectDER: [0x30], keyStorage: "software",
                        startedAt: startedAt, renews: renews)
    }

    struct Scenario {
        let name: String
        var state = ProfileState()
        var live: LiveCertificateFacts? = EnrollmentPlannerTests.live
        var intent = EnrollmentIntent.renew()
        let now: Date
        let expected: EnrollmentAction
    }

    func testScenarios() {
        let t = Self.transaction()
        let renewal = Self.transaction(startedAt: Self.start + 85 * Self.day,
                                       renews: RenewedCertificate(serial: "0a", notAfter: Self.start + 90 * Self.day))
        let start = Self.start, day = Self.day
        let scenarios: [Scenario] = [
            // Idle: the renewal schedule.
            Scenario(name: "no certificate: enroll", live: nil, now: start, expected: .startRequest(.initial)),
            Scenario(name: "fresh certificate: wait for the renewal time", now: start + day,
                     expected: .wait(until: start + 60 * day, reason: .notDue)),
            Scenario(name: "due", now: start + 61 * day, expected: .startRequest(.renewal(dueSince: start + 60 * day))),
            Scenario(name: "valid at notAfter exactly (RFC 5280: inclusive)", now: start + 90 * day,
                     expected: .startRequest(.renewal(dueSince: start + 60 * day))),
            Scenario(name: "expired one second after notAfter", now: start + 90 * day + 1,
                     expected: .startRequest(.replaceExpired(since: start + 90 * day))),
            Scenario(name: "renew --force when not due", intent: .renew(force: true), now: start + day, expected: .startRequest(.forced)),
            Scenario(name: "backing off after a failure", state: ProfileState(retryAt: start + 61 * day + 3600, failures: 2),
                     now: start + 61 * day, expected: .wait(until: start + 61 * day + 3600, reason: .backingOff(failures: 2))),
            Scenario(name: "backoff over", state: ProfileState(retryAt: start + 61 * day, failures: 2),
                     now: start + 61 * day + 1, expected: .startRequest(.renewal(dueSince: start + 60 * day))),
            Scenario(name: "renew --force ignores the backoff", state: ProfileState(retryAt: start + 62 * day, failures: 2),
                     intent: .renew(force: true), now: start + 61 * day, expected: .startRequest(.forced)),
            // enroll.
            Scenario(name: "enroll with a valid certificate: nothing", intent: .enroll(), now: start + 61 * day,
                     expected: .wait(until: nil, reason: .certificateValid)),
            Scenario(name: "enroll ignores the backoff", state: ProfileState(retryAt: start + 2 * day, failures: 3), live: nil,
                     intent: .enroll(), now: start + day, expected: .startRequest(.initial)),
            Scenario(name: "enroll --force", intent: .enroll(force: true), now: start + day, expected: .startRequest(.forced)),
            Scenario(name: "enroll --abandon-pending", state: ProfileState(phase: .pending(PendingProgress(transaction: t, since: start))),
                     live: nil, intent: .enroll(abandonPending: true), now: start + 60,
                     expected: .abandon(reason: "abandoned by hand (enroll --abandon-pending)")),
            // A transaction on file.
            Scenario(name: "prepared: send", state: ProfileState(phase: .prepared(t)), live: nil, now: start, expected: .send),
            Scenario(name: "prepared long ago: still sent, never aged out", state: ProfileState(phase: .prepared(t)), live: nil,
                     now: start + 30 * day, expected: .send),
            Scenario(name: "submitted, answer lost: poll", state: ProfileState(phase: .submitted(Submission(transaction: t, sentAt: start))),
                     live: nil, now: start + 5, expected: .poll),
            Scenario(name: "submitted, CA does not know it: resend once",
                     state: ProfileState(phase: .submitted(Submission(transaction: t, sentAt: start, unrecognized: true))),
                     live: nil, now: start + 5, expected: .resend),
            Scenario(name: "resent and still unknown: abandon",
                     state: ProfileState(phase: .submitted(Submission(transaction: t, sentAt: start, resends: 1, unrecognized: true))),
                     live: nil, now: start + 5, expected: .abandon(reason: "the CA does not know transaction AB12 even after it was sent again")),
            Scenario(name: "pending, next poll later", state: ProfileState(phase: .pending(PendingProgress(transaction: t, since: start)),
                                                                          retryAt: start + 20),
                     live: nil, now: start + 10, expected: .wait(until: start + 20, reason: .pollScheduled)),
            Scenario(name: "pending, poll due", state: ProfileState(phase: .pending(PendingProgress(transaction: t, since: start)),
                                                                   retryAt: start + 20),
                     live: nil, now: start + 20, expected: .poll),
            Scenario(name: "pending, renew --force polls now", state: ProfileState(phase: .pending(PendingProgress(transaction: t, since: start)),
                                                                                  retryAt: start + 600),
                     live: nil, intent: .renew(force: true), now: start + 10, expected: .poll),
            Scenario(name: "pending past pending_max_age: abandon",
                     state: ProfileState(phase: .pending(PendingProgress(transaction: t, since: start))), live: nil, now: start + 7 * day,
                     expected: .abandon(reason: "transaction AB12 has been open for 7d, longer than pending_max_age (7d)")),
            Scenario(name: "a pending renewal ends before the renewed certificate does",
                     state: ProfileState(phase: .pending(PendingProgress(transaction: renewal, since: renewal.startedAt))),
                     now: start + 89 * day, expected: .abandon(reason:
                        "transaction AB12 has been open for 4d and the certificate it renews ends soon; a fresh request gets its chance")),
            Scenario(name: "a pending renewal within its window keeps polling",
                     state: ProfileState(phase: .pending(PendingProgress(transaction: renewal, since: renewal.startedAt))),
                     now: start + 86 * day, expected: .poll),
            Scenario(name: "unreadable reply: fetch again",
                     state: ProfileState(phase: .replyUnreadable(UnreadableReply(transaction: t, reason: "cipher", attempts: 1))),
                     live: nil, now: start + 60, expected: .poll),
            Scenario(name: "unreadable three times: abandon",
                     state: ProfileState(phase: .replyUnreadable(UnreadableReply(transaction: t, reason: "cipher", attempts: 3))),
                     live: nil, now: start + 60, expected: .abandon(reason: "the CA's answer could not be opened 3 times (cipher)")),
            Scenario(name: "after an abandon: a fresh request, named so",
                     state: ProfileState(lastAbandoned: Abandonment(transactionID: "AB12", reason: "x", at: start)), live: nil,
                     now: start + 1, expected: .startRequest(.afterAbandon)),
        ]
        for scenario in scenarios {
            let action = EnrollmentPlanner.next(state: scenario.state, live: scenario.live, policy: Self.policy,
                                                intent: scenario.intent, now: scenario.now)
            XCTAssertEqual(action, scenario.expected, scenario.name)
        }
    }

    func testTheJitterOfThisCertificateMovesRenewalEarlierAndAnotherCertificatesDoesNot() {
        var policy = Self.policy
        policy.renewal = RenewalPolicy(maximumJitter: 3 * Self.day)
        var state = ProfileState(renewalJitter: RenewalJitter(serial: "0a", seconds: 2 * Self.day))
        XCTAssertEqual(EnrollmentPlanner.next(state: state, live: Self.live, policy: policy, intent: .renew(), now: Self.start),
                       .wait(until: Self.start + 58 * Self.day, reason: .notDue))
        state.renewalJitter = RenewalJitter(serial: "0b", seconds: 2 * Self.day)
        XCTAssertEqual(EnrollmentPlanner.next(state: state, live: Self.live, policy: policy, intent: .renew(), now: Self.start),
                       .wait(until: Self.start + 60 * Self.day, reason: .notDue))
    }

    func testRequestKindScenarios() {
        let cases: [(RequestPurpose, RenewalRequestMode, Bool, Bool, RequestKind)] = [
            (.renewal(dueSince: Self.start), .auto, true, true, .renewalReq),
            (.renewal(dueSince: Self.start), .auto, false, true, .pkcsReq),
            (.renewal(dueSince: Self.start), .renewalReq, false, true, .renewalReq),
            (.renewal(dueSince: Self.start), .pkcsReq, true, true, .pkcsReq),
            (.forced, .auto, true, true, .renewalReq),
            (.replaceExpired(since: Self.start), .renewalReq, true, false, .pkcsReq),
            (.initial, .renewalReq, true, false, .pkcsReq),
            (.afterAbandon, .auto, true, true, .pkcsReq),
            (.forced, .auto, true, false, .pkcsReq),
        ]
        for (purpose, mode, offers, valid, expected) in cases {
            XCTAssertEqual(EnrollmentPlanner.requestKind(purpose: purpose, mode: mode, serverOffersRenewal: offers, liveCertificateValid: valid),
                           expected, "\(purpose) \(mode) offers=\(offers) valid=\(valid)")
        }
    }

    /// A live EC certificate never signs a RenewalReq: its reply would be encrypted to it.
    func testRequestKindForALiveKeyThatCannotReceiveReplies() {
        for mode in RenewalRequestMode.allCases {
            for purpose in [RequestPurpose.renewal(dueSince: Self.start), .forced] {
                XCTAssertEqual(EnrollmentPlanner.requestKind(purpose: purpose, mode: mode, serverOffersRenewal: true, liveCertificateValid: true,
                                                             liveKeyReceivesReplies: false), .pkcsReq, "\(purpose) \(mode)")
                XCTAssertEqual(EnrollmentPlanner.requestKind(purpose: purpose, mode: mode, serverOffersRenewal: true, liveCertificateValid: true,
                                                             liveKeyReceivesReplies: true), mode == .pkcsReq ? .pkcsReq : .renewalReq, "\(purpose) \(mode)")
            }
        }
    }

    /// Issue 12 §3: after a CA rollover the live certificate comes from a CA the server no
    /// longer presents; auto renews with a PKCSReq (the new CA may refuse a RenewalReq).
    func testRequestKindAfterACARollover() {
        let cases: [(RequestPurpose, RenewalRequestMode, Bool, Bool, RequestKind)] = [
            // purpose, mode, offers Renewal, live from the current CA, expected
            (.renewal(dueSince: Self.start), .auto, true, true, .renewalReq),
            (.renewal(dueSince: Self.start), .auto, true, false, .pkcsReq),
            (.forced, .auto, true, false, .pkcsReq),
            (.renewal(dueSince: Self.start), .renewalReq, true, false, .renewalReq),
            (.renewal(dueSince: Self.start), .pkcsReq, true, true, .pkcsReq),
            (.initial, .auto, true, false, .pkcsReq),
        ]
        for (purpose, mode, offers, current, expected) in cases {
            XCTAssertEqual(EnrollmentPlanner.requestKind(purpose: purpose, mode: mode, serverOffersRenewal: offers, liveCertificateValid: true,
                                                         liveCertificateFromCurrentCA: current),
                           expected, "\(purpose) \(mode) offers=\(offers) fromCurrentCA=\(current)")
        }
    }

    func testDeadlineScenarios() {
        let renewed = RenewedCertificate(serial: "0a", notAfter: Self.start + 90 * Self.day)
        // Margin for 90 days: min(1 day, 9 days) = 1 day.
        XCTAssertEqual(EnrollmentPlanner.renewalMargin(Self.live.lifetime), Self.day)
        let late = Self.transaction(startedAt: Self.start + 85 * Self.day, renews: renewed)
        XCTAssertEqual(EnrollmentPlanner.deadline(for: late, live: Self.live, policy: Self.policy), Self.start + 89 * Self.day)
        let early = Self.transaction(startedAt: Self.start + 10 * Self.day, renews: renewed)
        XCTAssertEqual(EnrollmentPlanner.deadline(for: early, live: Self.live, policy: Self.policy), Self.start + 17 * Self.day)
        // Another certificate is live now: only pending_max_age applies.
        let other = LiveCertificateFacts(lifetime: Self.live.lifetime, serial: "0b")
        XCTAssertEqual(EnrollmentPlanner.deadline(for: late, live: other, policy: Self.policy), Self.start + 92 * Self.day)
    }

    func testPollScheduleDoublesAndIsCapped() {
        XCTAssertEqual(PollSchedule.delay(afterPolls: 0, initial: 10), 10)
        XCTAssertEqual(PollSchedule.delay(afterPolls: 3, initial: 10), 80)
        XCTAssertEqual(PollSchedule.delay(afterPolls: 50, initial: 10), 600)
        XCTAssertEqual(PollSchedule.delay(afterPolls: -1, initial: 10), 10)
    }
}
