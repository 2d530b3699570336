#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import TestSupport
import XCTest
@testable import CertStore

/// The profile lock must be a real kernel flock: checked against /usr/bin/flock in child
/// processes, including one that is killed while holding it.
final class LockTests: XCTestCase {
    private var scratch: ScratchDirectory!
    private var store: ProfileStore!
    private let flockTool = "/usr/bin/flock"

    override func setUpWithError() throws {
        scratch = try ScratchDirectory()
        store = try ProfileStore(directory: scratch.path + "/device")
    }

    override func tearDown() { scratch.remove() }

    func testSecondTryWhileHeldReturnsNilUntilReleased() throws {
        let first = try XCTUnwrap(try store.tryLock())
        XCTAssertTrue(first.isHeld)
        XCTAssertNil(try store.tryLock(), "a second descriptor must see the lock busy")

        first.release()
        XCTAssertFalse(first.isHeld)
        first.release()   // idempotent
        let second = try XCTUnwrap(try store.tryLock())
        XCTAssertEqual(readText(store.lockPath), "\(getpid())\n", "holds the holder's pid, nothing else")
        XCTAssertEqual(permissions(store.lockPath), 0o600, "only the owner may open (and so hold) the lock")
        second.release()
    }

    func testLockIsReleasedWhenTheObjectGoesAway() throws {
        do {
            let held = try store.tryLock()
            XCTAssertNotNil(held)
            XCTAssertNil(try store.tryLock())
        }
        XCTAssertNotNil(try store.tryLock())
    }

    func testAnotherProcessSeesTheLockHeld() throws {
        try requireFlockTool()
        let held = try XCTUnwrap(try store.tryLock())
        XCTAssertEqual(try runFlock(["-n", "-E", "42", store.lockPath, "true"]), .exited(42), "busy for another process")
        held.release()
        XCTAssertEqual(try runFlock(["-n", "-E", "42", store.lockPath, "true"]), .exited(0), "free after release")
    }

    func testLockHeldByAKilledProcessIsReleasedByTheKernel() throws {
        try requireFlockTool()
        // flock -o: the lock stays with the flock process itself (not the command), which
        // prints the pid of the command once the lock is held.
        let holder = try startFlockHolder()
        var sleeperPID = holder.sleeperPID
        defer {
            // Only our own children, by pid, and only if not already ended below.
            if let sleeperPID { kill(sleeperPID, SIGKILL) }
        }
        XCTAssertNotNil(sleeperPID, "flock child printed \(holder.process.readOutput())")

        XCTAssertNil(try store.tryLock(), "held by the child process")
        holder.process.send(signal: SIGKILL)
        // Wait for the kernel to drop the lock (at the holder's death), bounded so a bug
        // cannot hang the suite.
        let released = DispatchSemaphore(value: 0)
        let store = self.store!
        Thread {
            if let lock = try? store.lock(wait: .seconds(30)) {
                lock.release()
                released.signal()
            }
        }.start()
        XCTAssertEqual(released.wait(timeout: .now() + 10), .success, "the kernel released the dead holder's lock")
        XCTAssertNotNil(try store.tryLock())
        if let pid = sleeperPID {
            kill(pid, SIGKILL)
            sleeperPID = nil
        }
        XCTAssertEqual(holder.process.wait(timeout: 10), .signaled(SIGKILL))
    }

    func testWaitingLockIsGrantedOnRelease() throws {
        let held = try XCTUnwrap(try store.tryLock())
        let acquired = DispatchSemaphore(value: 0)
        let store = self.store!
        let waiter = Thread {
            if let lock = try? store.lock(wait: .seconds(30)) {
                acquired.signal()
                lock.release()
            }
        }
        waiter.start()
        XCTAssertEqual(acquired.wait(timeout: .now() + 0.3), .timedOut, "must block while held")
        held.release()
        XCTAssertEqual(acquired.wait(timeout: .now() + 10), .success, "granted once released")
    }

    // MARK: Mode and bounded wait

    func testAnExisting0644LockFileIsMade0600() throws {
        XCTAssertTrue(FileManager.default.createFile(atPath: store.lockPath, contents: Data("1\n".utf8),
                                                     attributes: [.posixPermissions: 0o644]))
        XCTAssertEqual(permissions(store.lockPath), 0o644)
        try XCTUnwrap(try store.tryLock()).release()
        XCTAssertEqual(permissions(store.lockPath), 0o600)

        // Also through a bounded wait, and whatever the umask.
        XCTAssertEqual(chmod(store.lockPath, 0o644), 0)
        let old = umask(0o277)
        defer { umask(old) }
        try store.lock(wait: .seconds(1)).release()
        XCTAssertEqual(permissions(store.lockPath), 0o600)
    }

    func testASymlinkAtTheLockNameIsNotFollowed() throws {
        let target = scratch.path + "/elsewhere"
        plant("keep", at: target)
        XCTAssertEqual(chmod(target, 0o644), 0)
        XCTAssertEqual(symlink(target, store.lockPath), 0)
        XCTAssertThrowsError(try store.tryLock()) { error in
            XCTAssertEqual((error as? CertStoreError)?.code, .lockFailed)
            XCTAssertEqual((error as? CertStoreError)?.systemError, ELOOP, "\(error)")
        }
        XCTAssertEqual(readText(target), "keep")
        XCTAssertEqual(permissions(target), 0o644, "no chmod through the symlink")
    }

