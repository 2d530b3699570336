import Foundation
import Glibc
import Logging
import SCEPClient
import TestSupport
import X509
import XCTest

@testable import EnrollAgent
@testable import SCEPTestSupport

/// NTLM through libcurl against a real NTLM acceptor (`NTLMChallengePeer`, pyspnego).
final class NTLMChallengeTests: XCTestCase {
    private var workspace: TemporaryDirectory!
    private var passwordPath: String { workspace.appending("ndes-password") }

    override func setUpWithError() throws {
        workspace = try TemporaryDirectory(prefix: "challenge-ntlm")
        try "\(NTLMChallengePeer.password)\n".write(toFile: passwordPath, atomically: true, encoding: .utf8)
    }

    override func tearDown() { workspace?.remove() }

    private func provider(_ peer: NTLMChallengePeer, username: String = NTLMChallengePeer.username) -> EndpointChallengeProvider {
        EndpointChallengeProvider(url: peer.url, auth: .ntlm(username: username, passwordFile: passwordPath), format: .ndesAdmin,
                                  transport: CurlTransport(), sleeper: RecordingSleeper(), logger: Logger(label: "ntlm-test"))
    }

    func testNTLMHandshakeWithARealAcceptorGetsThePassword() async throws {
        let peer = try NTLMChallengePeer(challenge: "7E1D0C9B8A6F5E43")
        let issued = try await provider(peer).fetchChallenge()
        XCTAssertEqual(issued?.secret.value, "7E1D0C9B8A6F5E43", peer.errors)
        // One negotiation (type 1), answered by the acceptor's type 2, then a type 3 it verified.
        XCTAssertEqual(peer.events.count, 2, "\(peer.events) \(peer.errors)")
        XCTAssertTrue(peer.events.first?.hasPrefix("NEGOTIATE ") == true, "\(peer.events)")
        XCTAssertEqual(peer.events.last, "AUTHENTICATED \(NTLMChallengePeer.username)", peer.errors)
    }

    func testAWrongPasswordIsRefusedByTheAcceptorAndIsFinal() async throws {
        let peer = try NTLMChallengePeer(challenge: "7E1D0C9B8A6F5E43")
        try "not-the-password\n".write(toFile: passwordPath, atomically: true, encoding: .utf8)
        let error = await expectAgentError { try await self.provider(peer).fetchChallenge() }
        let message = try XCTUnwrap(error?.message)
        XCTAssertEqual(error?.exitCode, 76)
        XCTAssertTrue(message.contains("refused the NTLM credentials of \(NTLMChallengePeer.username) (HTTP 401)"), message)
        XCTAssertFalse(message.contains("not-the-password"))
        XCTAssertFalse(message.contains("7E1D0C9B8A6F5E43"))
        XCTAssertTrue(peer.events.contains { $0.hasPrefix("REFUSED") }, "\(peer.events)")
        XCTAssertFalse(peer.events.contains { $0.hasPrefix("AUTHENTICATED") }, "\(peer.events)")
    }

    func testAnUnknownAccountIsRefused() async throws {
        let peer = try NTLMChallengePeer(challenge: "7E1D0C9B8A6F5E43")
        let error = await expectAgentError { try await self.provider(peer, username: "EXAMPLE\\someone-else").fetchChallenge() }
        XCTAssertTrue(error?.message.contains("refused the NTLM credentials of EXAMPLE\\someone-else") == true, error?.message ?? "")
    }
}

/// The real binary enrolls against the in-repo SCEP test server with a challenge it fetched
/// from an NDES-style page: the SCEP server must receive exactly the password the page issued.
final class ChallengeSourceEndToEndTests: XCTestCase {
    private var workspace: TemporaryDirectory!

    override func setUpWithError() throws { workspace = try TemporaryDirectory(prefix: "challenge-e2e") }
    override func tearDown() { workspace?.remove() }

    private func config(scep: TestSCEPServer, challenge: [String]) throws -> String {
        let pin = workspace.appending("ca.pem")
        try (try scep.ca.certificate.serializeAsPEM().pemString + "\n").write(toFile: pin, atomically: true, encoding: .utf8)
        return ([
            "state_dir = \"\(workspace.appending("state"))\"", "", "[[profile]]", "name = \"device\"",
            "scep_url = \"\(scep.url)\"", "ca_pin_file = \"\(pin)\"",
            "subject = \"CN=host01.example.com\"", "key_storage = \"software\"", "", "[profile.challenge]",
        ] + challenge).joined(separator: "\n") + "\n"
    }

