import CertStore
import EnrollmentPlan
import Foundation
import Glibc
import TestSupport
import X509
import XCTest

@testable import SCEPClient
@testable import SCEPTestSupport
@testable import EnrollAgent

/// Issue 10 §3 through the real binary against our SCEP test server, which issues
/// certificates naming its own `/crl` and revokes them on request: a revoked certificate
/// is noticed and replaced by a fresh PKCSReq (new key, new challenge), or only reported;
/// a CRL that cannot be used never removes the live certificate.
final class RevocationEndToEndTests: XCTestCase {
    private var workspace: TestServerWorkspace!

    override func setUpWithError() throws {
        workspace = try TestServerWorkspace(prefix: "revocation")
    }

    override func tearDown() { workspace = nil }

    // MARK: - Revoked

    func testARevokedCertificateIsReplacedWithAFreshPKCSReqAndANewKey() throws {
        let server = try TestSCEPServer(ca: try TestPKI.ca(), configuration: .init(crlDistributionPoint: .served))
        defer { server.stop() }
        let config = try workspace.config(for: server, extra: ["revocation_check_interval = \"0s\""])
        let enroll = try AgentProcess.run(arguments: ["enroll"], config: config)
        XCTAssertEqual(enroll.exitCode, 0, enroll.transcript)
        let first = try workspace.liveCertificate()
        XCTAssertEqual(try CRLDistributionPoints(of: first)?.uris, [server.crlURL])
        XCTAssertEqual(server.crl.fetchCount, 0, "enroll does not check the CRL")

        // Not revoked: the check finds nothing, the CRL is cached, nothing else happens.
        let clean = try AgentProcess.run(arguments: ["renew"], config: config)
        XCTAssertEqual(clean.exitCode, 0, clean.transcript)
        XCTAssertTrue(clean.standardError.contains("the certificate is not revoked"), clean.transcript)
        XCTAssertEqual(server.crl.fetchCount, 1)
        XCTAssertEqual(server.pkiOperations.count, 1)
        let cached = try XCTUnwrap(try workspace.store.loadCRL())
        XCTAssertTrue(try CertificateRevocationList(derEncoded: cached).isSigned(by: server.ca.certificate))
        var info = stat()
        XCTAssertEqual(stat(workspace.store.crlCachePath, &info), 0)
        XCTAssertEqual(info.st_mode & 0o777, 0o644)

        server.crl.revoke(first.serialNumber, reason: .keyCompromise)
        let renew = try AgentProcess.run(arguments: ["renew"], config: config)
        XCTAssertEqual(renew.exitCode, 0, renew.transcript)
        print("--- revocation run (renew) ---\n\(renew.standardError)--- end ---")
        XCTAssertTrue(renew.standardError.contains("the certificate has been revoked by the CA"), renew.transcript)
        XCTAssertTrue(renew.standardError.contains("reason=keyCompromise"), renew.transcript)
        XCTAssertTrue(renew.standardError.contains("the certificate has been revoked"), renew.transcript)
        XCTAssertTrue(renew.standardError.contains("error"), renew.transcript)

        // A PKCSReq with a challenge (the server offers Renewal: a RenewalReq would have been
        // the ordinary renewal), signed by the new key's self-signed certificate.
        let request = try XCTUnwrap(server.pkiOperations.last)
        XCTAssertEqual(server.pkiOperations.map(\.messageType), [.pkcsReq, .pkcsReq])
        XCTAssertEqual(request.challenge, "pw")
        XCTAssertEqual(workspace.challengesSpent, 2, "a fresh challenge was fetched")
        XCTAssertEqual(request.signerCertificate.subject, request.signerCertificate.issuer, "signed by a self-signed certificate, not by the revoked one")
        XCTAssertNotEqual(request.signerCertificate.serialNumber, first.serialNumber)

        let second = try workspace.liveCertificate()
        XCTAssertNotEqual(second.serialNumber, first.serialNumber)
        XCTAssertNotEqual(second.publicKey, first.publicKey, "a new key")
        let status = try workspace.statusJSON(config)
        XCTAssertEqual(status["state"] as? String, "valid")
        XCTAssertEqual((status["certificate"] as? [String: Any])?["serial"] as? String, CertificateText.serial(second))
    }

