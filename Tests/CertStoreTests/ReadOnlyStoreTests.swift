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

/// `ProfileStore(readingFrom:)`, what `status` and `check-config` use: it reads everything a
/// writing store reads, and creates, locks, cleans and modifies nothing.
final class ReadOnlyStoreTests: XCTestCase {
    private var scratch: ScratchDirectory!
    private var profile: String { scratch.path + "/device" }

    override func setUpWithError() throws { scratch = try ScratchDirectory() }
    override func tearDown() { scratch.remove() }

    func testAMissingStoreReadsAsEmptyAndIsNotCreated() throws {
        let store = ProfileStore(readingFrom: profile)
        XCTAssertFalse(store.isWritable)
        XCTAssertNil(try store.liveGeneration())
        XCTAssertNil(try store.previousGeneration())
        XCTAssertEqual(try store.generationIDs(), [])
        XCTAssertEqual(try store.loadState(), ProfileState())
        XCTAssertNil(try store.loadPendingKey())
        XCTAssertFalse(FileManager.default.fileExists(atPath: profile), "reading created the store directory")
    }

    func testReadsAnInstalledStoreAndChangesNothingInIt() throws {
        let writer = try ProfileStore(directory: profile)
        try writer.install(taggedBundle("1"))
        try writer.install(taggedBundle("2"))
        try writer.saveState(ProfileState(lastError: "kept"))
        try writer.savePendingKey(pem: "-----BEGIN PRIVATE KEY-----\npending\n-----END PRIVATE KEY-----\n")
        try FileManager.default.createDirectory(atPath: profile + "/generations/.staging-0123456789abcdef", withIntermediateDirectories: false)
        plant("half", at: profile + "/generations/.staging-0123456789abcdef/key.pem")
        plant("{", at: profile + "/.state.json.tmp-0011223344556677")
        let writerLock = try writer.lock()   // so the lock file exists before the snapshot
        let before = TreeSnapshot(profile)

        let reader = ProfileStore(readingFrom: profile + "/")
        XCTAssertEqual(reader.directory, profile)
        let live = try XCTUnwrap(try reader.liveGeneration())
        XCTAssertEqual(try reader.readBundle(of: live), taggedBundle("2"))
        XCTAssertEqual(try reader.previousGeneration()?.id, "000001")
        XCTAssertEqual(try reader.loadState().lastError, "kept")
        XCTAssertNotNil(try reader.loadPendingKey())

        // Every mutation is refused before it touches the disk.
        let refusals: [(String, () throws -> Void)] = [
            ("install", { _ = try reader.install(taggedBundle("3")) }),
            ("rollback", { _ = try reader.rollback() }),
            ("saveState", { try reader.saveState(ProfileState()) }),
            ("moveCorruptStateAside", { _ = try reader.moveCorruptStateAside(now: Date()) }),
            ("savePendingKey", { try reader.savePendingKey(pem: "x") }),
            ("clearPending", { try reader.clearPending() }),
            ("lock", { _ = try reader.lock(wait: .zero) }),
            ("tryLock", { _ = try reader.tryLock() }),
            ("cleanUpLeftovers", { try reader.cleanUpLeftovers(holding: writerLock) }),
        ]
        for (name, mutation) in refusals {
            XCTAssertThrowsError(try mutation(), name) { error in
                XCTAssertEqual((error as? CertStoreError)?.code, .openedReadOnly, "\(name): \(error)")
                XCTAssertTrue("\(error)".contains(self.profile), "\(name): \(error)")
            }
        }
        XCTAssertEqual(TreeSnapshot(profile), before, "the read-only store changed something")
    }
}
