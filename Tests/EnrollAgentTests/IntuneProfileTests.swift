import Foundation
import Glibc
import SwiftASN1
import TestSupport
import X509
import XCTest

@testable import EnrollAgent
@testable import SCEPClient
@testable import SCEPTestSupport

/// Issue 10 §1 through the real binary: the seed's Intune SCEP profile, copied field by field
/// into the config (see the README's Intune table), enrolls against our SCEP test server, with
/// a TPM key when a TPM is present and a software key when not; and `key_usage` is honoured
/// exactly by the real micromdm scepserver.
final class IntuneProfileTests: XCTestCase {
    private var workspace: TestServerWorkspace!

    override func setUpWithError() throws {
        workspace = try TestServerWorkspace(prefix: "intune-profile")
    }

    override func tearDown() { workspace = nil }

    /// The seed profile as an administrator writes it from the Intune SCEP profile.
    /// `tcti` and the challenge are the test's; everything else is the Intune profile's.
    private func seedProfile(scepURL: String, pinPath: String, tcti: String, challenge: [String], variables: [String]) -> String {
        ([
            "state_dir = \"\(workspace.appending("state"))\"",
            "",
            "[[profile]]",
            "name = \"device\"",
            "scep_url = \"\(scepURL)\"",
            "ca_pin_file = \"\(pinPath)\"                       # Root/intermediate certificate: the issuing CA",
            "subject = \"CN={{UserPrincipalName}},G={{GivenName}},SN={{SurName}}\"   # Subject name format",
            "san_upn = [\"{{UserPrincipalName}}\"]              # Subject alternative name: UPN",
            "key_storage = \"tpm-preferred\"                    # KSP: TPM if present, otherwise software",
            "key_type = \"rsa\"",
            "key_bits = 2048                                     # Key size (bits)",
            "key_usage = [\"digitalSignature\"]                 # Key usage: Digital signature",
            "extended_key_usage = [\"clientAuth\"]              # Extended key usage: Client Authentication",
            "renewal_threshold_percent = 20                      # Renewal threshold (%)",
            "tcti = \"\(tcti)\"",
            "",
            "[profile.challenge]",
        ] + challenge + ["", "[profile.variables]"] + variables).joined(separator: "\n") + "\n"
    }

