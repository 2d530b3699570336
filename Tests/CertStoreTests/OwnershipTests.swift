#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import EnrollmentPlan
import Foundation
import TestSupport
import XCTest
@testable import CertStore

/// Root does not modify a store that belongs to another user (the service user's, say):
/// it refuses before touching anything and says how to run instead. Reading stays allowed.
final class OwnershipTests: XCTestCase {
    private var scratch: ScratchDirectory!
    private var stateDirectory: String { scratch.path + "/state" }
    private var profile: String { stateDirectory + "/device" }
    /// nobody on Debian; any uid other than 0 does.
    private let otherUID: uid_t = 65534

    override func setUpWithError() throws {
        guard geteuid() == 0 else {
            if ProcessInfo.processInfo.environment["CI"] == "true" {
                throw CertStoreError(.fileSystem, path: "/", message: "the refusal applies to root only, and CI=true requires this test to run: run the tests as root")
            }
            throw XCTSkip("the refusal applies to root only; run the tests as root (CI does)")
        }
        scratch = try ScratchDirectory()
    }

    override func tearDown() { scratch?.remove() }

    func testRootRefusesAStoreOwnedByAnotherUserAndChangesNothing() throws {
        let setup = try ProfileStore(directory: profile)
        try setup.install(taggedBundle("1"))
        try setup.install(taggedBundle("2"))
        try setup.saveState(ProfileState(lastError: "theirs"))
        try FileManager.default.createDirectory(atPath: profile + "/generations/.staging-0123456789abcdef", withIntermediateDirectories: false)
        plant("half", at: profile + "/generations/.staging-0123456789abcdef/key.pem")
        try chownTree(profile)
        let before = TreeSnapshot(stateDirectory)

        XCTAssertThrowsError(try ProfileStore(directory: profile)) { error in
            guard let error = error as? CertStoreError else { return XCTFail("\(error)") }
            XCTAssertEqual(error.code, .ownedByAnotherUser)
            XCTAssertEqual(error.path, self.profile)
            let name = userName(of: self.otherUID)
            let message = error.message
            XCTAssertTrue(message.hasPrefix("refusing to modify \(self.profile) as root"), message)
            XCTAssertTrue(message.contains(name.map { "\($0) (uid \(self.otherUID))" } ?? "uid \(self.otherUID)"), message)
            XCTAssertTrue(message.contains("sudo -u \(name ?? "'#\(self.otherUID)'") enroll-agent enroll"), message)
            XCTAssertTrue(message.contains("systemctl start enroll-agent-renew.service"), message)
            XCTAssertTrue(message.contains("chown -R root: \(self.profile)"), message)
        }
        XCTAssertEqual(TreeSnapshot(stateDirectory), before, "the refused open changed the store")

        // Reading is allowed, and changes nothing either.
        let reader = ProfileStore(readingFrom: profile)
        XCTAssertEqual(try reader.readBundle(of: XCTUnwrap(reader.liveGeneration())), taggedBundle("2"))
        XCTAssertEqual(try reader.loadState().lastError, "theirs")
        XCTAssertEqual(TreeSnapshot(stateDirectory), before)
    }

    func testRootRefusesToCreateAStoreInAStateDirectoryOwnedByAnotherUser() throws {
        try FileManager.default.createDirectory(atPath: stateDirectory, withIntermediateDirectories: false)
        try chownTree(stateDirectory)
        let before = TreeSnapshot(stateDirectory)

        XCTAssertThrowsError(try ProfileStore(directory: profile)) { error in
            XCTAssertEqual((error as? CertStoreError)?.code, .ownedByAnotherUser)
            XCTAssertEqual((error as? CertStoreError)?.path, self.stateDirectory)
            XCTAssertTrue("\(error)".contains("chown -R root: \(self.stateDirectory)"), "\(error)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: profile), "created the profile directory anyway")
        XCTAssertEqual(TreeSnapshot(stateDirectory), before)
    }

    func testAForeignFolderInsideARootStoreIsRefusedToo() throws {
        let setup = try ProfileStore(directory: profile)
        try setup.install(taggedBundle("1"))
        try chownTree(profile + "/generations")
        let before = TreeSnapshot(stateDirectory)
        XCTAssertThrowsError(try ProfileStore(directory: profile)) { error in
            XCTAssertEqual((error as? CertStoreError)?.path, self.profile + "/generations")
        }
        XCTAssertEqual(TreeSnapshot(stateDirectory), before)
    }

    func testARootOwnedStoreOpensAsBefore() throws {
        let store = try ProfileStore(directory: profile)
        try store.install(taggedBundle("1"))
        XCTAssertEqual(try ProfileStore(directory: profile).liveGeneration()?.id, "000001")
    }

    /// chown -hR to `otherUID` (symlinks themselves, not their targets).
    private func chownTree(_ path: String) throws {
        let chown = try ChildProcess.run(executable: "/bin/chown", arguments: ["-hR", "\(otherUID):\(otherUID)", path], timeout: 30)
        XCTAssertEqual(chown.status, .exited(0), chown.errorOutput)
        XCTAssertEqual(try POSIXFileSystem().owner(of: path), otherUID)
    }
}
