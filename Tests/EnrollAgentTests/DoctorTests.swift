import CertStore
import Foundation
import TestSupport
import X509
import XCTest

@testable import SCEPClient
@testable import SCEPTestSupport

/// `enroll-agent doctor`: the Entra CBA pre-flight of the live certificate's CRL, through
/// the real binary against our test server. Each finding names its rule; the run changes
/// nothing in the store.
final class DoctorTests: XCTestCase {
    private var workspace: TestServerWorkspace!

    override func setUpWithError() throws {
        workspace = try TestServerWorkspace(prefix: "doctor")
    }

    override func tearDown() { workspace = nil }

    /// Enrolls against `server`, runs `doctor`, and checks that the store is byte for byte
    /// what it was (no state written, nothing cached).
    private func doctor(_ server: TestSCEPServer) throws -> AgentRun {
        let config = try workspace.config(for: server)
        let enroll = try AgentProcess.run(arguments: ["enroll"], config: config)
        XCTAssertEqual(enroll.exitCode, 0, enroll.transcript)
        let store = ProfileStore(readingFrom: workspace.profileDirectory)
        let stateBefore = try Data(contentsOf: URL(fileURLWithPath: store.statePath))
        let run = try AgentProcess.run(arguments: ["doctor"], config: config, timeout: 60)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: store.statePath)), stateBefore, "doctor wrote the state")
        XCTAssertNil(try store.loadCRL(), "doctor cached a CRL")
        return run
    }

    private func line(_ run: AgentRun, _ rule: String) -> String? {
        run.standardOutput.split(separator: "\n").map(String.init).first { $0.contains("] \(rule):") }
    }

    func testEveryRulePassesForTheTestCA() throws {
        let server = try TestSCEPServer(ca: try TestPKI.ca(), configuration: .init(crlDistributionPoint: .served))
        defer { server.stop() }
        let run = try doctor(server)
        print(run.standardOutput)
        XCTAssertEqual(run.exitCode, 0, run.transcript)
        for rule in [EntraCBARuleText.distributionPoint, EntraCBARuleText.http, EntraCBARuleText.reachable, EntraCBARuleText.size,
                     EntraCBARuleText.downloadTime, EntraCBARuleText.signature, EntraCBARuleText.current, EntraCBARuleText.notRevoked] {
            XCTAssertTrue(line(run, rule)?.hasPrefix("  [ok]") ?? false, "\(rule)\n\(run.transcript)")
        }
        XCTAssertTrue(line(run, EntraCBARuleText.http)?.contains(server.crlURL) ?? false, run.transcript)
        XCTAssertEqual(server.crl.fetchCount, 1)
    }

    /// Scenario table: what the CA does wrong → the rule that fails.
    func testEachFindingNamesTheRuleItBreaks() throws {
        let ca = try TestPKI.ca()
        let delayedCRL = TestHTTPResponse.ok(try TestCRLPublisher.crl(issuer: ca.subject, signer: ca.key, revoked: [], now: Date())).delayed(by: 11)
        let cases: [(String, TestSCEPServer.CRLDistributionPoint?, TestCRLPublisher.Answer?, Bool, String, String)] = [
            ("no distribution point", nil, nil, false, EntraCBARuleText.distributionPoint, "no CRL distribution point"),
            ("LDAP only", .urls(["ldap://ldap.example.com/cn=CA?certificateRevocationList"]), nil, false, EntraCBARuleText.http, "LDAP"),
            ("HTTPS only", .urls(["https://127.0.0.1:1/crl"]), nil, false, EntraCBARuleText.http, "HTTPS"),
            ("unreachable", .urls(["http://127.0.0.1:1/crl"]), nil, false, EntraCBARuleText.reachable, "127.0.0.1:1"),
            ("HTTP 403", .served, .http(.status(403)), false, EntraCBARuleText.reachable, "HTTP 403"),
            ("too large", .served, .oversized(RevocationChecker.maximumCRLBytes + 1), false, EntraCBARuleText.size, "larger than 20971520 bytes"),
            ("too slow", .served, .http(delayedCRL), false, EntraCBARuleText.downloadTime, "not downloaded within 10.00 s"),
            ("signed by another CA", .served, .signedByRogueCA, false, EntraCBARuleText.signature, "signature does not verify"),
            ("not a CRL", .served, .truncated, false, EntraCBARuleText.signature, "not a DER CRL"),
            ("out of date", .served, .outOfDate, false, EntraCBARuleText.current, "out of date"),
            ("revoked", .served, nil, true, EntraCBARuleText.notRevoked, "reason keyCompromise"),
        ]
        for (name, point, answer, revoke, rule, fragment) in cases {
            workspace = try TestServerWorkspace(prefix: "doctor")
            let server = try TestSCEPServer(ca: ca, configuration: .init(crlDistributionPoint: point))
            defer { server.stop() }
            if let answer { server.crl.answer = answer }
            let config = try workspace.config(for: server)
            XCTAssertEqual(try AgentProcess.run(arguments: ["enroll"], config: config).exitCode, 0, name)
            if revoke {
                let store = ProfileStore(readingFrom: workspace.profileDirectory)
                let pem = try store.readBundle(of: XCTUnwrap(try store.liveGeneration())).certificatePEM
                server.crl.revoke(try Certificate(pemEncoded: pem).serialNumber, reason: .keyCompromise)
            }
            let run = try AgentProcess.run(arguments: ["doctor"], config: config, timeout: 60)
            XCTAssertEqual(run.exitCode, 1, "\(name)\n\(run.transcript)")
            let found = line(run, rule)
            XCTAssertTrue(found?.hasPrefix("  [FAIL]") ?? false, "\(name): \(rule)\n\(run.transcript)")
            XCTAssertTrue(found?.contains(fragment) ?? false, "\(name): \(fragment)\n\(run.transcript)")
            XCTAssertEqual(run.standardOutput.components(separatedBy: "[FAIL]").count - 1, 1, "\(name): one rule fails\n\(run.transcript)")
        }
    }
}

/// The rule names as the user reads them (kept here, not taken from the code, so that a
/// rename shows up as a test failure).
enum EntraCBARuleText {
    static let distributionPoint = "Entra CBA: the certificate must name a CRL distribution point"
    static let http = "Entra CBA: the CRL distribution point must be an HTTP URL"
    static let reachable = "Entra CBA: the CRL must be reachable"
    static let size = "Entra CBA: the CRL must be at most 20 MB"
    static let downloadTime = "Entra CBA: the CRL must be downloadable within 10 seconds"
    static let signature = "Entra CBA: the CRL must be signed by the issuing CA (verified against the pin)"
    static let current = "the CRL must be current (thisUpdate ≤ now ≤ nextUpdate)"
    static let notRevoked = "the live certificate must not be revoked"
}