    /// A 0600 file holding `secret`.
    private func secretFile(_ name: String, _ secret: String) throws -> String {
        let path = workspace.appending(name)
        try "\(secret)\n".write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o600)
        return path
    }

    func testEnrollsWithAChallengeFromAnNDESPageOverBasic() throws {
        let ndes = try NDESAdminPageServer(.init(encoding: .utf16LEWithBOM))
        defer { ndes.stop() }
        let scep = try TestSCEPServer(ca: try TestPKI.ca())
        defer { scep.stop() }
        let password = NDESAdminPageServer.Behaviour().password
        let text = try config(scep: scep, challenge: [
            "source = \"endpoint\"", "url = \"\(ndes.url)\"", "auth = \"basic\"",
            "username = \"\(NDESAdminPageServer.Behaviour().username)\"",
            "password_file = \"\(try secretFile("ndes-password", password))\"", "format = \"ndes-admin\"",
        ])

        let check = try AgentProcess.run(arguments: ["check-config"], config: text)
        XCTAssertEqual(check.exitCode, 0, check.transcript)

        let run = try AgentProcess.run(arguments: ["enroll"], config: text)
        XCTAssertEqual(run.exitCode, 0, run.transcript)
        let issued = ndes.issuedChallenges
        XCTAssertEqual(issued.count, 1, "one password fetched for one PKCSReq")
        let operation = try XCTUnwrap(scep.pkiOperations.first, run.transcript)
        XCTAssertEqual(operation.messageType, .pkcsReq)
        XCTAssertEqual(operation.challenge, issued.first, "the SCEP server received the page's password")
        run.assertDoesNotLeak(try XCTUnwrap(issued.first))
        run.assertDoesNotLeak(password, "the NDES account's password")
        check.assertDoesNotLeak(password, "the NDES account's password")
        XCTAssertTrue(FileManager.default.fileExists(atPath: workspace.appending("state/device/live/cert.pem")))
    }

    func testEnrollsWithAChallengeFromARealNTLMPeer() throws {
        let challenge = "C0FFEE0123456789"
        let peer = try NTLMChallengePeer(challenge: challenge)
        let scep = try TestSCEPServer(ca: try TestPKI.ca(), configuration: .init(challenge: challenge))
        defer { scep.stop() }
        let text = try config(scep: scep, challenge: [
            "source = \"endpoint\"", "url = \"\(peer.url)\"", "auth = \"ntlm\"",
            "username = '\(NTLMChallengePeer.username)'",
            "password_file = \"\(try secretFile("ndes-password", NTLMChallengePeer.password))\"", "format = \"ndes-admin\"",
        ])
        let run = try AgentProcess.run(arguments: ["enroll"], config: text)
        XCTAssertEqual(run.exitCode, 0, run.transcript + peer.errors)
        XCTAssertEqual(scep.pkiOperations.first?.challenge, challenge)
        XCTAssertEqual(peer.events.last, "AUTHENTICATED \(NTLMChallengePeer.username)")
        run.assertDoesNotLeak(challenge)
        run.assertDoesNotLeak(NTLMChallengePeer.password, "the NDES account's password")
    }

    func testAFullPasswordCacheStopsTheRunWithTheNDESCondition() throws {
        let ndes = try NDESAdminPageServer(.init(page: .cacheFull))
        defer { ndes.stop() }
        let scep = try TestSCEPServer(ca: try TestPKI.ca())
        defer { scep.stop() }
        let password = NDESAdminPageServer.Behaviour().password
        let text = try config(scep: scep, challenge: [
            "source = \"endpoint\"", "url = \"\(ndes.url)\"", "auth = \"basic\"", "username = \"scep-client\"",
            "password_file = \"\(try secretFile("ndes-password", password))\"", "format = \"ndes-admin\"",
        ])
        let run = try AgentProcess.run(arguments: ["enroll"], config: text)
        XCTAssertEqual(run.exitCode, 76, run.transcript)
        XCTAssertTrue(run.standardError.contains("says \"The password cache is full\""), run.transcript)
        XCTAssertEqual(scep.pkiOperations.count, 0)
        run.assertDoesNotLeak(password, "the NDES account's password")
    }
}
