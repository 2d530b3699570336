import Foundation
import Glibc
import TestSupport
import XCTest

@testable import SCEPTestSupport

/// `certificate-user-ids`, `status --json` and the post_install hook, run as the real
/// binary on certificates issued by real servers, checked against what openssl says
/// about the issued certificate.
final class CertificateUserIDsIntegrationTests: XCTestCase {
    private var workspace: TestServerWorkspace!

    override func setUpWithError() throws {
        workspace = try TestServerWorkspace(prefix: "entra-ids")
    }

    override func tearDown() {
        workspace = nil
    }

    /// Our test server issues what the request asks for, so the certificate carries the
    /// profile's UPN and e-mail SANs (and no SKI extension: none was asked for).
    func testValuesOfACertificateFromTheTestServerMatchOpenSSL() throws {
        let server = try TestSCEPServer(ca: try TestPKI.ca())
        defer { server.stop() }
        let hook = workspace.appending("hook.sh")
        try "#!/bin/sh\nprintf '%s' \"$ENROLL_AGENT_CERTIFICATE_USER_ID\" > \(workspace.appending("hook-id"))\n"
            .write(toFile: hook, atomically: true, encoding: .utf8)
        chmod(hook, 0o755)
        let config = try workspace.config(for: server, extra: [
            "san_upn = [\"host01@example.com\"]", "san_email = [\"host01-admin@example.com\"]", "post_install = [\"\(hook)\"]",
        ])

        // Before there is a certificate: a clear error and exit 66, for text and JSON alike.
        let before = try AgentProcess.run(arguments: ["certificate-user-ids"], config: config)
        XCTAssertEqual(before.exitCode, 66, before.transcript)
        XCTAssertTrue(before.standardError.contains("profile \"device\": no live certificate in \(workspace.profileDirectory)/live"), before.transcript)
        XCTAssertEqual(before.standardOutput, "", before.transcript)
        let beforeJSON = try AgentProcess.run(arguments: ["certificate-user-ids", "--json"], config: config)
        XCTAssertEqual(beforeJSON.exitCode, 66, beforeJSON.transcript)
        let emptyProfile = try XCTUnwrap((try beforeJSON.jsonObject()["profiles"] as? [[String: Any]])?.first)
        XCTAssertEqual((emptyProfile["certificateUserIds"] as? [Any])?.count, 0)
        XCTAssertNotNil(emptyProfile["error"] as? String)

        let enroll = try AgentProcess.run(arguments: ["enroll"], config: config)
        XCTAssertEqual(enroll.exitCode, 0, enroll.transcript)
        let certificatePath = workspace.appending("state/device/live/cert.pem")

        let run = try AgentProcess.run(arguments: ["certificate-user-ids", "--json"], config: config)
        XCTAssertEqual(run.exitCode, 0, run.transcript)
        let profile = try XCTUnwrap((try run.jsonObject()["profiles"] as? [[String: Any]])?.first, run.transcript)
        let entries = try XCTUnwrap(profile["certificateUserIds"] as? [[String: String]], run.transcript)
        let values = entries.map { $0["value"] ?? "" }

        // What openssl reads from the same file.
        let serial = try Self.openssl(["x509", "-in", certificatePath, "-noout", "-serial"])   // serial=0A1B…
        let serialHex = String(serial.trimmingCharacters(in: .whitespacesAndNewlines).dropFirst("serial=".count)).lowercased()
        let reversedSerial = Self.bytePairs(serialHex).reversed().joined()
        let issuer = Self.mostSignificantFirst(try Self.openssl(["x509", "-in", certificatePath, "-noout", "-issuer", "-nameopt", "RFC2253"]),
                                               label: "issuer=")
        let subject = Self.mostSignificantFirst(try Self.openssl(["x509", "-in", certificatePath, "-noout", "-subject", "-nameopt", "RFC2253"]),
                                                label: "subject=")
        let sans = try Self.openssl(["x509", "-in", certificatePath, "-noout", "-ext", "subjectAltName"])
        XCTAssertTrue(sans.contains("UPN::host01@example.com") && sans.contains("email:host01-admin@example.com"), sans)
        let ski = try Self.openssl(["x509", "-in", certificatePath, "-noout", "-ext", "subjectKeyIdentifier"])
        XCTAssertFalse(ski.contains("Subject Key Identifier"), "the test server adds no SKI: \(ski)")
        let publicKeyHash = try Self.sha1OfRSAPublicKey(certificatePath)

        XCTAssertEqual(issuer, "O=SCEP Test,CN=SCEP Test CA")
        XCTAssertEqual(values, [
            "X509:<PN>host01@example.com",
            "X509:<RFC822>host01-admin@example.com",
            "X509:<I>\(issuer)<SR>\(reversedSerial)",
            "X509:<SHA1-PUKEY>\(publicKeyHash)",
            "X509:<S>\(subject)",
            "X509:<I>\(issuer)<S>\(subject)",
        ], run.transcript)
        XCTAssertEqual(entries.map { $0["affinity"] ?? "" }, ["low", "low", "high", "high", "low", "low"])
        XCTAssertEqual(entries.map { $0["mapping"] ?? "" },
                       ["PrincipalName", "RFC822Name", "IssuerAndSerialNumber", "SHA1PublicKey", "Subject", "IssuerAndSubject"])

        // The Graph request sets exactly these values.
        let graph = try XCTUnwrap(profile["graphRequest"] as? [String: Any], run.transcript)
        XCTAssertEqual(graph["method"] as? String, "PATCH")
        XCTAssertEqual(graph["url"] as? String, "https://graph.microsoft.com/v1.0/users/{user-object-id}")
        let body = try XCTUnwrap(graph["body"] as? [String: Any])
        XCTAssertEqual((body["authorizationInfo"] as? [String: Any])?["certificateUserIds"] as? [String], values)
        XCTAssertEqual(Array(body.keys), ["authorizationInfo"])

        // status --json carries the same list.
        let status = try AgentProcess.run(arguments: ["status", "--json"], config: config)
        XCTAssertEqual(status.exitCode, 0, status.transcript)
        let statusProfile = try XCTUnwrap((try status.jsonObject()["profiles"] as? [[String: Any]])?.first)
        XCTAssertEqual(statusProfile["certificateUserIds"] as? [[String: String]], entries, status.transcript)

        // The hook got the high-affinity IssuerAndSerialNumber value.
        XCTAssertEqual(try String(contentsOfFile: workspace.appending("hook-id"), encoding: .utf8), values[2])

        // The text form: one line per value, affinity and mapping first.
        let text = try AgentProcess.run(arguments: ["certificate-user-ids"], config: config)
        XCTAssertEqual(text.exitCode, 0, text.transcript)
        let lines = text.standardOutput.split(separator: "\n").map(String.init)
        XCTAssertTrue(lines.first?.hasPrefix("profile device: CN=host01.example.com (serial ") ?? false, text.transcript)
        XCTAssertEqual(lines.dropFirst().map { $0.split(separator: " ", omittingEmptySubsequences: true).last.map(String.init) ?? "" },
                       values.map { $0.split(separator: " ").last.map(String.init) ?? "" }, text.transcript)
        XCTAssertTrue(lines.contains("  high  IssuerAndSerialNumber  \(values[2])"), text.transcript)

        // An unknown profile is a usage error, as for every command.
        let unknown = try AgentProcess.run(arguments: ["certificate-user-ids", "--profile", "nosuch"], config: config)
        XCTAssertEqual(unknown.exitCode, 64, unknown.transcript)
    }

