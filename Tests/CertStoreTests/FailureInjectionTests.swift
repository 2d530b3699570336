import EnrollmentPlan
import Foundation
import XCTest
@testable import CertStore

/// Fails every mutating filesystem step of an install in turn, once as a transient error
/// (full or read-only disk) and once as a kill (nothing after that step happens), and
/// checks the promise of the store: the old generation stays live and intact unless the
/// install reported success, in which case the new one is live.
final class FailureInjectionTests: XCTestCase {
    private var scratch: ScratchDirectory!

    override func setUpWithError() throws { scratch = try ScratchDirectory() }
    override func tearDown() { scratch.remove() }

    func testTransientFailureAtEveryStepKeepsTheOldGenerationLive() throws {
        let steps = try runAtEveryStep(.once)
        XCTAssertGreaterThanOrEqual(steps, 12, "an install has at least this many mutating steps")
    }

    func testKillAtEveryStepLeavesOldOrNewGenerationLive() throws {
        let steps = try runAtEveryStep(.killed)
        XCTAssertGreaterThanOrEqual(steps, 12)
    }

    func testFailedStateWriteKeepsTheOldStateFile() throws {
        let faulty = FaultyFileSystem()
        let store = try ProfileStore(directory: scratch.path + "/device", fileSystem: faulty)
        try store.saveState(ProfileState(lastError: "old"))
        faulty.fail(afterSteps: 0, as: .once)
        XCTAssertThrowsError(try store.saveState(ProfileState(lastError: "new"))) { error in
            XCTAssertEqual((error as? CertStoreError)?.code, .fileSystem)
            XCTAssertTrue("\(error)".contains(store.statePath), "names the file: \(error)")
            XCTAssertTrue("\(error)".contains("free disk space"), "says what to do: \(error)")
        }
        XCTAssertEqual(try store.loadState().lastError, "old")
    }

    func testRealWriteFailureNamesThePathAndTheCause() throws {
        // /proc is read-only for file creation even as root: a real EACCES/ENOENT path.
        XCTAssertThrowsError(try POSIXFileSystem().writeFile("/proc/certstore-test", contents: [1], mode: 0o600)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.hasPrefix("cannot create /proc/.certstore-test.tmp-"), text)
            XCTAssertTrue(text.contains("; check"), text)
        }
    }

    /// Returns how many steps were exercised (the index at which the install no longer failed).
    private func runAtEveryStep(_ failure: FaultyFileSystem.Failure) throws -> Int {
        var step = 0
        while step < 200 {
            let profile = scratch.path + "/\(failure)-\(step)"
            let faulty = FaultyFileSystem()
            let store = try ProfileStore(directory: profile, fileSystem: faulty)
            try store.install(taggedBundle("1"))
            try store.install(taggedBundle("2"))

            faulty.fail(afterSteps: step, as: failure)
            var succeeded = false
            do {
                try store.install(taggedBundle("3"))
                succeeded = true
            } catch let error as CertStoreError {
                XCTAssertEqual(error.code, .fileSystem, "step \(step)")
                XCTAssertTrue(error.message.contains(profile), "error names a path in the store: \(error)")
            }
            if !faulty.triggered { return step }

            // What a reader (or the restarted agent) sees right after the failure.
            let expected = succeeded ? "3" : "2"
            assertLive(profile, holds: expected)
            // The restarted agent: opens, takes the lock, cleans up.
            let reopened = try ProfileStore(directory: profile)
            try reopened.cleanUpLeftovers(holding: try reopened.lock())
            XCTAssertEqual(try reopened.liveGeneration()?.id, succeeded ? "000003" : "000002", "step \(step)")
            if succeeded {
                XCTAssertEqual(try reopened.readBundle(of: XCTUnwrap(reopened.liveGeneration())), taggedBundle("3"))
            }
            let visible = try FileManager.default.contentsOfDirectory(atPath: profile + "/generations")
            XCTAssertEqual(visible.filter { $0.hasPrefix(".") }, [], "step \(step): leftovers cleaned under the lock")
            XCTAssertFalse(try reopened.generationIDs().isEmpty)

            // The store keeps working after the failure.
            try reopened.install(taggedBundle("4"))
            assertLive(profile, holds: "4")
            XCTAssertEqual(try reopened.generationIDs().count, 2, "step \(step): live + previous only")
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: profile + "/generations").filter { $0.hasPrefix(".") }, [])
            step += 1
        }
        XCTFail("install never completed without hitting the injected failure")
        return step
    }
}
