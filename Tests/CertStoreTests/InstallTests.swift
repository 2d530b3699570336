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

final class InstallTests: XCTestCase {
    private var scratch: ScratchDirectory!
    private var profile: String { scratch.path + "/device" }

    override func setUpWithError() throws { scratch = try ScratchDirectory() }
    override func tearDown() { scratch.remove() }

    func testOpeningCreatesMissingDirectoriesWith0755() throws {
        let nested = scratch.path + "/state/dir/device"
        _ = try ProfileStore(directory: nested + "/")
        XCTAssertEqual(permissions(nested), 0o755)
        XCTAssertEqual(permissions(scratch.path + "/state/dir"), 0o755)
    }

    func testEmptyStoreHasNoGenerations() throws {
        let store = try ProfileStore(directory: profile)
        XCTAssertNil(try store.liveGeneration())
        XCTAssertNil(try store.previousGeneration())
        XCTAssertEqual(try store.generationIDs(), [])
    }

    func testFirstInstallMakesLiveWithModesAndFullchain() throws {
        let store = try ProfileStore(directory: profile)
        let installed = try store.install(taggedBundle("1"))

        XCTAssertEqual(installed.id, "000001")
        XCTAssertEqual(installed.directory, profile + "/generations/000001")
        XCTAssertEqual(symlinkTarget(profile + "/live"), "generations/000001", "live is a relative symlink")
        XCTAssertEqual(store.liveDirectory, profile + "/live")
        assertLive(profile, holds: "1")
        XCTAssertEqual(readText(store.liveFullchainPath),
                       taggedBundle("1").certificatePEM + taggedBundle("1").chainPEM)
        XCTAssertEqual(permissions(installed.directory), 0o755)
        XCTAssertEqual(try store.liveGeneration(), installed)
        XCTAssertNil(try store.previousGeneration())
        XCTAssertEqual(try store.readBundle(of: installed), taggedBundle("1"))
    }

    func testModesAreExactWhateverTheUmask() throws {
        for mask: mode_t in [0o077, 0o000] {
            let old = umask(mask)
            defer { umask(old) }
            let store = try ProfileStore(directory: profile + "-\(mask)")
            try store.install(taggedBundle("u"))
            assertLive(store.directory, holds: "u")
            try store.saveState(ProfileState(failures: 1))
            XCTAssertEqual(permissions(store.statePath), 0o644)
        }
    }

    func testFullchainWithoutTrailingNewlineOrChain() {
        let bundle = CertificateBundle(certificatePEM: "-----BEGIN CERTIFICATE-----\nA\n-----END CERTIFICATE-----",
                                       chainPEM: "-----BEGIN CERTIFICATE-----\nB\n-----END CERTIFICATE-----\n",
                                       keyPEM: "k")
        XCTAssertEqual(bundle.fullchainPEM,
                       "-----BEGIN CERTIFICATE-----\nA\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nB\n-----END CERTIFICATE-----\n")
        XCTAssertEqual(taggedBundle("x", chain: false).fullchainPEM, taggedBundle("x").certificatePEM)
    }

