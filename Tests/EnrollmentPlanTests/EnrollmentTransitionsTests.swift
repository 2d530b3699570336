import Foundation
import Renewal
import XCTest

@testable import EnrollmentPlan

/// What each step's outcome makes of the state: a table.
final class EnrollmentTransitionsTests: XCTestCase {
    typealias P = EnrollmentPlannerTests
    let now = P.start + 100
    let t = P.transaction()

    private func apply(_ outcome: StepOutcome, after action: EnrollmentAction, to state: ProfileState) -> ProfileState {
        var rng = SystemRandomNumberGenerator()
        return EnrollmentTransitions.apply(outcome, after: action, to: state, policy: P.policy, liveNotAfter: nil, now: now, using: &rng)
    }

    func testPreparedIsOnFileBeforeAnythingIsSent() {
        let next = apply(.prepared(t), after: .startRequest(.initial), to: ProfileState(retryAt: now + 5, failures: 1))
        XCTAssertEqual(next.phase, .prepared(t))
        XCTAssertNil(next.retryAt)
    }

    func testAnswerLostAfterSendingIsSubmittedAndLookedAtAgainSoon() {
        let next = apply(.unverified("connection reset"), after: .send, to: ProfileState(phase: .prepared(t)))
        XCTAssertEqual(next.phase, .submitted(Submission(transaction: t, sentAt: now)))
        XCTAssertEqual(next.retryAt, now + EnrollmentTransitions.firstRecoveryDelay)
        XCTAssertEqual(next.failures, 1)
        XCTAssertEqual(next.lastError, "connection reset")
    }

    func testUnknownToTheCAOnASubmissionAsksForOneResend() {
        let submitted = ProfileState(phase: .submitted(Submission(transaction: t, sentAt: P.start)))
        let next = apply(.unknownToCA("HTTP 500 on CertPoll"), after: .poll, to: submitted)
        XCTAssertEqual(next.phase, .submitted(Submission(transaction: t, sentAt: P.start, unrecognized: true)))
        XCTAssertNil(next.retryAt)
        let resent = apply(.unverified("reset again"), after: .resend, to: next)
        XCTAssertEqual(resent.phase, .submitted(Submission(transaction: t, sentAt: now, resends: 1, unrecognized: false)))
    }

    func testAPendingRequestIsNeverEndedByAnUnauthenticatedError() {
        let pending = ProfileState(phase: .pending(PendingProgress(transaction: t, since: P.start, polls: 3)))
        for outcome in [StepOutcome.unverified("HTTP 503"), .unverified("the reply's signature does not verify"), .localFailure("TPM busy")] {
            let next = apply(outcome, after: .poll, to: pending)
            XCTAssertEqual(next.phase, pending.phase, "\(outcome)")
            XCTAssertNotNil(next.retryAt)
        }
        // Only a verified verdict ends it.
        XCTAssertEqual(apply(.rejected("badRequest"), after: .poll, to: pending).phase, .idle)
        XCTAssertEqual(apply(.unknownToCA("badCertId"), after: .poll, to: pending).phase, .idle)
    }

    func testPendingCountsPollsAndSchedulesTheNext() {
        let fromSend = apply(.pending, after: .send, to: ProfileState(phase: .prepared(t)))
        XCTAssertEqual(fromSend.phase, .pending(PendingProgress(transaction: t, since: now, polls: 0)))
        XCTAssertEqual(fromSend.retryAt, now + 10)
        let polled = apply(.pending, after: .poll, to: ProfileState(phase: .pending(PendingProgress(transaction: t, since: P.start, polls: 2))))
        XCTAssertEqual(polled.phase, .pending(PendingProgress(transaction: t, since: P.start, polls: 3, lastPollAt: now)))
        XCTAssertEqual(polled.retryAt, now + 80)
    }

    func testAnUnreadableReplyIsNotPending() {
        let pending = ProfileState(phase: .pending(PendingProgress(transaction: t, since: P.start)))
        let first = apply(.unreadable("unsupported cipher 1.2.3"), after: .poll, to: pending)
        XCTAssertEqual(first.phase, .replyUnreadable(UnreadableReply(transaction: t, reason: "unsupported cipher 1.2.3", attempts: 1)))
        let second = apply(.unreadable("unsupported cipher 1.2.3"), after: .poll, to: first)
        XCTAssertEqual(second.phase, .replyUnreadable(UnreadableReply(transaction: t, reason: "unsupported cipher 1.2.3", attempts: 2)))
    }

    func testInstallResetsTheBookkeeping() {
        let live = LiveCertificateFacts(lifetime: CertificateLifetime(notBefore: now, notAfter: now + 86_400), serial: "0c")
        let failing = ProfileState(phase: .pending(PendingProgress(transaction: t, since: P.start)), retryAt: now + 60, failures: 4, lastError: "x")
        let next = apply(.installed(live, keyStorage: "tpm", jitter: 42), after: .poll, to: failing)
        XCTAssertEqual(next, ProfileState(phase: .idle, retryAt: nil, failures: 0, lastError: nil, lastErrorAt: nil, lastSuccessAt: now,
                                          lastAttemptAt: now, renewalJitter: RenewalJitter(serial: "0c", seconds: 42), keyStorage: "tpm"))
    }

    func testAbandonRecordsWhy() {
        let next = apply(.abandoned(transactionID: "AB12", reason: "too old"), after: .abandon(reason: "too old"),
                         to: ProfileState(phase: .pending(PendingProgress(transaction: t, since: P.start)), retryAt: now + 60))
        XCTAssertEqual(next.phase, .idle)
        XCTAssertNil(next.retryAt)
        XCTAssertEqual(next.lastAbandoned, Abandonment(transactionID: "AB12", reason: "too old", at: now))
    }

    func testFailuresBackOffExponentiallyAndAreCountedOnce() {
        var state = ProfileState()
        for failures in 1...4 {
            var rng = SystemRandomNumberGenerator()
            state = EnrollmentTransitions.apply(.rejected("no"), after: .send, to: state, policy: P.policy, liveNotAfter: nil, now: now, using: &rng)
            XCTAssertEqual(state.failures, failures)
            let wait = state.retryAt!.timeIntervalSince(now)
            XCTAssertGreaterThanOrEqual(wait, 0)
            XCTAssertLessThanOrEqual(wait, RetryBackoff.ceiling(consecutiveFailures: failures), "failure \(failures)")
        }
        XCTAssertEqual(RetryBackoff.ceiling(consecutiveFailures: 4), 480)
    }

    func testStateRoundTripsThroughJSON() throws {
        let states = [
            ProfileState(),
            ProfileState(phase: .prepared(t)),
            ProfileState(phase: .submitted(Submission(transaction: t, sentAt: P.start, resends: 1, unrecognized: true)), retryAt: now),
            ProfileState(phase: .pending(PendingProgress(transaction: t, since: P.start, polls: 2, lastPollAt: now)), failures: 1),
            ProfileState(phase: .replyUnreadable(UnreadableReply(transaction: t, reason: "r", attempts: 2)),
                         lastAbandoned: Abandonment(transactionID: "X", reason: "y", at: P.start)),
        ]
        let encoder = JSONEncoder()
        for state in states {
            XCTAssertEqual(try JSONDecoder().decode(ProfileState.self, from: encoder.encode(state)), state)
        }
        XCTAssertEqual(try JSONDecoder().decode(ProfileState.self, from: Data("{}".utf8)), ProfileState())
        XCTAssertThrowsError(try JSONDecoder().decode(ProfileState.self, from: Data(#"{"phase":{"name":"dancing"}}"#.utf8)))
    }
}