    func testABoundedWaitOnALockHeldByFlockFailsInTimeAndNamesTheHolder() throws {
        try requireFlockTool()
        try XCTUnwrap(try store.tryLock()).release()   // the file exists and is ours
        // flock -o: the flock process itself holds the lock (it never writes its pid into
        // the file) and prints once it has it.
        let holder = try startFlockHolder()
        let sleeperPID = holder.sleeperPID
        defer {
            // Only our own child's child, by pid (ChildProcess kills the holder itself).
            if let sleeperPID { kill(sleeperPID, SIGKILL) }
        }
        XCTAssertNotNil(sleeperPID)

        let bound = Duration.milliseconds(700)
        let started = ContinuousClock.now
        XCTAssertThrowsError(try store.lock(wait: bound)) { error in
            let waited = ContinuousClock.now - started
            XCTAssertGreaterThanOrEqual(waited, bound, "gave up early")
            XCTAssertLessThan(waited, bound + .seconds(2), "the bound did not hold")
            guard let error = error as? CertStoreError else { return XCTFail("\(error)") }
            XCTAssertEqual(error.code, .lockBusy)
            XCTAssertEqual(error.path, self.store.lockPath)
            XCTAssertTrue(error.message.contains("pid \(holder.process.pid) (flock, uid \(getuid())"), error.message)
            XCTAssertTrue(error.message.contains("still held after 700 ms"), error.message)
            XCTAssertTrue(error.message.contains(self.store.lockPath), error.message)
        }
        XCTAssertEqual(readText(store.lockPath), "\(getpid())\n", "the file still names our last holder, not flock")
    }

    func testAZeroWaitTriesOnceAndAFreeLockIsTakenAtOnce() throws {
        let held = try XCTUnwrap(try store.tryLock())
        XCTAssertThrowsError(try store.lock(wait: .zero)) { error in
            XCTAssertEqual((error as? CertStoreError)?.code, .lockBusy)
            // Held in this very process: /proc/locks names us.
            XCTAssertTrue("\(error)".contains("pid \(getpid())"), "\(error)")
        }
        held.release()
        XCTAssertTrue(try store.lock(wait: .zero).isHeld)
    }

    func testWaitingForTheLockEndsWhenTheTaskIsCancelled() async throws {
        let held = try XCTUnwrap(try store.tryLock())
        defer { held.release() }
        let store = self.store!
        let waiter = Task.detached { () -> Error? in
            do { _ = try store.lock(wait: .seconds(60)); return nil } catch { return error }
        }
        try await Task.sleep(for: .milliseconds(100))
        waiter.cancel()
        let started = ContinuousClock.now
        let error = await waiter.value
        XCTAssertTrue(error is CancellationError, "\(String(describing: error))")
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(5))
    }

    func testHoldersAreReadFromTheKernelTableByDeviceAndInode() {
        let device = dev_t(0xfe00)   // major 0xfe, minor 0
        let table = """
            1: POSIX  ADVISORY  WRITE 111 fe:00:42 0 EOF
            2: FLOCK  ADVISORY  WRITE 222 fe:00:43 0 EOF
            3: FLOCK  ADVISORY  WRITE 333 fe:00:42 0 EOF
            3: -> FLOCK  ADVISORY  WRITE 444 fe:00:42 0 EOF
            4: FLOCK  ADVISORY  READ 555 fe:01:42 0 EOF
            5: FLOCK  ADVISORY  WRITE -1 fe:00:42 0 EOF
            """
        XCTAssertEqual(LockHolder.flockHolderPIDs(in: table, device: device, inode: 42), [333],
                       "FLOCK only, not a waiter (->), same device and inode, a visible pid")
        XCTAssertEqual(deviceMajor(dev_t(0xfe00)), 0xfe)
        XCTAssertEqual(deviceMinor(dev_t(0xfe01)), 0x01)
        // Large numbers: glibc's encoding splits major and minor across the 64 bits.
        let large = dev_t((UInt64(0x12345) & 0xfff) << 8 | (UInt64(0x12345) & ~0xfff) << 32
                          | (UInt64(0xabcdef) & 0xff) | (UInt64(0xabcdef) & ~0xff) << 12)
        XCTAssertEqual(deviceMajor(large), 0x12345)
        XCTAssertEqual(deviceMinor(large), 0xabcdef)
    }

    // MARK: Helpers

    private func requireFlockTool() throws {
        if !FileManager.default.isExecutableFile(atPath: flockTool) {
            if ProcessInfo.processInfo.environment["CI"] == "true" {
                throw CertStoreError(.lockFailed, path: flockTool, message: "\(flockTool) is required when CI=true (package util-linux)")
            }
            throw XCTSkip("\(flockTool) not installed")
        }
    }

    private func runFlock(_ arguments: [String]) throws -> ChildExitStatus {
        try ChildProcess.run(executable: flockTool, arguments: arguments, timeout: 30).status
    }

    /// `flock -o LOCK sh -c 'echo $$; exec sleep 60'`: the lock stays with the flock process
    /// itself (not the command), which has it once the command prints its pid.
    private func startFlockHolder() throws -> (process: ChildProcess, sleeperPID: pid_t?) {
        let holder = try ChildProcess(
            executable: flockTool, arguments: ["-o", store.lockPath, "/bin/sh", "-c", "echo $$; exec sleep 60 >/dev/null"],
            outputPath: scratch.path + "/flock-holder.out")
        holder.waitForOutput(timeout: 10) { $0.hasSuffix("\n") }
        return (holder, pid_t(holder.readOutput().trimmingCharacters(in: .whitespacesAndNewlines)))
    }
}