    func testSecondInstallKeepsPreviousAndThirdPrunesOldest() throws {
        let store = try ProfileStore(directory: profile)
        let first = try store.install(taggedBundle("1"))
        let second = try store.install(taggedBundle("2"))

        assertLive(profile, holds: "2")
        XCTAssertEqual(try store.previousGeneration(), first)
        XCTAssertEqual(symlinkTarget(profile + "/previous"), "generations/000001")
        XCTAssertEqual(try store.generationIDs(), ["000001", "000002"])

        let third = try store.install(taggedBundle("3"))
        assertLive(profile, holds: "3")
        XCTAssertEqual(try store.liveGeneration(), third)
        XCTAssertEqual(try store.previousGeneration(), second)
        XCTAssertEqual(try store.generationIDs(), ["000002", "000003"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: first.directory), "oldest generation pruned")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: profile + "/generations").sorted(),
                       ["000002", "000003"], "no staging or temp leftovers")
    }

    func testRollbackSwapsLiveAndPreviousAndCanBeUndone() throws {
        let store = try ProfileStore(directory: profile)
        let first = try store.install(taggedBundle("1"))
        let second = try store.install(taggedBundle("2"))

        XCTAssertEqual(try store.rollback(), first)
        assertLive(profile, holds: "1")
        XCTAssertEqual(try store.previousGeneration(), second)

        XCTAssertEqual(try store.rollback(), second)
        assertLive(profile, holds: "2")

        // After a rollback the next install keeps the rolled-back-to generation as previous.
        try store.rollback()
        try store.install(taggedBundle("3"))
        assertLive(profile, holds: "3")
        XCTAssertEqual(try store.previousGeneration(), first)
        XCTAssertEqual(try store.generationIDs(), ["000001", "000003"])
    }

    func testRollbackWithoutPreviousFails() throws {
        let store = try ProfileStore(directory: profile)
        XCTAssertThrowsError(try store.rollback()) {
            XCTAssertEqual($0 as? CertStoreError, CertStoreError(.noPreviousGeneration, path: nil, message: ""))
        }
        try store.install(taggedBundle("1"))
        XCTAssertThrowsError(try store.rollback())
        assertLive(profile, holds: "1")
    }

    func testRollbackRefusesAnIncompletePreviousGeneration() throws {
        let store = try ProfileStore(directory: profile)
        let first = try store.install(taggedBundle("1"))
        try store.install(taggedBundle("2"))
        XCTAssertEqual(unlink(first.keyPath), 0)

        XCTAssertNil(try store.previousGeneration())
        XCTAssertThrowsError(try store.rollback())
        assertLive(profile, holds: "2")
    }

    func testInvalidBundleIsRefusedWithoutTouchingTheStore() throws {
        let store = try ProfileStore(directory: profile)
        try store.install(taggedBundle("1"))
        var bundle = taggedBundle("2")
        bundle.keyPEM = ""
        XCTAssertThrowsError(try store.install(bundle)) { error in
            XCTAssertEqual((error as? CertStoreError)?.code, .invalidBundle)
        }
        bundle = taggedBundle("2")
        bundle.certificatePEM = "garbage"
        XCTAssertThrowsError(try store.install(bundle))
        assertLive(profile, holds: "1")
        XCTAssertEqual(try store.generationIDs(), ["000001"])
    }

    func testBrokenLiveLinkIsReportedAndRepairedByTheNextInstall() throws {
        let store = try ProfileStore(directory: profile)
        try store.install(taggedBundle("1"))
        XCTAssertEqual(unlink(profile + "/live"), 0)
        XCTAssertEqual(symlink("generations/000042", profile + "/live"), 0)

        XCTAssertThrowsError(try store.liveGeneration()) { error in
            XCTAssertEqual((error as? CertStoreError)?.code, .brokenGeneration)
            XCTAssertTrue("\(error)".contains(self.profile + "/generations/000042"), "\(error)")
        }
        let repaired = try store.install(taggedBundle("2"))
        XCTAssertEqual(repaired.id, "000043", "never reuses a number a link has named")
        assertLive(profile, holds: "2")
    }

    func testLiveLinkOutsideTheStoreIsRejected() throws {
        let store = try ProfileStore(directory: profile)
        XCTAssertEqual(symlink("/etc", profile + "/live"), 0)
        XCTAssertThrowsError(try store.liveGeneration()) { error in
            XCTAssertEqual((error as? CertStoreError)?.code, .brokenGeneration)
        }
    }

    func testLeftoversOfAKilledRunAreIgnoredAndLeftAloneByOpeningThenCleanedUnderTheLock() throws {
        let store = try ProfileStore(directory: profile)
        try store.install(taggedBundle("1"))
        try plantLeftovers()

        XCTAssertEqual(try store.generationIDs(), ["000001"], "staging is not a generation")
        assertLive(profile, holds: "1")

        // Opening a store touches nothing, lock free or not: the "leftover" may be the
        // install of a run that is about to take the lock back, or holds it.
        let before = TreeSnapshot(profile)
        let reopened = try ProfileStore(directory: profile)
        XCTAssertEqual(TreeSnapshot(profile), before, "opening changed the store")

        let lock = try reopened.lock()
        try reopened.cleanUpLeftovers(holding: lock)
        assertNoLeftovers()
        assertLive(profile, holds: "1")
    }

    func testCleanupRefusesALockThatIsNotHeldOrBelongsToAnotherStore() throws {
        let store = try ProfileStore(directory: profile)
        try store.install(taggedBundle("1"))
        try plantLeftovers()
        let released = try store.lock()
        released.release()
        XCTAssertThrowsError(try store.cleanUpLeftovers(holding: released)) { error in
            XCTAssertEqual((error as? CertStoreError)?.code, .lockNotHeld)
            XCTAssertTrue("\(error)".contains(store.lockPath), "\(error)")
        }
        let other = try ProfileStore(directory: scratch.path + "/other")
        let otherLock = try other.lock()
        XCTAssertThrowsError(try store.cleanUpLeftovers(holding: otherLock)) { error in
            XCTAssertEqual((error as? CertStoreError)?.code, .lockNotHeld)
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: profile + "/generations/.staging-0123456789abcdef"))
    }

    func testLeftoversAreLeftAloneWhileAnotherHolderHasTheLockThenCleanedByInstall() throws {
        let store = try ProfileStore(directory: profile)
        try store.install(taggedBundle("1"))
        try plantLeftovers()

        let held = try XCTUnwrap(try store.tryLock())
        let second = try ProfileStore(directory: profile)
        XCTAssertTrue(FileManager.default.fileExists(atPath: profile + "/generations/.staging-0123456789abcdef"),
                      "opening must not delete another holder's staging directory")

        try second.install(taggedBundle("2"))
        held.release()
        assertNoLeftovers()
        assertLive(profile, holds: "2")
    }

    private func plantLeftovers() throws {
        let staging = profile + "/generations/.staging-0123456789abcdef"
        try FileManager.default.createDirectory(atPath: staging, withIntermediateDirectories: false)
        plant("half", at: staging + "/key.pem")
        plant("{", at: profile + "/.state.json.tmp-0011223344556677")
        XCTAssertEqual(symlink("generations/000009", profile + "/.live.tmp-aa"), 0)
        try FileManager.default.createDirectory(atPath: profile + "/pending", withIntermediateDirectories: false)
        plant("half", at: profile + "/pending/.key.pem.tmp-bb")
    }

    private func assertNoLeftovers(file: StaticString = #filePath, line: UInt = #line) {
        let fm = FileManager.default
        let generations = (try? fm.contentsOfDirectory(atPath: profile + "/generations")) ?? []
        XCTAssertEqual(generations.filter { $0.hasPrefix(".") }, [], file: file, line: line)
        let top = (try? fm.contentsOfDirectory(atPath: profile)) ?? []
        XCTAssertEqual(top.filter { $0.contains(".tmp-") }, [], file: file, line: line)
        let pending = (try? fm.contentsOfDirectory(atPath: profile + "/pending")) ?? []
        XCTAssertEqual(pending, [], file: file, line: line)
    }
}