    func testOnRevokedReportKeepsTheCertificateAndStatusSaysRevoked() throws {
        let server = try TestSCEPServer(ca: try TestPKI.ca(), configuration: .init(crlDistributionPoint: .served))
        defer { server.stop() }
        let config = try workspace.config(for: server, extra: ["on_revoked = \"report\"", "revocation_check_interval = \"0s\""])
        XCTAssertEqual(try AgentProcess.run(arguments: ["enroll"], config: config).exitCode, 0)
        let first = try workspace.liveCertificate()
        let generation = try workspace.store.liveGeneration()
        let revokedAt = Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down) - 30)
        server.crl.revoke(first.serialNumber, reason: .cessationOfOperation, at: revokedAt)

        let renew = try AgentProcess.run(arguments: ["renew"], config: config)
        XCTAssertEqual(renew.exitCode, 0, renew.transcript)
        XCTAssertTrue(renew.standardError.contains("it stays installed (on_revoked = \"report\")"), renew.transcript)
        XCTAssertEqual(server.pkiOperations.count, 1, "nothing was requested")
        XCTAssertEqual(try workspace.store.liveGeneration(), generation)

        let status = try workspace.statusJSON(config)
        XCTAssertEqual(status["state"] as? String, "revoked")
        let revocation = try XCTUnwrap(status["revocation"] as? [String: Any])
        XCTAssertEqual(revocation["reason"] as? String, "cessationOfOperation")
        XCTAssertEqual(revocation["revokedAt"] as? String, ProfileStatusDate.text(revokedAt))
        XCTAssertEqual(revocation["lastResult"] as? String, "revoked")
        let text = try AgentProcess.run(arguments: ["status"], config: config)
        print("--- status (on_revoked = report) ---\n\(text.standardOutput)\n--- end ---")
        XCTAssertTrue(text.standardOutput.contains("profile device: revoked"), text.transcript)
        XCTAssertTrue(text.standardOutput.contains("reason cessationOfOperation"), text.transcript)

        // A later check that cannot fetch the CRL uses the cached one (still current), and says so.
        server.crl.answer = .http(.status(503))
        let later = try AgentProcess.run(arguments: ["renew"], config: config)
        XCTAssertEqual(later.exitCode, 0, later.transcript)
        XCTAssertTrue(later.standardError.contains("no CRL could be fetched"), later.transcript)
        XCTAssertTrue(later.standardError.contains("HTTP 503"), later.transcript)
        XCTAssertTrue(later.standardError.contains("the cached CRL was used"), later.transcript)
        var after = try workspace.statusJSON(config)
        XCTAssertEqual(after["state"] as? String, "revoked")
        XCTAssertEqual((after["revocation"] as? [String: Any])?["lastResult"] as? String, "revoked")
        XCTAssertTrue(((after["revocation"] as? [String: Any])?["cause"] as? String)?.contains("cached CRL") ?? false, "\(after)")

        // Without a usable cache either, a check gives no verdict and still forgets nothing.
        try FileManager.default.removeItem(atPath: workspace.store.crlCachePath)
        let blind = try AgentProcess.run(arguments: ["renew"], config: config)
        XCTAssertEqual(blind.exitCode, 0, blind.transcript)
        XCTAssertTrue(blind.standardError.contains("the revocation check failed; the certificate stays installed"), blind.transcript)
        after = try workspace.statusJSON(config)
        XCTAssertEqual(after["state"] as? String, "revoked")
        XCTAssertEqual((after["revocation"] as? [String: Any])?["lastResult"] as? String, "unavailable")
        XCTAssertEqual(try workspace.store.liveGeneration(), generation)
    }

    /// The daemon wakes up for the next check (not only for the renewal, weeks away): with
    /// `revocation_check_interval = "2s"` it sleeps about 2 s between checks, and a
    /// revocation is noticed and repaired without a restart.
    func testTheDaemonWakesUpForTheNextCheckAndReplacesARevokedCertificate() throws {
        let server = try TestSCEPServer(ca: try TestPKI.ca(), configuration: .init(crlDistributionPoint: .served))
        defer { server.stop() }
        let configPath = workspace.appending("config.toml")
        try AgentTestFiles.writeSecret(try workspace.config(for: server, extra: ["revocation_check_interval = \"2s\""]), to: configPath)
        let socket = try DaemonNotifySocket(path: workspace.appending("notify.sock"))
        let agent = try ChildProcess(executable: try AgentProcess.locateBinary(), arguments: ["run", "--config", configPath],
                                     extraEnvironment: ["NOTIFY_SOCKET": socket.path], outputPath: workspace.appending("agent.log"))
        defer { _ = agent.terminate(gracePeriod: 1) }
        func log() -> String { agent.readOutput() + agent.readErrorOutput() }
        func waitFor(_ what: String, timeout: TimeInterval = 20, _ condition: () throws -> Bool) throws {
            let deadline = Date().addingTimeInterval(timeout)
            while try !condition() {
                guard Date() < deadline else { throw AgentProcessError("timed out waiting for \(what)\n\(log())") }
                usleep(50_000)
            }
        }

        try waitFor("the first certificate and its first check") { server.crl.fetchCount >= 1 && (try? workspace.store.liveGeneration()) != nil }
        let first = try workspace.liveCertificate()
        // The wake-up is the check's, 2 s away, not the renewal's (clamped to an hour).
        try waitFor("a short sleep") { socket.received.contains { $0.contains("next check in 1s") || $0.contains("next check in 2s") } }
        try waitFor("a second check") { server.crl.fetchCount >= 2 }

        server.crl.revoke(first.serialNumber, reason: .superseded)
        try waitFor("the replacement") { (try? self.workspace.liveCertificate().serialNumber) != first.serialNumber }
        XCTAssertTrue(log().contains("the certificate has been revoked by the CA"), log())
        XCTAssertEqual(server.pkiOperations.map(\.messageType), [.pkcsReq, .pkcsReq], log())
        agent.send(signal: SIGTERM)
        XCTAssertEqual(agent.wait(timeout: 5), .exited(0), log())
    }

    // MARK: - CRLs that cannot be used

    /// Each leaves the certificate live (same generation, nothing requested) with a
    /// warning naming the cause, and `status` shows the check's result.
    func testUnusableCRLsLeaveTheCertificateLiveWithAWarning() throws {
        let cases: [(String, TestSCEPServer.CRLDistributionPoint, TestCRLPublisher.Answer?, String)] = [
            ("rogue signer", .served, .signedByRogueCA, "signature does not verify with the key of the certificate's issuer"),
            ("rogue CA's own CRL", .served, .issuedByRogueCA, "not by the certificate's issuer"),
            ("truncated", .served, .truncated, "not a DER CRL"),
            ("oversized", .served, .oversized(RevocationChecker.maximumCRLBytes + 1), "larger than 20971520 bytes"),
            ("out of date", .served, .outOfDate, "out of date"),
            ("HTTP 404", .served, .http(.status(404)), "HTTP 404"),
            ("unreachable", .urls(["http://127.0.0.1:1/crl"]), nil, "http://127.0.0.1:1/crl"),
            ("LDAP only", .urls(["ldap://ldap.example.com/cn=CA?certificateRevocationList"]), nil, "LDAP distribution points are not fetched"),
        ]
        for (name, point, answer, cause) in cases {
            let workspace = try TestServerWorkspace(prefix: "revocation-bad")
            let server = try TestSCEPServer(ca: try TestPKI.ca(), configuration: .init(crlDistributionPoint: point))
            defer { server.stop() }
            let config = try workspace.config(for: server)
            XCTAssertEqual(try AgentProcess.run(arguments: ["enroll"], config: config).exitCode, 0, name)
            let store = ProfileStore(readingFrom: workspace.profileDirectory)
            let generation = try workspace.store.liveGeneration()
            let certificate = try Certificate(pemEncoded: try workspace.store.readBundle(of: XCTUnwrap(generation)).certificatePEM)
            // Revoked in truth: a CRL that does not verify must still not be believed either way.
            server.crl.revoke(certificate.serialNumber)
            if let answer { server.crl.answer = answer }

            let renew = try AgentProcess.run(arguments: ["renew"], config: config)
            XCTAssertEqual(renew.exitCode, 0, "\(name)\n\(renew.transcript)")
            XCTAssertTrue(renew.standardError.contains("the revocation check failed; the certificate stays installed"), "\(name)\n\(renew.transcript)")
            XCTAssertTrue(renew.standardError.contains(cause), "\(name): \(cause)\n\(renew.transcript)")
            XCTAssertFalse(renew.standardError.contains("has been revoked"), name)
            XCTAssertEqual(try workspace.store.liveGeneration(), generation, name)
            XCTAssertEqual(server.pkiOperations.count, 1, "\(name): nothing was requested")
            XCTAssertNil(try workspace.store.loadCRL(), "\(name): an unusable CRL is not cached")

            let status = try AgentProcess.run(arguments: ["status", "--json"], config: config)
            let profile = try XCTUnwrap((try status.jsonObject()["profiles"] as? [[String: Any]])?.first)
            XCTAssertEqual(profile["state"] as? String, "valid", name)
            let revocation = try XCTUnwrap(profile["revocation"] as? [String: Any], name)
            XCTAssertEqual(revocation["lastResult"] as? String, "unavailable", name)
            XCTAssertTrue((revocation["cause"] as? String)?.contains(cause) ?? false, "\(name): \(revocation)")
        }
    }
}

/// How `status --json` writes dates.
enum ProfileStatusDate {
    static func text(_ date: Date) -> String { date.formatted(Date.ISO8601FormatStyle()) }
}
