import CertStore
import EnrollmentPlan
import Foundation
import Glibc
import TPMKeys
import TestSupport
import X509
import XCTest

@testable import SCEPClient
@testable import SCEPTestSupport

/// Issue 9's behaviours through the real binary against our SCEP test server: lost
/// answers recovered in the same run, requests that do not live forever, errors that
/// are not verdicts, unreadable replies.
final class EnrollmentStateMachineTests: XCTestCase {
    private var workspace: TestServerWorkspace!

    override func setUpWithError() throws {
        workspace = try TestServerWorkspace(prefix: "state-machine")
    }

    override func tearDown() { workspace = nil }

    private func config(for server: TestSCEPServer, extra: [String] = []) throws -> String {
        try workspace.config(for: server, extra: extra)
    }

    private var challengesSpent: Int { workspace.challengesSpent }

    private func state() throws -> ProfileState { try ProfileStore(readingFrom: workspace.appending("state/device")).loadState() }
    private func live() throws -> InstalledGeneration? { try ProfileStore(readingFrom: workspace.appending("state/device")).liveGeneration() }

    // MARK: - Recovered in the same run

    /// The first reply is lost and the CA does not implement CertPoll (HTTP 500): the
    /// same request — same transactionID, same senderNonce, same challenge — is sent once
    /// more, in the same run.
    func testALostReplyFromACAWithoutCertPollIsResentOnceInTheSameRun() throws {
        let server = try TestSCEPServer(ca: try TestPKI.ca(), configuration: .init(certPollAnswer: .text("no CertPoll here\n", status: 500)),
                                        plan: [.http(.closeWithoutResponse)])
        defer { server.stop() }
        let run = try AgentProcess.run(arguments: ["enroll"], config: try config(for: server))
        XCTAssertEqual(run.exitCode, 0, run.transcript)
        let types = server.pkiOperations.map(\.messageType)
        XCTAssertEqual(types, [.pkcsReq, .certPoll, .pkcsReq], run.transcript)
        let requests = server.pkiOperations.filter { $0.messageType == .pkcsReq }
        XCTAssertEqual(requests[0].transactionID, requests[1].transactionID)
        XCTAssertEqual(requests[0].senderNonce, requests[1].senderNonce, "not the same request")
        XCTAssertEqual(challengesSpent, 1, "a second challenge was fetched")
        XCTAssertNotNil(try live())
        XCTAssertEqual(try state().phase, .idle)
    }

    /// The CA lost the request (verified FAILURE badCertId on CertPoll): sent again once.
    func testACAThatDoesNotKnowTheRequestGetsItAgainOnce() throws {
        let server = try TestSCEPServer(ca: try TestPKI.ca(), configuration: .init(forgetsRequestsAnsweredWithHTTP: true),
                                        plan: [.http(.closeWithoutResponse)])
        defer { server.stop() }
        let run = try AgentProcess.run(arguments: ["enroll"], config: try config(for: server))
        XCTAssertEqual(run.exitCode, 0, run.transcript)
        XCTAssertEqual(server.pkiOperations.map(\.messageType), [.pkcsReq, .certPoll, .pkcsReq], run.transcript)
        XCTAssertTrue(run.standardError.contains("badCertId"), run.transcript)
        XCTAssertEqual(challengesSpent, 1)
    }

    // MARK: - Errors that are not verdicts

    /// An HTTP 500 on CertPoll of an acknowledged (PENDING) request never discards it:
    /// the next run polls the same transaction, no new challenge is spent.
    func testAnHTTPErrorOnCertPollKeepsThePendingRequest() throws {
        let server = try TestSCEPServer(ca: try TestPKI.ca(), plan: [.certRep(.pending), .http(.text("busy\n", status: 500))])
        defer { server.stop() }
        let text = try config(for: server, extra: ["poll_initial_interval = \"1s\"", "poll_max_wait = \"30s\""])
        let first = try AgentProcess.run(arguments: ["enroll"], config: text)
        XCTAssertEqual(first.exitCode, 69, first.transcript)
        guard case .pending(let progress) = try state().phase else { return XCTFail("not pending: \(try state().phase)\n\(first.transcript)") }
        XCTAssertEqual(server.pkiOperations.map(\.messageType), [.pkcsReq, .certPoll])

        let second = try AgentProcess.run(arguments: ["renew", "--force"], config: text)
        XCTAssertEqual(second.exitCode, 0, second.transcript)
        XCTAssertEqual(server.pkiOperations.map(\.messageType), [.pkcsReq, .certPoll, .certPoll])
        XCTAssertEqual(Set(server.pkiOperations.map(\.transactionID)), [progress.transaction.transactionID])
        XCTAssertEqual(challengesSpent, 1)
        XCTAssertNotNil(try live())
    }

