import CertStore
import Foundation
import Glibc
import TestSupport
import X509
import XCTest

@testable import SCEPClient
@testable import SCEPTestSupport
@testable import EnrollAgent

/// Issue 12 §3 through the real binary against our SCEP test server: the server announces
/// its next CA (GetNextCACert, signed by today's CA), the agent keeps it as a candidate pin,
/// trusts it from the moment GetCACert presents it, and renews with a PKCSReq and a fresh
/// challenge after the switch; a forged announcement changes nothing.
final class CARolloverEndToEndTests: XCTestCase {
    private var workspace: TestServerWorkspace!

    override func setUpWithError() throws {
        workspace = try TestServerWorkspace(prefix: "rollover")
    }

    override func tearDown() { workspace = nil }

    private func nextCAFetches(_ server: TestSCEPServer) -> Int { server.operations.filter { $0 == "GetNextCACert" }.count }

    func testAnAnnouncedNextCAIsTrustedFromTheRolloverAndTheRenewalAfterItIsAPKCSReq() throws {
        let old = try TestPKI.ca(), next = try TestPKI.nextCA()
        let oldSHA = PinnedCA.fingerprint(of: old.certificate), newSHA = PinnedCA.fingerprint(of: next.certificate)
        let server = try TestSCEPServer(ca: old, configuration: .init(nextCA: next))
        defer { server.stop() }
        let config = try workspace.config(for: server)

        // 1. Enrollment with the old CA; the announcement is verified and kept.
        let enroll = try AgentProcess.run(arguments: ["enroll"], config: config)
        XCTAssertEqual(enroll.exitCode, 0, enroll.transcript)
        print("--- rollover test: enroll ---\n\(enroll.standardError)--- end ---")
        XCTAssertTrue(enroll.standardError.contains("the SCEP server announces its next CA"), enroll.transcript)
        XCTAssertTrue(enroll.standardError.contains(newSHA), enroll.transcript)
        XCTAssertEqual(nextCAFetches(server), 1)
        XCTAssertEqual(try workspace.liveCertificate().issuer, old.subject)
        let record = try XCTUnwrap(try workspace.store.loadNextCA())
        XCTAssertEqual(record.candidates.map(\.sha256), [newSHA])
        XCTAssertEqual(record.candidates.first?.announcedWhileCA, oldSHA)
        XCTAssertEqual(record.candidates.first?.signedBy, oldSHA)
        XCTAssertNil(record.candidates.first?.inUseSince)
        XCTAssertTrue(record.serverOffersNextCA)
        var info = stat()
        XCTAssertEqual(stat(workspace.store.nextCAPath, &info), 0)
        XCTAssertEqual(info.st_mode & 0o777, 0o644, "public material")

        // status and ca-info show it.
        let announced = try XCTUnwrap((try workspace.statusJSON(config)["nextCA"] as? [[String: Any]])?.first)
        XCTAssertEqual(announced["sha256Fingerprint"] as? String, newSHA)
        XCTAssertNil(announced["inUseSince"])
        let text = try AgentProcess.run(arguments: ["status"], config: config)
        print("--- rollover test: status (announced) ---\n\(text.standardOutput)\n--- end ---")
        XCTAssertTrue(text.standardOutput.contains("next CA"), text.transcript)
        XCTAssertTrue(text.standardOutput.contains(newSHA), text.transcript)
        let caInfo = try AgentProcess.run(arguments: ["ca-info", "--profile", "device"], config: config)
        XCTAssertEqual(caInfo.exitCode, 0, caInfo.transcript)
        XCTAssertTrue(caInfo.standardOutput.contains("Next CA on file for profile device"), caInfo.transcript)
        XCTAssertTrue(caInfo.standardOutput.contains("next CA:     CN=SCEP Test CA G2,O=SCEP Test"), caInfo.transcript)
        XCTAssertTrue(caInfo.standardOutput.contains(newSHA), caInfo.transcript)

        // check-config, when asked, says which pin the server's chain matches today.
        let checkBefore = try AgentProcess.run(arguments: ["check-config", "--contact-server"], config: config)
        XCTAssertEqual(checkBefore.exitCode, 0, checkBefore.transcript)
        XCTAssertTrue(checkBefore.standardOutput.contains("ca_pin_file certificate \"CN=SCEP Test CA,O=SCEP Test\" sha256 \(oldSHA): matches certificate 1 of the server's 1"), checkBefore.transcript)
        XCTAssertTrue(checkBefore.standardOutput.contains("sha256 \(newSHA): not presented by the server today"), checkBefore.transcript)

        // 2. A run with nothing to do within the day does not ask again (the cache time is on file).
        let fetchesBefore = nextCAFetches(server)
        let notDue = try AgentProcess.run(arguments: ["renew"], config: config)
        XCTAssertEqual(notDue.exitCode, 0, notDue.transcript)
        XCTAssertEqual(nextCAFetches(server), fetchesBefore)

        // 3. The server switches: the candidate is trusted, the rollover is logged, and the
        // renewal is a PKCSReq with a fresh challenge (the new CA may refuse a RenewalReq
        // signed by the old CA's certificate).
        server.switchToNextCA()
        let rolled = try AgentProcess.run(arguments: ["renew", "--force"], config: config)
        XCTAssertEqual(rolled.exitCode, 0, rolled.transcript)
        print("--- rollover test: renew --force after the switch ---\n\(rolled.standardError)--- end ---")
        XCTAssertTrue(rolled.standardError.contains("CA rollover: the SCEP server now presents the announced next CA"), rolled.transcript)
        XCTAssertTrue(rolled.standardError.contains("old CA sha256 \(oldSHA), new CA sha256 \(newSHA)"), rolled.transcript)
        XCTAssertTrue(rolled.standardError.contains("renewing with a PKCSReq and a fresh challenge"), rolled.transcript)
        XCTAssertEqual(server.pkiOperations.map(\.messageType), [.pkcsReq, .pkcsReq])
        XCTAssertEqual(workspace.challengesSpent, 2, "a fresh challenge")
        let renewed = try workspace.liveCertificate()
        XCTAssertEqual(renewed.issuer, next.subject)
        XCTAssertTrue(next.certificate.publicKey.isValidSignature(renewed.signature, for: renewed))
        XCTAssertNotNil(try workspace.store.loadNextCA()?.candidates.first?.inUseSince)
        let after = try AgentProcess.run(arguments: ["status"], config: config)
        print("--- rollover test: status (after the rollover) ---\n\(after.standardOutput)\n--- end ---")
        XCTAssertTrue(after.standardOutput.contains("in use since"), after.transcript)
        let checkAfter = try AgentProcess.run(arguments: ["check-config", "--contact-server"], config: config)
        XCTAssertEqual(checkAfter.exitCode, 0, checkAfter.transcript)
        XCTAssertTrue(checkAfter.standardOutput.contains("sha256 \(oldSHA): not presented by the server today"), checkAfter.transcript)
        XCTAssertTrue(checkAfter.standardOutput.contains("sha256 \(newSHA): matches certificate 1 of the server's 1"), checkAfter.transcript)

        // 4. The renewal after that is from the new CA's certificate: a RenewalReq again, no challenge spent on a PKCSReq.
        let again = try AgentProcess.run(arguments: ["renew", "--force"], config: config)
        XCTAssertEqual(again.exitCode, 0, again.transcript)
        XCTAssertFalse(again.standardError.contains("CA rollover"), "logged once: \(again.transcript)")
        XCTAssertEqual(server.pkiOperations.last?.messageType, .renewalReq)
        XCTAssertEqual(try workspace.liveCertificate().issuer, next.subject)
    }

