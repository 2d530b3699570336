import CertStore
import Foundation
import KeyInterface
import TestSupport
import X509
import XCTest

@testable import SCEPClient
@testable import SCEPTestSupport

/// `key_type = "ec"` end to end, the real binary against our SCEP test server (software
/// P-256 and P-384, swtpm P-256 with a mutual-TLS handshake through the tpm2 provider,
/// PENDING with the temporary RSA key on file, renewal by PKCSReq), and against micromdm
/// scepserver, which cannot issue EC certificates from its RSA CA: the agent reports its
/// refusal and changes nothing.
final class ECKeyEnrollmentTests: XCTestCase {
    private var workspace: TestServerWorkspace!

    override func setUpWithError() throws { workspace = try TestServerWorkspace(prefix: "ec-keys") }
    override func tearDown() { workspace = nil }

    private var livePath: String { workspace.appending("state/device/live") }
    private var pendingPath: String { workspace.appending("state/device/pending") }

    private func ecConfig(_ server: TestSCEPServer, curve: String, keyStorage: String = "software", extra: [String] = []) throws -> String {
        try workspace.config(for: server, keyStorage: keyStorage, extra: ["key_type = \"ec\"", "ec_curve = \"\(curve)\""] + extra)
    }

    /// openssl's view: the certificate carries an EC key on `curveName`, issued by the test
    /// CA, and key.pem is its private half; no pending transaction (nor its RSA key) is left.
    private func assertLiveKey(curveName: String, tpm: SwtpmProcess? = nil, file: StaticString = #filePath, line: UInt = #line) throws {
        let openssl = try EnrollmentPeers.require("openssl")
        let text = try EnrollmentPeers.check(openssl, ["x509", "-in", livePath + "/cert.pem", "-noout", "-text"])
        XCTAssertTrue(text.output.contains("id-ecPublicKey"), text.output, file: file, line: line)
        XCTAssertTrue(text.output.contains("ASN1 OID: \(curveName)"), text.output, file: file, line: line)
        let keyPublic = try EnrollmentPeers.check(openssl, ["pkey"] + (tpm == nil ? [] : ["-provider", "tpm2", "-provider", "default"])
            + ["-in", livePath + "/key.pem", "-pubout"], environment: tpm?.toolEnvironment ?? [:])
        let certificatePublic = try EnrollmentPeers.check(openssl, ["x509", "-in", livePath + "/cert.pem", "-pubkey", "-noout"])
        XCTAssertEqual(keyPublic.output, certificatePublic.output, "key.pem is not the certificate's key", file: file, line: line)
        let verify = try EnrollmentPeers.check(openssl, ["verify", "-CAfile", workspace.appending("ca.pem"), livePath + "/cert.pem"])
        XCTAssertTrue(verify.output.contains(": OK"), verify.output, file: file, line: line)
        XCTAssertFalse(FileManager.default.fileExists(atPath: pendingPath),
                       "the pending transaction (and its temporary RSA key) outlived the install", file: file, line: line)
    }

    func testSoftwareECKeysEnrollAndStatusShowsTheCurve() throws {
        for (curve, curveName) in [("P-256", "prime256v1"), ("P-384", "secp384r1")] {
            workspace = try TestServerWorkspace(prefix: "ec-keys")
            let server = try TestSCEPServer(ca: try TestPKI.ca())
            defer { server.stop() }
            let config = try ecConfig(server, curve: curve)
            let enroll = try AgentProcess.run(arguments: ["enroll"], config: config)
            XCTAssertEqual(enroll.exitCode, 0, enroll.transcript)
            XCTAssertTrue(try String(contentsOfFile: livePath + "/key.pem", encoding: .utf8).hasPrefix("-----BEGIN PRIVATE KEY-----"))
            try assertLiveKey(curveName: curveName)
            // The CSR was signed by the EC key, the pkiMessage by the temporary RSA key.
            let request = try XCTUnwrap(server.pkiOperations.first)
            XCTAssertEqual(request.csr.map { KeyAlgorithm(publicKey: $0.publicKey) }, .ec(curve == "P-256" ? .p256 : .p384))
            XCTAssertEqual(KeyAlgorithm(publicKey: request.signerCertificate.publicKey), .rsa(bits: 2048))

            let json = try workspace.statusJSON(config)
            XCTAssertEqual(json["keyType"] as? String, "EC \(curve)", "\(json)")
            XCTAssertEqual(json["keyStorage"] as? String, "software", "\(json)")
            let text = try AgentProcess.run(arguments: ["status"], config: config)
            XCTAssertTrue(text.standardOutput.contains("EC \(curve)"), text.transcript)

            let userIDs = try AgentProcess.run(arguments: ["certificate-user-ids"], config: config)
            XCTAssertEqual(userIDs.exitCode, 0, userIDs.transcript)
            XCTAssertTrue(userIDs.standardOutput.contains("X509:<I>"), userIDs.transcript)
        }
    }

    /// A due renewal of an EC certificate is a PKCSReq with a fresh challenge and a new
    /// key, never a RenewalReq (its reply would be encrypted to the EC key), even though
    /// the server offers Renewal.
    func testAnECCertificateRenewsWithAPKCSReq() throws {
        let server = try TestSCEPServer(ca: try TestPKI.ca())
        defer { server.stop() }
        let config = try ecConfig(server, curve: "P-256")
        XCTAssertEqual(try AgentProcess.run(arguments: ["enroll"], config: config).exitCode, 0)
        let first = try workspace.liveCertificate()
        let renew = try AgentProcess.run(arguments: ["renew", "--force"], config: config)
        XCTAssertEqual(renew.exitCode, 0, renew.transcript)
        XCTAssertTrue(renew.standardError.contains("renewing the EC P-256 certificate with a PKCSReq"), renew.transcript)
        XCTAssertEqual(server.pkiOperations.map(\.messageType), [.pkcsReq, .pkcsReq])
        XCTAssertEqual(workspace.challengesSpent, 2)
        XCTAssertNotEqual(try workspace.liveCertificate().publicKey, first.publicKey, "a new key")
        try assertLiveKey(curveName: "prime256v1")
    }