    /// A SUCCESS whose envelope cannot be opened leaves "reply-unreadable", not
    /// "pending"; the next run fetches it again and installs it.
    func testAReplyThatCannotBeOpenedIsRecordedAsSuch() throws {
        let server = try TestSCEPServer(ca: try TestPKI.ca(), plan: [.certRep(.faulty(.unsupportedCipher))])
        defer { server.stop() }
        let text = try config(for: server)
        let first = try AgentProcess.run(arguments: ["enroll"], config: text)
        XCTAssertEqual(first.exitCode, 65, first.transcript)
        XCTAssertTrue(first.standardError.contains("unsupported cipher"), first.transcript)
        guard case .replyUnreadable(let reply) = try state().phase else { return XCTFail("\(try state().phase)") }
        XCTAssertEqual(reply.attempts, 1)
        let status = try AgentProcess.run(arguments: ["status", "--json"], config: text)
        let profile = try XCTUnwrap((try status.jsonObject()["profiles"] as? [[String: Any]])?.first)
        XCTAssertEqual(profile["phase"] as? String, "reply-unreadable", status.transcript)

        let second = try AgentProcess.run(arguments: ["renew", "--force"], config: text)
        XCTAssertEqual(second.exitCode, 0, second.transcript)
        XCTAssertEqual(server.pkiOperations.map(\.messageType), [.pkcsReq, .certPoll])
        XCTAssertNotNil(try live())
        XCTAssertEqual(challengesSpent, 1)
    }

    // MARK: - Requests that do not live forever

    /// A CA that keeps a request PENDING past pending_max_age: the transaction is
    /// abandoned with a logged reason and a fresh one (new key, new transactionID)
    /// follows; `status` shows how long a request has been open.
    func testPendingMaxAgeAbandonsAndStartsAFreshRequest() throws {
        let server = try TestSCEPServer(ca: try TestPKI.ca(), plan: Array(repeating: .certRep(.pending), count: 10))
        defer { server.stop() }
        let text = try config(for: server, extra: ["pending_max_age = \"2s\"", "poll_initial_interval = \"1s\"", "poll_max_wait = \"1s\""])
        let first = try AgentProcess.run(arguments: ["enroll"], config: text)
        XCTAssertEqual(first.exitCode, 75, first.transcript)
        let firstID = try XCTUnwrap(try state().phase.transaction?.transactionID)

        let status = try AgentProcess.run(arguments: ["status", "--json"], config: text)
        let pending = try XCTUnwrap(((try status.jsonObject()["profiles"] as? [[String: Any]])?.first?["pending"]) as? [String: Any], status.transcript)
        XCTAssertEqual(pending["phase"] as? String, "pending")
        XCTAssertNotNil(pending["age"] as? String)
        XCTAssertNotNil(pending["abandonAt"] as? String)

        Thread.sleep(forTimeInterval: 2.5)
        let second = try AgentProcess.run(arguments: ["renew"], config: text)
        XCTAssertEqual(second.exitCode, 75, second.transcript)
        XCTAssertTrue(second.standardError.contains("longer than pending_max_age (2s)"), second.transcript)
        let state = try state()
        let secondID = try XCTUnwrap(state.phase.transaction?.transactionID)
        XCTAssertNotEqual(secondID, firstID, "the same transaction was kept")
        XCTAssertEqual(state.lastAbandoned?.transactionID, firstID)
        XCTAssertEqual(challengesSpent, 2)
    }