    private func writePin(_ server: TestSCEPServer) throws -> String {
        let path = workspace.appending("ca.pem")
        try (try server.ca.certificate.serializeAsPEM().pemString + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// The management endpoint of the seed: the challenge plus the user's identity variables.
    private func startEndpoint(token: String) throws -> TestHTTPServer {
        try TestHTTPServer { request in
            guard request.headers["Authorization"] == "Bearer \(token)" else { return .status(401) }
            let body = #"{"challenge": "pw", "expires_in": 600, "variables": {"UserPrincipalName": "jane.doe@contoso.com", "GivenName": "Jane", "SurName": "Doe"}}"#
            return .ok(Array(body.utf8), contentType: "application/json")
        }
    }

    func testTheSeedIntuneProfileEnrollsWithATPMKeyAndTheEndpointsVariables() throws {
        let tpm = try PeerRequirement.startOrSkip { try SwtpmProcess.start() }
        defer { tpm.stop() }
        let server = try TestSCEPServer(ca: try TestPKI.ca(), configuration: .init(challenge: "pw"))
        defer { server.stop() }
        let token = "tok-" + SCEPServerProcess.randomChallenge()
        let endpoint = try startEndpoint(token: token)
        defer { endpoint.stop() }
        let tokenPath = workspace.appending("token")
        try AgentTestFiles.writeSecret(token + "\n", to: tokenPath)
        let config = seedProfile(scepURL: server.url, pinPath: try writePin(server), tcti: tpm.tcti, challenge: [
            "source = \"endpoint\"", "url = \"\(endpoint.urlString)/v1/scep/challenge\"", "token_file = \"\(tokenPath)\"",
        ], variables: [])

        let check = try AgentProcess.run(arguments: ["check-config"], config: config)
        XCTAssertEqual(check.exitCode, 0, check.transcript)
        let run = try AgentProcess.run(arguments: ["enroll"], config: config)
        XCTAssertEqual(run.exitCode, 0, run.transcript)
        run.assertDoesNotLeak(token, "the bearer token")

        // The request asked for exactly the profile's contents.
        let csr = try XCTUnwrap(server.pkiOperations.first?.csr)
        XCTAssertEqual(csr.subject, DistinguishedName([   // encoded last RDN of the string first
            RelativeDistinguishedName(.init(type: [2, 5, 4, 4], utf8String: "Doe")),          // SN: surname
            RelativeDistinguishedName(.init(type: [2, 5, 4, 42], utf8String: "Jane")),        // G: givenName
            RelativeDistinguishedName(.init(type: [2, 5, 4, 3], utf8String: "jane.doe@contoso.com")),
        ]))
        let requested = try XCTUnwrap(csr.attributes.extensionRequest?.extensions)
        XCTAssertEqual(try requested.keyUsage, KeyUsage(digitalSignature: true))
        XCTAssertEqual(try requested.extendedKeyUsage.map { Array($0) }, [.clientAuth])

        try assertIssuedCertificateIsTheSeedsOne()
        XCTAssertTrue(try String(contentsOfFile: workspace.appending("state/device/live/key.pem"), encoding: .utf8)
            .hasPrefix("-----BEGIN TSS2 PRIVATE KEY-----"), "a TPM is present: the key must be born in it")
        XCTAssertFalse(run.standardError.contains("changed the key usage"), "the CA granted what was asked:\n\(run.transcript)")

        let status = try AgentProcess.run(arguments: ["status", "--json"], config: config)
        let profile = try Self.onlyProfile(status)
        XCTAssertEqual(profile["keyStorage"] as? String, "tpm", status.transcript)
        try assertRenewsWhenTwentyPercentRemain(profile)
    }

    func testTheSeedIntuneProfileFallsBackToASoftwareKeyWithoutATPMWithConfiguredVariables() throws {
        let server = try TestSCEPServer(ca: try TestPKI.ca())
        defer { server.stop() }
        let command = workspace.appending("challenge.sh")
        try "#!/bin/sh\necho pw\n".write(toFile: command, atomically: true, encoding: .utf8)
        chmod(command, 0o755)
        let config = seedProfile(scepURL: server.url, pinPath: try writePin(server),
                                 tcti: "device:\(workspace.appending("no-tpm-here"))",
                                 challenge: ["source = \"command\"", "command = [\"\(command)\"]"],
                                 variables: ["UserPrincipalName = \"jane.doe@contoso.com\"", "GivenName = \"Jane\"", "SurName = \"Doe\""])
        let run = try AgentProcess.run(arguments: ["enroll"], config: config)
        XCTAssertEqual(run.exitCode, 0, run.transcript)
        XCTAssertTrue(run.standardError.contains("using a SOFTWARE key because key_storage = \"tpm-preferred\""), run.transcript)
        try assertIssuedCertificateIsTheSeedsOne()
        let status = try AgentProcess.run(arguments: ["status", "--json"], config: config)
        let profile = try Self.onlyProfile(status)
        XCTAssertEqual(profile["keyStorage"] as? String, "software", status.transcript)
        try assertRenewsWhenTwentyPercentRemain(profile)
    }

    /// An unknown variable (without an endpoint that might define it) lists the built-ins.
    func testCheckConfigListsTheBuiltInsForAnUnknownVariable() throws {
        let server = try TestSCEPServer(ca: try TestPKI.ca())
        defer { server.stop() }
        var config = try workspace.config(for: server)
        config = config.replacingOccurrences(of: "subject = \"CN=host01.example.com\"",
                                             with: "subject = \"CN={{FullyQualifiedDomainName}},OU={{Nope}}\"")
        let check = try AgentProcess.run(arguments: ["check-config"], config: config)
        XCTAssertEqual(check.exitCode, 78, check.transcript)
        XCTAssertTrue(check.standardOutput.contains("unknown template variable {{Nope}}; define it in [profile.variables] "
                                                    + "(built-in: Hostname, FullyQualifiedDomainName, DeviceName"), check.transcript)
    }

    /// `renew_before` and `renewal_threshold_percent` together: check-config says which one wins.
    func testCheckConfigReportsRenewBeforeWithAThresholdAsAConflict() throws {
        let server = try TestSCEPServer(ca: try TestPKI.ca())
        defer { server.stop() }
        let config = try workspace.config(for: server, extra: ["renew_before = \"5d\"", "renewal_threshold_percent = 20"])
        let check = try AgentProcess.run(arguments: ["check-config"], config: config)
        XCTAssertEqual(check.exitCode, 78, check.transcript)
        XCTAssertTrue(check.standardOutput.contains(
            "renewal_threshold_percent: renewal_threshold_percent (20) and renew_before (5d) both say when to renew; "
            + "renew_before wins"), check.transcript)
    }

    // MARK: - Helpers

    /// openssl's view of live/cert.pem: the seed's subject, Digital Signature only, clientAuth,
    /// RSA 2048 signed with SHA-256, chaining to the pin.
    private func assertIssuedCertificateIsTheSeedsOne(file: StaticString = #filePath, line: UInt = #line) throws {
        let certificate = workspace.appending("state/device/live/cert.pem")
        let text = try openssl(["x509", "-in", certificate, "-noout", "-text", "-nameopt", "RFC2253"])
        XCTAssertTrue(text.contains("Subject: CN=jane.doe@contoso.com,GN=Jane,SN=Doe"), text, file: file, line: line)
        XCTAssertTrue(text.contains("Public-Key: (2048 bit)"), text, file: file, line: line)
        XCTAssertTrue(text.contains("Signature Algorithm: sha256WithRSAEncryption"), text, file: file, line: line)
        let keyUsage = try openssl(["x509", "-in", certificate, "-noout", "-ext", "keyUsage,extendedKeyUsage"])
        XCTAssertEqual(Self.extensionValues(keyUsage), ["Digital Signature", "TLS Web Client Authentication"], keyUsage,
                       file: file, line: line)
        let verify = try openssl(["verify", "-CAfile", workspace.appending("ca.pem"), certificate])
        XCTAssertTrue(verify.contains(": OK"), verify, file: file, line: line)
    }

    /// 30-day certificates from the test CA: renewal at 80% of the lifetime (24 days), moved
    /// earlier by at most the default jitter (6 hours).
    private func assertRenewsWhenTwentyPercentRemain(_ profile: [String: Any], file: StaticString = #filePath, line: UInt = #line) throws {
        let certificate = try XCTUnwrap(profile["certificate"] as? [String: Any], file: file, line: line)
        let format = ISO8601DateFormatter()
        let notBefore = try XCTUnwrap((certificate["notBefore"] as? String).flatMap(format.date(from:)), file: file, line: line)
        let notAfter = try XCTUnwrap((certificate["notAfter"] as? String).flatMap(format.date(from:)), file: file, line: line)
        let next = try XCTUnwrap((profile["nextRenewal"] as? String).flatMap(format.date(from:)), "\(profile)", file: file, line: line)
        let nominal = notAfter.addingTimeInterval(-notAfter.timeIntervalSince(notBefore) * 0.2)
        XCTAssertLessThanOrEqual(next, nominal.addingTimeInterval(1), file: file, line: line)
        XCTAssertGreaterThanOrEqual(next, nominal.addingTimeInterval(-6 * 3600 - 1), file: file, line: line)
    }

    private func openssl(_ arguments: [String]) throws -> String {
        let result = try ChildProcess.run(executable: "/usr/bin/openssl", arguments: arguments, timeout: 30)
        guard result.status.isSuccess else {
            throw TestSupportError(.processFailed, "openssl \(arguments.joined(separator: " ")): \(result.output)\(result.errorOutput)")
        }
        return result.output
    }

    /// The value lines of `openssl x509 -ext` output (the indented ones), split at commas.
    static func extensionValues(_ output: String) -> [String] {
        output.split(separator: "\n").filter { $0.hasPrefix(" ") }
            .flatMap { $0.split(separator: ",") }
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && $0 != "critical" }
    }

    static func onlyProfile(_ status: AgentRun) throws -> [String: Any] {
        let profiles = try status.jsonObject()["profiles"] as? [[String: Any]] ?? []
        guard profiles.count == 1, let profile = profiles.first else {
            throw AgentProcessError("expected one profile in status --json:\n\(status.transcript)")
        }
        return profile
    }
}

/// `key_usage` exactly as asked, against the real micromdm scepserver: the request carries
/// only digitalSignature, the exchange still works (the reply is encrypted to the request's
/// signer certificate, which the agent always makes usable for key transport), and the issued
/// certificate says Digital Signature and nothing else.
final class KeyUsageIntegrationTests: XCTestCase {
    private var server: SCEPServerProcess!
    private var workspace: TemporaryDirectory!

