import CertStore
import EnrollmentPlan
import Foundation
import TestSupport
import TPMKeys
import X509
import XCTest

@testable import SCEPClient
@testable import SCEPTestSupport

/// A run killed after it installed a certificate and before it saved the state leaves the
/// transaction on file while its certificate and key are live. For a RenewalReq the next
/// run then signed its CertPoll with the new (now live) key under the old certificate, the
/// CA refused it, and the transaction could never be completed (CrashSafetyTests hit this
/// window now and then). The next run records the install instead.
final class InstalledButNotRecordedTests: XCTestCase {
    func testATransactionWhoseCertificateIsAlreadyLiveIsRecordedWithoutAskingTheCA() throws {
        let workspace = try TestServerWorkspace(prefix: "installed-unrecorded")
        let server = try TestSCEPServer(ca: try TestPKI.ca())
        defer { server.stop() }
        let config = try workspace.config(for: server, extra: ["poll_initial_interval = \"1s\"", "poll_max_wait = \"1s\""])
        XCTAssertEqual(try AgentProcess.run(arguments: ["enroll"], config: config).exitCode, 0)
        server.enqueue(.certRep(.pending))
        let pending = try AgentProcess.run(arguments: ["renew", "--force"], config: config)
        XCTAssertEqual(pending.exitCode, 75, pending.transcript)
        let store = try ProfileStore(directory: workspace.profileDirectory)
        guard case .pending(let progress) = try store.loadState().phase else { return XCTFail("not pending") }
        XCTAssertEqual(progress.transaction.kind, .renewalReq)

        // What the killed run did before it died: the CA's certificate for the new key, installed.
        let newKey = try SoftwareKey(pem: try XCTUnwrap(try store.loadPendingKey()))
        let issued = try server.ca.issue(publicKey: Certificate.PublicKey(derEncoded: newKey.subjectPublicKeyInfo),
                                         subject: try DistinguishedName { CommonName("host01.example.com") }, extensions: Certificate.Extensions())
        let generation = try store.installWithPendingKey(certificatePEM: try issued.serializeAsPEM().pemString + "\n",
                                                         chainPEM: try server.ca.certificate.serializeAsPEM().pemString + "\n")
        let operations = server.pkiOperations.count

        let run = try AgentProcess.run(arguments: ["renew"], config: config)
        XCTAssertEqual(run.exitCode, 0, run.transcript)
        XCTAssertTrue(run.standardError.contains("was installed by a run that stopped before recording it"), run.transcript)
        XCTAssertEqual(server.pkiOperations.count, operations, "the CA was asked again")
        let state = try store.loadState()
        XCTAssertEqual(state.phase, .idle)
        XCTAssertEqual(state.failures, 0)
        XCTAssertNil(try store.loadPendingKey())
        XCTAssertEqual(try store.liveGeneration(), generation)
        XCTAssertEqual(state.renewalJitter?.serial, Hex.encode(Array(issued.serialNumber.bytes)))
    }
}
