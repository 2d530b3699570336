#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import XCTest
@testable import CertStore

/// Cleanup and pruning delete by descriptor and never through a symlink, even while another
/// process (whoever owns the store) swaps a directory being deleted for a symlink to
/// files outside the store.
final class RemovalTests: XCTestCase {
    private var scratch: ScratchDirectory!
    private var profile: String { scratch.path + "/device" }
    /// Files outside the store that a symlink swapped into it points at.
    private var outside: String { scratch.path + "/outside" }
    private let victimCount = 12

    override func setUpWithError() throws {
        scratch = try ScratchDirectory()
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: false)
        for index in 0..<victimCount { plant("precious \(index)", at: outside + "/victim-\(index)") }
        try FileManager.default.createDirectory(atPath: scratch.path + "/links", withIntermediateDirectories: false)
    }

    override func tearDown() { scratch.remove() }

    // MARK: Races

    func testCleanupNeverDeletesThroughAStagingDirectorySwappedForASymlink() throws {
        let store = try ProfileStore(directory: profile)
        try store.install(taggedBundle("1"))
        let lock = try store.lock()
        try race(swapping: profile + "/generations/.staging-0123456789abcdef") {
            try? store.cleanUpLeftovers(holding: lock)
        }
        assertLive(profile, holds: "1")
    }

    func testPruningNeverDeletesThroughAGenerationSwappedForASymlink() throws {
        let store = try ProfileStore(directory: profile)
        try store.install(taggedBundle("1"))
        try store.install(taggedBundle("2"))
        var installs = 2
        // Generation "0" is neither live nor previous: each install prunes it.
        try race(swapping: profile + "/generations/0") {
            installs += 1
            // Pruning is best effort; the install itself must succeed whatever the swapper does.
            try store.install(taggedBundle("\(installs)"))
        }
        assertLive(profile, holds: "\(installs)")
    }

    /// Repeatedly: a directory of files at `target`, a thread exchanging it with a symlink to
    /// `outside` (renameat2 RENAME_EXCHANGE, so both names always exist), and `removal`
    /// running meanwhile. Stops at the first outside file lost. A path-based walk (lstat,
    /// then opendir and unlink by name) loses files within a few dozen rounds.
    private func race(swapping target: String, rounds: Int = 300, removal: () throws -> Void,
                      file: StaticString = #filePath, line: UInt = #line) throws {
        let link = scratch.path + "/links/swap"
        var exchanges = 0
        for round in 0..<rounds {
            try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: false)
            for name in ["cert.pem", "chain.pem", "fullchain.pem", "key.pem"] { plant("staged", at: target + "/" + name) }
            XCTAssertEqual(symlink(outside, link), 0, "round \(round)", file: file, line: line)

            let swapper = Swapper(target, link)
            swapper.start()
            try removal()
            exchanges += swapper.stop()

            let lost = (0..<victimCount).filter { !FileManager.default.fileExists(atPath: outside + "/victim-\($0)") }
            XCTAssertEqual(lost, [], "round \(round): files outside the store were deleted through a symlink",
                           file: file, line: line)
            if !lost.isEmpty { return }
            XCTAssertEqual(readText(outside + "/victim-0"), "precious 0", file: file, line: line)
            // What survived of the round, at either name (the removal may have taken the
            // symlink and left the directory behind, now at the link's name).
            for path in [target, link] { removeWithoutFollowing(path) }
        }
        XCTAssertGreaterThan(exchanges, rounds, "the swapper must actually have raced the removal", file: file, line: line)
    }

    // MARK: The walk itself

    func testRemovesANestedTreeAndUnlinksSymlinksInsteadOfFollowingThem() throws {
        let store = try ProfileStore(directory: profile)
        let staging = profile + "/generations/.staging-aa"
        try FileManager.default.createDirectory(atPath: staging + "/a/b", withIntermediateDirectories: true)
        plant("x", at: staging + "/a/b/file")
        XCTAssertEqual(symlink(outside, staging + "/a/to-directory"), 0)
        XCTAssertEqual(symlink(outside + "/victim-0", staging + "/to-file"), 0)
        XCTAssertEqual(symlink("/nonexistent", staging + "/dangling"), 0)

        try store.cleanUpLeftovers(holding: try store.lock())
        XCTAssertFalse(lexists(staging))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: outside).count, victimCount)
    }

    func testASymlinkInPlaceOfAStoreDirectoryIsNeverEntered() throws {
        let store = try ProfileStore(directory: profile)
        try store.install(taggedBundle("1"))
        // `pending` replaced by a symlink to a directory holding a temp-looking name.
        plant("not ours", at: outside + "/.key.pem.tmp-00")
        XCTAssertEqual(symlink(outside, profile + "/pending"), 0)
        try store.cleanUpLeftovers(holding: try store.lock())
        XCTAssertEqual(readText(outside + "/.key.pem.tmp-00"), "not ours", "cleanup listed through the symlink")

        // Clearing the pending key removes the symlink itself, not what it points to.
        try store.clearPending()
        XCTAssertFalse(lexists(profile + "/pending"))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: outside).count, victimCount + 1)

        // A directory between the root and the entry that is a symlink: refused, untouched.
        XCTAssertEqual(symlink(outside, scratch.path + "/links/through"), 0)
        XCTAssertThrowsError(try POSIXFileSystem().removeTree("through/victim-0", under: scratch.path + "/links")) { error in
            XCTAssertEqual((error as? CertStoreError)?.path, self.scratch.path + "/links/through")
            XCTAssertTrue("\(error)".contains("is a symlink or a file where the store expects a directory"), "\(error)")
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: outside + "/victim-0"))
    }

    func testAMissingTreeIsNotAnErrorAndDotDotIsRefused() throws {
        let fileSystem = POSIXFileSystem()
        XCTAssertNoThrow(try fileSystem.removeTree("nothing/here", under: scratch.path))
        XCTAssertNoThrow(try fileSystem.removeTree("x", under: scratch.path + "/missing-root"))
        XCTAssertThrowsError(try fileSystem.removeTree("../outside", under: scratch.path + "/links"))
        XCTAssertThrowsError(try fileSystem.removeTree("", under: scratch.path + "/links"))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: outside).count, victimCount)
    }

    func testATreeDeeperThanTheStoreEverMakesIsRefused() throws {
        var path = scratch.path + "/deep"
        for level in 0...TreeRemoval.maximumDepth { path += "/\(level)" }
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        XCTAssertThrowsError(try POSIXFileSystem().removeTree("deep", under: scratch.path)) { error in
            XCTAssertTrue("\(error)".contains("more than \(TreeRemoval.maximumDepth) directories deep"), "\(error)")
        }
    }

    private func lexists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    private func removeWithoutFollowing(_ path: String) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        if info.st_mode & S_IFMT == S_IFLNK {
            unlink(path)
        } else {
            try? FileManager.default.removeItem(atPath: path)
        }
    }
}