    /// micromdm scepserver writes a subject key identifier (and drops the UPN SAN): the SKI
    /// value is that extension, byte for byte as openssl prints it.
    func testSubjectKeyIdentifierOfACertificateFromScepserverMatchesOpenSSL() throws {
        let server = try PeerSkip.unlessCI { try SCEPServerProcess.start() }
        defer { _ = server.stop() }
        let challengePath = workspace.appending("challenge")
        try AgentTestFiles.writeSecret(server.challenge, to: challengePath)
        var profile = AgentTestProfile(scepURL: server.urlString, caPinFile: server.caCertificatePath, challengeFile: challengePath)
        profile.extraLines = ["san_email = [\"host01-admin@example.com\"]"]
        let config = profile.configText(stateDirectory: workspace.appending("state"))
        let enroll = try AgentProcess.run(arguments: ["enroll"], config: config)
        XCTAssertEqual(enroll.exitCode, 0, enroll.transcript)
        let certificatePath = workspace.appending("state/device/live/cert.pem")

        let run = try AgentProcess.run(arguments: ["certificate-user-ids", "--json"], config: config)
        XCTAssertEqual(run.exitCode, 0, run.transcript)
        let entries = try XCTUnwrap(((try run.jsonObject()["profiles"] as? [[String: Any]])?.first?["certificateUserIds"]) as? [[String: String]])
        let byMapping = Dictionary(uniqueKeysWithValues: entries.map { ($0["mapping"] ?? "", $0["value"] ?? "") })

        let skiText = try Self.openssl(["x509", "-in", certificatePath, "-noout", "-ext", "subjectKeyIdentifier"])
        let skiLine = try XCTUnwrap(skiText.split(separator: "\n").last, skiText)   // "    AB:CD:…"
        let ski = skiLine.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: ":", with: "").lowercased()
        XCTAssertEqual(ski.count, 40, skiText)
        XCTAssertEqual(byMapping["SubjectKeyIdentifier"], "X509:<SKI>\(ski)", run.transcript)
        XCTAssertEqual(byMapping["SHA1PublicKey"], "X509:<SHA1-PUKEY>\(try Self.sha1OfRSAPublicKey(certificatePath))")
        let serial = try Self.openssl(["x509", "-in", certificatePath, "-noout", "-serial"])
        let reversed = Self.bytePairs(String(serial.trimmingCharacters(in: .whitespacesAndNewlines).dropFirst("serial=".count)).lowercased())
            .reversed().joined()
        XCTAssertTrue(byMapping["IssuerAndSerialNumber"]?.hasSuffix("<SR>\(reversed)") ?? false, run.transcript)
        // scepserver copies the e-mail SAN but not the UPN otherName: the PN form is left out.
        let sans = try Self.openssl(["x509", "-in", certificatePath, "-noout", "-ext", "subjectAltName"])
        XCTAssertFalse(sans.contains("UPN"), sans)
        XCTAssertTrue(sans.contains("email:host01-admin@example.com"), sans)
        XCTAssertNil(byMapping["PrincipalName"], run.transcript)
        XCTAssertEqual(byMapping["RFC822Name"], "X509:<RFC822>host01-admin@example.com", run.transcript)
        XCTAssertEqual(entries.filter { $0["affinity"] == "high" }.map { $0["mapping"] ?? "" },
                       ["IssuerAndSerialNumber", "SubjectKeyIdentifier", "SHA1PublicKey"])
    }

    // MARK: openssl

    private static func openssl(_ arguments: [String]) throws -> String {
        let result = try ChildProcess.run(executable: "/usr/bin/openssl", arguments: arguments, timeout: 30)
        guard result.status.isSuccess else {
            throw TestSupportError(.processFailed, "openssl \(arguments.joined(separator: " ")): \(result.output)\(result.errorOutput)")
        }
        return result.output
    }

    /// SHA-1 of the RSAPublicKey DER, which is the subjectPublicKey BIT STRING's content.
    private static func sha1OfRSAPublicKey(_ certificatePath: String) throws -> String {
        let script = "openssl x509 -in '\(certificatePath)' -noout -pubkey | openssl rsa -pubin -RSAPublicKey_out -outform DER 2>/dev/null | openssl dgst -sha1 -r"
        let result = try ChildProcess.run(executable: "/bin/sh", arguments: ["-c", script], timeout: 30)
        guard result.status.isSuccess, let hash = result.output.split(separator: " ").first, hash.count == 40 else {
            throw TestSupportError(.processFailed, "\(script): \(result.output)\(result.errorOutput)")
        }
        return String(hash)
    }

    /// openssl's RFC 2253 line (`issuer=CN=a,O=b`) with the RDNs in encoding order (`O=b,CN=a`).
    private static func mostSignificantFirst(_ line: String, label: String) -> String {
        let name = line.trimmingCharacters(in: .whitespacesAndNewlines).dropFirst(label.count)
        return name.split(separator: ",").reversed().joined(separator: ",")
    }

    private static func bytePairs(_ hex: String) -> [String] {
        let padded = hex.count % 2 == 1 ? "0" + hex : hex
        let characters = Array(padded)
        return stride(from: 0, to: characters.count, by: 2).map { String(characters[$0...$0 + 1]) }
    }
}