    /// Signed by another key (the rogue CA, its certificate embedded): a warning, and
    /// nothing on file; the switch that follows is refused like any unpinned CA.
    func testAForgedAnnouncementIsIgnored() throws {
        let next = try TestPKI.nextCA()
        let server = try TestSCEPServer(ca: try TestPKI.ca(), configuration: .init(nextCA: next, nextCAAnnouncementSigner: try TestPKI.rogue().identity))
        defer { server.stop() }
        let config = try workspace.config(for: server)
        let enroll = try AgentProcess.run(arguments: ["enroll"], config: config)
        XCTAssertEqual(enroll.exitCode, 0, enroll.transcript)
        print("--- forged announcement: enroll ---\n\(enroll.standardError)--- end ---")
        // Nothing is recorded, not even the cache time: each contact of this run asks again.
        XCTAssertGreaterThanOrEqual(nextCAFetches(server), 1)
        XCTAssertTrue(enroll.standardError.contains("warning"), enroll.transcript)
        XCTAssertTrue(enroll.standardError.contains("the server's GetNextCACert answer is not used"), enroll.transcript)
        XCTAssertTrue(enroll.standardError.contains("Rogue CA"), enroll.transcript)
        XCTAssertTrue(enroll.standardError.contains("the candidate pins are unchanged"), enroll.transcript)
        XCTAssertFalse(FileManager.default.fileExists(atPath: workspace.store.nextCAPath), "nothing recorded")
        XCTAssertNil(try workspace.statusJSON(config)["nextCA"])
        let generation = try workspace.store.liveGeneration()

        server.switchToNextCA()
        let renew = try AgentProcess.run(arguments: ["renew", "--force"], config: config)
        XCTAssertNotEqual(renew.exitCode, 0, renew.transcript)
        XCTAssertTrue(renew.standardError.contains("is or chains to the pinned CA"), renew.transcript)
        XCTAssertEqual(server.pkiOperations.count, 1, "nothing was sent to the unpinned CA")
        XCTAssertEqual(try workspace.store.liveGeneration(), generation)
        let check = try AgentProcess.run(arguments: ["check-config", "--contact-server"], config: config)
        XCTAssertNotEqual(check.exitCode, 0, check.transcript)
        XCTAssertTrue(check.standardOutput.contains("not presented by the server today"), check.transcript)
    }
}