/// A thread exchanging two names as fast as it can until stopped.
private final class Swapper: @unchecked Sendable {
    private typealias RenameAt2 = @convention(c) (Int32, UnsafePointer<CChar>, Int32, UnsafePointer<CChar>, UInt32) -> Int32
    /// renameat2(2) with RENAME_EXCHANGE (2): glibc has it, Swift's Glibc module does not export it.
    private static let renameat2: RenameAt2 = unsafeBitCast(dlsym(dlopen(nil, RTLD_NOW), "renameat2"), to: RenameAt2.self)

    private let first: String
    private let second: String
    private let condition = NSCondition()
    private var stopping = false
    private var running = false
    private var finished = false
    private var exchanges = 0

    init(_ first: String, _ second: String) {
        self.first = first
        self.second = second
    }

    /// Starts the thread and returns once it is exchanging (a removal started before that
    /// would often finish before the first exchange and race nothing).
    func start() {
        Thread { self.run() }.start()
        condition.lock()
        defer { condition.unlock() }
        while !running { condition.wait() }
    }

    /// Stops the thread; returns how many exchanges it made.
    func stop() -> Int {
        condition.lock()
        defer { condition.unlock() }
        stopping = true
        while !finished { condition.wait() }
        return exchanges
    }

    private func run() {
        var count = 0
        while !shouldStop() {
            // Fails with ENOENT once the removal took one of the two names; keep trying
            // anyway so the timing does not change.
            if Self.renameat2(AT_FDCWD, first, AT_FDCWD, second, 2) == 0 { count += 1 }
            if count == 1 { announceRunning() }
        }
        announceRunning()
        condition.lock()
        exchanges = count
        finished = true
        condition.broadcast()
        condition.unlock()
    }

    private func announceRunning() {
        condition.lock()
        if !running {
            running = true
            condition.broadcast()
        }
        condition.unlock()
    }

    private func shouldStop() -> Bool {
        condition.lock()
        defer { condition.unlock() }
        return stopping
    }
}