    override func setUpWithError() throws {
        do { server = try SCEPServerProcess.start() } catch let missing as PeerUnavailable where missing.maySkip {
            throw XCTSkip(missing.description)
        }
        workspace = try TemporaryDirectory(prefix: "key-usage")
    }

    override func tearDown() {
        _ = server?.stop()
        workspace?.remove()
    }

    private func config(keyStorage: String, tcti: String = ProfileConfig.defaultTCTI) throws -> String {
        let challengePath = workspace.appending("challenge")
        try AgentTestFiles.writeSecret(server.challenge, to: challengePath)
        return """
        state_dir = "\(workspace.appending("state"))"
        [[profile]]
        name = "device"
        scep_url = "\(server.urlString)"
        ca_pin_file = "\(server.caCertificatePath)"
        subject = "CN={{UserPrincipalName}},G={{GivenName}},SN={{SurName}}"
        key_storage = "\(keyStorage)"
        tcti = "\(tcti)"
        key_usage = ["digitalSignature"]
        [profile.challenge]
        source = "file"
        file = "\(challengePath)"
        [profile.variables]
        UserPrincipalName = "jane.doe@contoso.com"
        GivenName = "Jane"
        SurName = "Doe"
        """
    }

    private func assertDigitalSignatureOnly(_ run: AgentRun) throws {
        XCTAssertEqual(run.exitCode, 0, run.transcript)
        let certificate = workspace.appending("state/device/live/cert.pem")
        let result = try ChildProcess.run(executable: "/usr/bin/openssl", arguments: [
            "x509", "-in", certificate, "-noout", "-ext", "keyUsage", "-subject", "-nameopt", "RFC2253"], timeout: 30)
        XCTAssertTrue(result.status.isSuccess, result.errorOutput)
        // scepserver copies only the CN of the request's subject into the certificate.
        XCTAssertTrue(result.output.contains("subject=CN=jane.doe@contoso.com"), result.output)
        let values = IntuneProfileTests.extensionValues(result.output.components(separatedBy: "subject=")[0])
        XCTAssertEqual(values, ["Digital Signature"], result.output)
        // What was asked is what was granted: no "the CA changed the key usage" warning.
        XCTAssertFalse(run.standardError.contains("changed the key usage"), run.transcript)
    }

    func testASoftwareKeyWithDigitalSignatureOnly() throws {
        let run = try AgentProcess.run(arguments: ["enroll"], config: try config(keyStorage: "software"))
        try assertDigitalSignatureOnly(run)
    }

    /// A TPM key keeps its decrypt attribute whatever key_usage says: scepserver's reply is
    /// encrypted to it (DES-CBC), and a sign-only TPM key could not open it.
    func testATPMKeyWithDigitalSignatureOnlyStillDecryptsTheReply() throws {
        let tpm = try PeerRequirement.startOrSkip { try SwtpmProcess.start() }
        defer { tpm.stop() }
        let run = try AgentProcess.run(arguments: ["enroll"], config: try config(keyStorage: "tpm", tcti: tpm.tcti))
        try assertDigitalSignatureOnly(run)
    }
}

extension PeerRequirement {
    /// Starts a peer, turning a missing one into XCTSkip outside CI (under `CI=true` the
    /// `PeerUnavailable` propagates and fails the test).
    static func startOrSkip<T>(_ start: () throws -> T) throws -> T {
        do { return try start() } catch let missing as PeerUnavailable where missing.maySkip {
            throw XCTSkip(missing.description)
        }
    }
}