    func testTPMECKeyEnrollsAndAuthenticatesAMutualTLSHandshake() throws {
        let tpm = try EnrollmentPeers.startSwtpm()
        defer { tpm.stop() }
        let openssl = try EnrollmentPeers.require("openssl")
        let server = try TestSCEPServer(ca: try TestPKI.ca())
        defer { server.stop() }
        let config = try ecConfig(server, curve: "P-256", keyStorage: "tpm", extra: ["tcti = \"\(tpm.tcti)\""])
        let enroll = try AgentProcess.run(arguments: ["enroll"], config: config)
        XCTAssertEqual(enroll.exitCode, 0, enroll.transcript)
        XCTAssertTrue(enroll.standardError.contains("creating an EC P-256 key in the TPM"), enroll.transcript)
        XCTAssertTrue(try String(contentsOfFile: livePath + "/key.pem", encoding: .utf8).hasPrefix("-----BEGIN TSS2 PRIVATE KEY-----"))
        try assertLiveKey(curveName: "prime256v1", tpm: tpm)
        let json = try workspace.statusJSON(config)
        XCTAssertEqual(json["keyType"] as? String, "EC P-256", "\(json)")
        XCTAssertEqual(json["keyStorage"] as? String, "tpm", "\(json)")

        let directory = try TemporaryDirectory(prefix: "ec-tls")
        defer { directory.remove() }
        let tls = MutualTLSCheck(directory: directory, openssl: openssl, clientCAPath: workspace.appending("ca.pem"))
        let outcome = try tls.connect(certificatePath: livePath + "/cert.pem", keyPath: livePath + "/key.pem", tpm: tpm)
        XCTAssertEqual(outcome.client.status, .exited(0), outcome.transcript)
        XCTAssertTrue(outcome.client.output.contains("Verify return code: 0 (ok)"), outcome.transcript)
        XCTAssertTrue(outcome.client.output.contains("HTTP/1.0 200 ok"), outcome.transcript)
        XCTAssertTrue(outcome.client.output.contains("Client certificate"), outcome.transcript)
        XCTAssertEqual(outcome.serverStatus, .exited(0), outcome.transcript)
        XCTAssertFalse(outcome.serverOutput.contains("verify error"), outcome.transcript)
    }

    /// PENDING: the EC key and its temporary RSA key wait in pending/, 0600; the next run
    /// polls with the RSA key, installs the EC certificate and deletes both.
    func testAPendingECRequestKeepsItsTemporaryRSAKeyUntilTheInstall() throws {
        let server = try TestSCEPServer(ca: try TestPKI.ca(), plan: [.certRep(.pending)])
        defer { server.stop() }
        let config = try ecConfig(server, curve: "P-384", extra: ["poll_initial_interval = \"1s\"", "poll_max_wait = \"1s\""])
        let first = try AgentProcess.run(arguments: ["enroll"], config: config)
        XCTAssertEqual(first.exitCode, 75, first.transcript)
        var info = stat()
        XCTAssertEqual(stat(pendingPath + "/envelope-key.pem", &info), 0, "no temporary RSA key on file")
        XCTAssertEqual(info.st_mode & 0o777, 0o600)
        let envelope = try SoftwareKeyText.algorithm(ofPEMFile: pendingPath + "/envelope-key.pem")
        XCTAssertEqual(envelope, "RSA")

        let second = try AgentProcess.run(arguments: ["renew"], config: config)
        XCTAssertEqual(second.exitCode, 0, second.transcript)
        XCTAssertEqual(server.pkiOperations.map(\.messageType), [.pkcsReq, .certPoll])
        XCTAssertEqual(workspace.challengesSpent, 1)
        XCTAssertEqual(KeyAlgorithm(publicKey: try workspace.liveCertificate().publicKey), .ec(.p384))
        // Both messages were signed by the temporary key, not by the EC key they certify.
        XCTAssertTrue(server.pkiOperations.allSatisfy { KeyAlgorithm(publicKey: $0.signerCertificate.publicKey) == .rsa(bits: 2048) })
        try assertLiveKey(curveName: "secp384r1")
    }

    /// micromdm scepserver copies the CSR's signature algorithm (ecdsa-with-SHA256) into the
    /// certificate it signs with its RSA CA key, which Go's x509 refuses ("requested
    /// SignatureAlgorithm does not match private key type"): it answers FAILURE badRequest.
    /// The agent says so, exits 77 and installs nothing.
    func testMicromdmScepserverRefusesAnECRequestAndNothingIsInstalled() throws {
        let fixture = try EnrollmentFixture()
        var profile = fixture.profile(keyStorage: "software")
        profile.extraLines += ["key_type = \"ec\""]
        let enroll = try fixture.run(["enroll"], profile: profile)
        XCTAssertEqual(enroll.exitCode, 77, enroll.transcript)
        XCTAssertTrue(enroll.standardError.contains("failInfo badRequest"), enroll.transcript)
        XCTAssertFalse(fixture.exists("live"), enroll.transcript)
    }
}

/// What openssl says a PEM key file holds.
private enum SoftwareKeyText {
    static func algorithm(ofPEMFile path: String) throws -> String {
        let text = try EnrollmentPeers.check(try EnrollmentPeers.require("openssl"), ["pkey", "-in", path, "-noout", "-text"])
        if text.output.contains("Private-Key: (2048 bit, 2 primes)") { return "RSA" }
        return text.output
    }
}
