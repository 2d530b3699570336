import Foundation
import TPMKeys
import TestSupport
import X509
import XCTest

@testable import SCEPClient
@testable import SCEPTestSupport

/// The SCEP exchange when the server misbehaves: PENDING without end, a CA
/// that forgets or refuses a pending request, connections that break, and
/// transient errors the agent's `RetryingTransport` must ride out (boundedly).
final class ServerFaultTests: XCTestCase {

    // MARK: - PENDING

    /// Polled the way the agent polls (same transaction, a budget of polls):
    /// every answer stays PENDING — never an error, never a crash — every
    /// CertPoll is well formed, and when the CA finally issues, the
    /// certificate is for the key of the original request.
    func testPendingForeverStaysPendingWithinThePollBudgetThenIssues() async throws {
        let pollBudget = 8
        let server = try TestSCEPServer(ca: try TestPKI.ca(),
                                        plan: Array(repeating: .certRep(.pending), count: pollBudget + 1))
        defer { server.stop() }
        let client = try Client(server: server)
        let key = try SoftwareKey.generate(KeySpec())
        let profile = try await client.enrollment.discover()
        let prepared = try await client.enrollment.prepare(server: profile, newKey: key, spec: Client.defaultSpec, challenge: "pw")

        var outcome = try await client.enrollment.submit(prepared, server: profile, replyKey: key, newKey: key)
        var polls = 0
        while case .pending = outcome, polls < pollBudget {
            outcome = try await client.enrollment.poll(prepared.transaction, server: profile, signerKey: key, newKey: key)
            polls += 1
        }
        guard case .pending = outcome else { return XCTFail("expected PENDING after \(polls) polls, got \(outcome)") }
        XCTAssertEqual(polls, pollBudget, "the budget bounds the polls")

        let operations = server.pkiOperations
        XCTAssertEqual(operations.count, 1 + pollBudget, "exactly one message per poll, no hidden retries")
        XCTAssertEqual(server.decodeFailures, [])
        XCTAssertEqual(operations.map(\.messageType), [.pkcsReq] + Array(repeating: .certPoll, count: pollBudget))
        XCTAssertEqual(Set(operations.map(\.transactionID)), [prepared.transaction.transactionID])
        XCTAssertEqual(Set(operations.map(\.senderNonce)).count, operations.count, "a nonce was reused")
        let issuerAndSubjects = try operations.dropFirst().map { try XCTUnwrap($0.issuerAndSubject) }
        XCTAssertEqual(Set(issuerAndSubjects.map { "\($0)" }).count, 1, "CertPolls must all name the same issuer and subject")

        // The plan is used up: the CA now issues.
        let issued = try await client.enrollment.poll(prepared.transaction, server: profile, signerKey: key, newKey: key)
            .issuedCertificate()
        XCTAssertEqual(issued.certificate.publicKey, try Certificate.PublicKey(derEncoded: key.subjectPublicKeyInfo))
    }

    /// The CA administrator refuses a request that was PENDING: the poll
    /// reports the refusal with its failInfo and text.
    func testPendingRequestRefusedOnCertPoll() async throws {
        let server = try TestSCEPServer(ca: try TestPKI.ca(), plan: [
            .certRep(.pending), .certRep(.failure(.badRequest, text: "denied by the CA administrator")),
        ])
        defer { server.stop() }
        let client = try Client(server: server)
        let key = try SoftwareKey.generate(KeySpec())
        let profile = try await client.enrollment.discover()
        let prepared = try await client.enrollment.prepare(server: profile, newKey: key, spec: Client.defaultSpec, challenge: "pw")
        guard case .pending = try await client.enrollment.submit(prepared, server: profile, replyKey: key, newKey: key) else {
            return XCTFail("expected PENDING first")
        }
        let outcome = try await client.enrollment.poll(prepared.transaction, server: profile, signerKey: key, newKey: key)
        guard case .rejected(let failInfo, let text) = outcome else { return XCTFail("expected FAILURE, got \(outcome)") }
        XCTAssertEqual(failInfo, .badRequest)
        XCTAssertEqual(text, "denied by the CA administrator")
        XCTAssertTrue(EnrollmentOutcome.rejectionMessage(failInfo, text).contains("badRequest"))
    }

