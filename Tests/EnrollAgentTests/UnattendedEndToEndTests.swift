import Foundation
import TestSupport
import XCTest

/// The unattended paths through the real binary: a challenge from the
/// management endpoint, and `renew` with the clock moved by faketime.
final class UnattendedEndToEndTests: XCTestCase {
    private var server: SCEPServerProcess!
    private var workspace: TemporaryDirectory!
    private let token = "tok-" + SCEPServerProcess.randomChallenge()

    override func setUpWithError() throws {
        do { server = try SCEPServerProcess.start() } catch let missing as PeerUnavailable where missing.maySkip {
            throw XCTSkip(missing.description)
        }
        workspace = try TemporaryDirectory(prefix: "unattended")
    }

    override func tearDown() {
        _ = server?.stop()
        workspace?.remove()
    }

    /// A management endpoint that hands out the scepserver's challenge to the right bearer token.
    private func startEndpoint() throws -> TestHTTPServer {
        let (token, challenge) = (self.token, server.challenge)
        return try TestHTTPServer { request in
            guard request.headers["Authorization"] == "Bearer \(token)" else { return .status(401) }
            let body = #"{"challenge": "\#(challenge)", "expires_in": 600, "variables": {"UserPrincipalName": "ep-host@example.com"}}"#
            return .ok(Array(body.utf8), contentType: "application/json")
        }
    }

    private func endpointConfig(endpoint: TestHTTPServer, tokenFileContents: String) throws -> String {
        let tokenPath = workspace.appending("token")
        try AgentTestFiles.writeSecret(tokenFileContents + "\n", to: tokenPath)
        return """
        state_dir = "\(workspace.appending("state"))"
        [[profile]]
        name = "device"
        scep_url = "\(server.urlString)"
        ca_pin_file = "\(server.caCertificatePath)"
        subject = "CN={{UserPrincipalName}},O=Example"
        san_upn = ["{{UserPrincipalName}}"]
        key_storage = "software"
        [profile.challenge]
        source = "endpoint"
        url = "\(endpoint.urlString)/v1/scep/challenge"
        token_file = "\(tokenPath)"
        """
    }

    func testEnrollmentWithAChallengeFromTheManagementEndpoint() throws {
        let endpoint = try startEndpoint()
        defer { endpoint.stop() }
        let run = try AgentProcess.run(arguments: ["enroll"], config: try endpointConfig(endpoint: endpoint, tokenFileContents: token))
        XCTAssertEqual(run.exitCode, 0, run.transcript)
        run.assertDoesNotLeak(server.challenge)
        run.assertDoesNotLeak(token, "the bearer token")
        XCTAssertEqual(endpoint.requestCount, 1, "one fresh challenge per PKCSReq")
        // The endpoint's variables filled the subject template.
        let subject = try ChildProcess.run(executable: "/usr/bin/openssl", arguments: [
            "x509", "-in", workspace.appending("state/device/live/cert.pem"), "-noout", "-subject"]).output
        XCTAssertTrue(subject.contains("ep-host@example.com"), subject)
    }

    func testAWrongTokenFailsClearlyAndInstallsNothing() throws {
        let endpoint = try startEndpoint()
        defer { endpoint.stop() }
        let wrong = "wrong-" + token
        let run = try AgentProcess.run(arguments: ["enroll"], config: try endpointConfig(endpoint: endpoint, tokenFileContents: wrong))
        XCTAssertEqual(run.exitCode, 76, run.transcript)
        XCTAssertTrue(run.standardError.contains("refused our token"), run.transcript)
        run.assertDoesNotLeak(wrong, "the bearer token")
        XCTAssertFalse(FileManager.default.fileExists(atPath: workspace.appending("state/device/live")))
        XCTAssertEqual(server.issuedCertificatePaths().count, 0)
    }

    func testRenewIsANoOpUntilDueAndRenewsWithRenewalReqOnceFaketimeMovesPastIt() throws {
        let faketime = try PeerRequirementOrSkip.require("faketime")
        let challengePath = workspace.appending("challenge")
        try AgentTestFiles.writeSecret(server.challenge, to: challengePath)
        let config = AgentTestProfile(scepURL: server.urlString, caPinFile: server.caCertificatePath, challengeFile: challengePath)
            .configText(stateDirectory: workspace.appending("state"))
        let configPath = workspace.appending("config.toml")
        try AgentTestFiles.writeSecret(config, to: configPath)
        let agent = try AgentProcess.locateBinary()

        XCTAssertEqual(try AgentProcess.run(arguments: ["enroll", "--config", configPath]).exitCode, 0)
        let firstGeneration = try FileManager.default.destinationOfSymbolicLink(atPath: workspace.appending("state/device/live"))

        // Not due: exits 0 without the network (the server is down to prove it).
        _ = server.stop()
        let idle = try AgentProcess.run(arguments: ["renew", "--config", configPath])
        XCTAssertEqual(idle.exitCode, 0, idle.transcript)
        XCTAssertTrue(idle.standardError.contains("not due"), idle.transcript)

        // 300 days later (a 365-day certificate renews at two thirds): RenewalReq, since scepserver offers Renewal.
        try server.restart()
        let later = try ChildProcess.run(executable: faketime, arguments: ["-f", "+300d", agent, "renew", "--config", configPath], timeout: 120)
        XCTAssertTrue(later.status.isSuccess, later.output + later.errorOutput)
        XCTAssertTrue(later.errorOutput.contains("via=RenewalReq"), later.errorOutput)
        let live = try FileManager.default.destinationOfSymbolicLink(atPath: workspace.appending("state/device/live"))
        let previous = try FileManager.default.destinationOfSymbolicLink(atPath: workspace.appending("state/device/previous"))
        XCTAssertNotEqual(live, firstGeneration)
        XCTAssertEqual(previous, firstGeneration, "the previous generation is kept for rollback")
        XCTAssertFalse(later.errorOutput.contains(server.challenge))
    }
}

/// Finds a tool the test needs: skip locally when missing, fail under CI=true.
enum PeerRequirementOrSkip {
    static func require(_ binary: String) throws -> String {
        do { return try PeerRequirement.require(binary: binary) } catch let missing as PeerUnavailable where missing.maySkip {
            throw XCTSkip(missing.description)
        }
    }
}