    func testAbandonPendingByHand() throws {
        let server = try TestSCEPServer(ca: try TestPKI.ca(), plan: [.certRep(.pending)])
        defer { server.stop() }
        let text = try config(for: server, extra: ["poll_initial_interval = \"1s\"", "poll_max_wait = \"1s\""])
        XCTAssertEqual(try AgentProcess.run(arguments: ["enroll"], config: text).exitCode, 75)
        let firstID = try XCTUnwrap(try state().phase.transaction?.transactionID)
        XCTAssertTrue(FileManager.default.fileExists(atPath: workspace.appending("state/device/pending/key.pem")))

        let run = try AgentProcess.run(arguments: ["enroll", "--abandon-pending"], config: text)
        XCTAssertEqual(run.exitCode, 0, run.transcript)
        XCTAssertTrue(run.standardError.contains("abandoned by hand"), run.transcript)
        XCTAssertEqual(try state().lastAbandoned?.transactionID, firstID)
        XCTAssertNotEqual(server.pkiOperations.last?.transactionID, firstID)
        XCTAssertFalse(FileManager.default.fileExists(atPath: workspace.appending("state/device/pending")))
        XCTAssertNotNil(try live())
        let status = try AgentProcess.run(arguments: ["status"], config: text)
        XCTAssertTrue(status.standardOutput.contains("abandoned"), status.transcript)
    }

    // MARK: - Killed between install and record

    /// A run killed after installing the issued certificate but before saving the state
    /// leaves the RenewalReq on file while its certificate is live. The next run records
    /// the install without the network: polling again would open a reply encrypted to the
    /// previous certificate with the new live key ("cannot decrypt the reply"), which is what
    /// CrashSafetyTests hit at random kill instants.
    func testAnInstallThatWasNotRecordedIsRecordedWithoutTheNetwork() throws {
        let server = try TestSCEPServer(ca: try TestPKI.ca(), plan: [.certRep(.success), .certRep(.pending)])
        defer { server.stop() }
        let hookMarker = workspace.appending("hook-ran")
        let text = try config(for: server, extra: ["poll_initial_interval = \"1s\"", "poll_max_wait = \"1s\"",
                                                   "post_install = [\"/usr/bin/touch\", \"\(hookMarker)\"]"])
        XCTAssertEqual(try AgentProcess.run(arguments: ["enroll"], config: text).exitCode, 0)
        let first = try XCTUnwrap(try live())

        // A RenewalReq the CA keeps PENDING; copy the store as a kill right after the next
        // run's install would leave it.
        let pendingRun = try AgentProcess.run(arguments: ["renew", "--force"], config: text)
        XCTAssertEqual(pendingRun.exitCode, 75, pendingRun.transcript)
        XCTAssertEqual(server.pkiOperations.last?.messageType, .renewalReq)
        let profile = workspace.appending("state/device")
        let stateBeforeInstall = try Data(contentsOf: URL(fileURLWithPath: profile + "/state.json"))
        let pendingKey = try Data(contentsOf: URL(fileURLWithPath: profile + "/pending/key.pem"))
        let pendingRequest = try Data(contentsOf: URL(fileURLWithPath: profile + "/pending/request.der"))

        let installRun = try AgentProcess.run(arguments: ["renew"], config: text)
        XCTAssertEqual(installRun.exitCode, 0, installRun.transcript)
        let second = try XCTUnwrap(try live())
        XCTAssertNotEqual(second.id, first.id)
        try FileManager.default.removeItem(atPath: hookMarker)

        try FileManager.default.createDirectory(atPath: profile + "/pending", withIntermediateDirectories: true)
        try pendingKey.write(to: URL(fileURLWithPath: profile + "/pending/key.pem"))
        try pendingRequest.write(to: URL(fileURLWithPath: profile + "/pending/request.der"))
        try stateBeforeInstall.write(to: URL(fileURLWithPath: profile + "/state.json"))
        XCTAssertNotNil(try state().phase.transaction)
        let operationsBefore = server.pkiOperations.count

        let recovery = try AgentProcess.run(arguments: ["renew"], config: text)
        XCTAssertEqual(recovery.exitCode, 0, recovery.transcript)
        XCTAssertTrue(recovery.standardError.contains("installed by a run that stopped before recording it"), recovery.transcript)
        XCTAssertEqual(server.pkiOperations.count, operationsBefore, "the recovery went to the network")
        XCTAssertEqual(try state().phase, .idle)
        XCTAssertEqual(try live()?.id, second.id, "the live certificate changed")
        XCTAssertFalse(FileManager.default.fileExists(atPath: profile + "/pending"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: hookMarker), "the hook the killed run never ran did not run")
    }
}