    /// A CA that lost the transaction (restarted without state) answers a
    /// CertPoll with badCertId: a clean refusal the agent can act on.
    func testCertPollToACAThatForgotTheTransactionIsRefusedWithBadCertId() async throws {
        let key = try SoftwareKey.generate(KeySpec())
        let before = try TestSCEPServer(ca: try TestPKI.ca(), plan: [.certRep(.pending)])
        let client = try Client(server: before)
        let profile = try await client.enrollment.discover()
        let prepared = try await client.enrollment.prepare(server: profile, newKey: key, spec: Client.defaultSpec, challenge: "pw")
        guard case .pending = try await client.enrollment.submit(prepared, server: profile, replyKey: key, newKey: key) else {
            return XCTFail("expected PENDING first")
        }
        before.stop()

        // "After the restart": same CA, no memory of the request.
        let after = try TestSCEPServer(ca: try TestPKI.ca())
        defer { after.stop() }
        let resumed = try Client(server: after)
        let newProfile = try await resumed.enrollment.discover()
        let outcome = try await resumed.enrollment.poll(prepared.transaction, server: newProfile, signerKey: key, newKey: key)
        guard case .rejected(let failInfo, _) = outcome else { return XCTFail("expected FAILURE badCertId, got \(outcome)") }
        XCTAssertEqual(failInfo, .badCertID)
        XCTAssertEqual(after.pkiOperations.map(\.messageType), [.certPoll])
    }

    /// A forged PENDING must not be believed either: otherwise anyone on the
    /// path could keep the agent polling (and its transaction open) forever.
    func testForgedOrMismatchedPendingRepliesAreRefused() async throws {
        let cases: [(CertRepFault, SCEPError.Code)] = [
            (.signedByRogueCA, .untrustedCertificate), (.brokenSignature, .badSignature),
            (.wrongTransactionID, .replyMismatch), (.wrongRecipientNonce, .replyMismatch),
        ]
        let server = try TestSCEPServer(ca: try TestPKI.ca(), plan: cases.map {
            .certRep(PlannedReply(status: .pending, fault: $0.0))
        })
        defer { server.stop() }
        let client = try Client(server: server)
        let key = try SoftwareKey.generate(KeySpec())
        let profile = try await client.enrollment.discover()
        for (fault, code) in cases {
            let prepared = try await client.enrollment.prepare(server: profile, newKey: key, spec: Client.defaultSpec, challenge: "pw")
            do {
                let outcome = try await client.enrollment.submit(prepared, server: profile, replyKey: key, newKey: key)
                XCTFail("\(fault): a forged PENDING was accepted as \(outcome)")
            } catch let error as SCEPError {
                XCTAssertEqual(error.code, code, "\(fault): \(error.message)")
            }
        }
    }

    // MARK: - Broken connections

    /// Each break at PKIOperation is a transport error that names the server
    /// (never the query with the request in it), and comes back promptly.
    func testBrokenConnectionsAreTransportErrorsNamingTheServer() async throws {
        let halfReply = TestHTTPResponse.ok(Array(repeating: 0x30, count: 4096), contentType: "application/x-pki-message")
        let cases: [(String, TestHTTPResponse)] = [
            ("closed without a reply", .closeWithoutResponse),
            ("reset halfway through the body", halfReply.resettingMidBody()),
            ("hanging past the timeout", .hang),
        ]
        let server = try TestSCEPServer(ca: try TestPKI.ca(), plan: cases.map { .http($0.1) })
        defer { server.stop() }
        var options = CurlTransport.Options()
        options.totalTimeout = 1
        options.connectTimeout = 1
        let enrollment = SCEPEnrollment(service: SCEPService(url: server.url, transport: CurlTransport(options: options)),
                                        pin: try TestPKI.ca().pin())
        let key = try SoftwareKey.generate(KeySpec())
        let profile = try await enrollment.discover()
        for (name, _) in cases {
            let prepared = try await enrollment.prepare(server: profile, newKey: key, spec: Client.defaultSpec, challenge: "pw")
            let started = Date()
            do {
                let outcome = try await enrollment.submit(prepared, server: profile, replyKey: key, newKey: key)
                XCTFail("\(name): got \(outcome)")
            } catch let error as SCEPError {
                XCTAssertEqual(error.code, .transport, "\(name): \(error.message)")
                XCTAssertTrue(error.message.contains(server.url), "\(name): the error does not name the server: \(error.message)")
                XCTAssertFalse(error.message.contains("message="), "\(name): the request leaked into the error")
            }
            XCTAssertLessThan(Date().timeIntervalSince(started), 5, "\(name): not bounded by the 1 s timeout")
        }
        XCTAssertEqual(server.pkiOperations.count, cases.count)
    }

    // MARK: - Retries

