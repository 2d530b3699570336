import Foundation
import Glibc
import TestSupport
import XCTest

/// An administrator's root `enroll-agent` on a store that belongs to the service user:
/// `status` and `check-config` read it without changing a thing; `enroll` and `renew`
/// refuse before touching it, saying how to run instead.
final class ForeignStoreStatusTests: XCTestCase {
    private var fixture: AgentStoreFixture!
    /// nobody on Debian; any uid other than 0 does.
    private let serviceUID: uid_t = 65534

    override func setUpWithError() throws {
        guard geteuid() == 0 else {
            if PeerRequirement.isCI { throw AgentProcessError("root's behaviour on another user's store needs root, and CI=true requires this test to run") }
            throw XCTSkip("root's behaviour on another user's store needs root; skipped outside CI")
        }
        fixture = try AgentStoreFixture()
        let enroll = try fixture.run(["enroll"])
        // A precondition that failed is a failure, never a skip.
        guard enroll.exitCode == 0 else { throw AgentProcessError("the first enrollment failed:\n\(enroll.transcript)") }
        // A leftover a cleanup would remove, so that any cleanup shows.
        try FileManager.default.createDirectory(atPath: fixture.profilePath("generations/.staging-0123456789abcdef"),
                                                withIntermediateDirectories: false)
        let chown = try ChildProcess.run(executable: "/bin/chown",
                                         arguments: ["-hR", "\(serviceUID):\(serviceUID)", fixture.profileDirectory])
        XCTAssertEqual(chown.status, .exited(0))
    }

    override func tearDown() {
        fixture = nil
    }

    func testStatusAndCheckConfigReadAStoreOwnedByAnotherUserAndChangeNothing() throws {
        let before = TreeSnapshot(fixture.stateDirectory)
        let status = try fixture.run(["status", "--json"])
        XCTAssertEqual(status.exitCode, 0, status.transcript)
        let profile = (try status.jsonObject()["profiles"] as? [[String: Any]])?.first
        XCTAssertEqual(profile?["state"] as? String, "valid", status.transcript)
        XCTAssertNotNil(profile?["certificate"], status.transcript)

        let text = try fixture.run(["status"])
        XCTAssertEqual(text.exitCode, 0, text.transcript)
        XCTAssertTrue(text.standardOutput.contains(": valid"), text.transcript)

        let check = try fixture.run(["check-config"])
        XCTAssertFalse(check.standardError.contains("refusing"), check.transcript)
        XCTAssertEqual(TreeSnapshot(fixture.stateDirectory), before, "a read-only command changed the store")
    }

    func testEnrollAndRenewAsRootRefuseAStoreOwnedByAnotherUser() throws {
        let before = TreeSnapshot(fixture.stateDirectory)
        let issued = fixture.server.issuedCertificatePaths().count
        for arguments in [["enroll", "--force"], ["renew", "--force"]] {
            let run = try fixture.run(arguments)
            XCTAssertEqual(run.exitCode, 73, run.transcript)
            XCTAssertTrue(run.standardError.contains("refusing to modify \(fixture.profileDirectory) as root"), run.transcript)
            XCTAssertTrue(run.standardError.contains("(uid \(serviceUID))"), run.transcript)
            XCTAssertTrue(run.standardError.contains("sudo -u "), run.transcript)
        }
        XCTAssertEqual(fixture.server.issuedCertificatePaths().count, issued, "a refused run still enrolled")
        XCTAssertEqual(TreeSnapshot(fixture.stateDirectory), before, "a refused run changed the store")
    }
}