    /// 503 Service Unavailable means the CA did not act on the request, so even a
    /// PKIOperation is sent again, with backoff (the same message: same
    /// transactionID and nonce); the third attempt issues.
    func testServiceUnavailableIsRiddenOutByRetries() async throws {
        let server = try TestSCEPServer(ca: try TestPKI.ca(), plan: [
            .http(.text("busy\n", status: 503)), .http(.text("busy\n", status: 503)), .certRep(.success),
        ])
        defer { server.stop() }
        let sleeper = RecordedSleeps()
        let enrollment = try retryingEnrollment(server, sleeper: sleeper)
        let key = try SoftwareKey.generate(KeySpec())
        let profile = try await enrollment.discover()
        let prepared = try await enrollment.prepare(server: profile, newKey: key, spec: Client.defaultSpec, challenge: "pw")

        let issued = try await enrollment.submit(prepared, server: profile, replyKey: key, newKey: key).issuedCertificate()
        XCTAssertEqual(issued.certificate.publicKey, try Certificate.PublicKey(derEncoded: key.subjectPublicKeyInfo))
        let operations = server.pkiOperations
        XCTAssertEqual(operations.count, 3)
        XCTAssertEqual(Set(operations.map(\.transactionID)).count, 1)
        XCTAssertEqual(sleeper.delays, [1, 2], "exponential backoff between attempts")
    }

    /// A PKIOperation whose reply broke off, or that got a 500, may have been acted
    /// on: it is not sent again (a second copy could issue twice or burn a one-time
    /// challenge); the persisted transaction is polled on the next run instead.
    func testAPKIOperationTheCAMayHaveProcessedIsNotResent() async throws {
        for answer in [TestHTTPResponse.closeWithoutResponse, .text("internal error\n", status: 500)] {
            let server = try TestSCEPServer(ca: try TestPKI.ca(), plan: [.http(answer), .certRep(.success)])
            defer { server.stop() }
            let sleeper = RecordedSleeps()
            let enrollment = try retryingEnrollment(server, sleeper: sleeper)
            let key = try SoftwareKey.generate(KeySpec())
            let profile = try await enrollment.discover()
            let prepared = try await enrollment.prepare(server: profile, newKey: key, spec: Client.defaultSpec, challenge: "pw")
            do {
                let outcome = try await enrollment.submit(prepared, server: profile, replyKey: key, newKey: key)
                XCTFail("got \(outcome)")
            } catch let error as SCEPError {
                XCTAssertTrue(error.code == .transport || error.code == .httpStatus, error.message)
            }
            XCTAssertEqual(server.pkiOperations.count, 1, "not re-sent")
            XCTAssertEqual(sleeper.delays, [])
        }
    }

    /// A server that stays unavailable gets exactly `maxAttempts` tries, then the
    /// HTTP status is the error.
    func testPersistentUnavailabilityGivesUpAfterBoundedAttempts() async throws {
        let server = try TestSCEPServer(ca: try TestPKI.ca(),
                                        plan: Array(repeating: .http(.text("upstream CA down\n", status: 503)), count: 5))
        defer { server.stop() }
        let sleeper = RecordedSleeps()
        let enrollment = try retryingEnrollment(server, sleeper: sleeper)
        let key = try SoftwareKey.generate(KeySpec())
        let profile = try await enrollment.discover()
        let prepared = try await enrollment.prepare(server: profile, newKey: key, spec: Client.defaultSpec, challenge: "pw")
        do {
            let outcome = try await enrollment.submit(prepared, server: profile, replyKey: key, newKey: key)
            XCTFail("got \(outcome)")
        } catch let error as SCEPError {
            XCTAssertEqual(error.code, .httpStatus, error.message)
            XCTAssertTrue(error.message.contains("HTTP 503"), error.message)
        }
        XCTAssertEqual(server.pkiOperations.count, 3, "retries must be bounded")
        XCTAssertEqual(sleeper.delays, [1, 2])
    }

    // MARK: - Helpers

    private func retryingEnrollment(_ server: TestSCEPServer, sleeper: RecordedSleeps) throws -> SCEPEnrollment {
        let transport = RetryingTransport(base: CurlTransport(), maxAttempts: 3, initialDelay: 1, sleeper: sleeper)
        return SCEPEnrollment(service: SCEPService(url: server.url, transport: transport), pin: try server.ca.pin())
    }
}

/// A sleeper that returns at once and records the delays it was asked for.
private final class RecordedSleeps: Sleeper, @unchecked Sendable {
    private let lock = NSLock()
    private var recorded: [Double] = []
    var delays: [Double] { lock.lock(); defer { lock.unlock() }; return recorded }
    func sleep(seconds: Double) async throws { record(seconds) }
    private func record(_ seconds: Double) {
        lock.lock()
        recorded.append(seconds)
        lock.unlock()
    }
}
