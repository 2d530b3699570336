#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
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
        let first = try XCTUnwrap(try store.lock(wait: false))
        XCTAssertTrue(first.isHeld)
        XCTAssertNil(try store.lock(wait: false), "a second descriptor must see the lock busy")

        first.release()
        XCTAssertFalse(first.isHeld)
        first.release()   // idempotent
        let second = try XCTUnwrap(try store.lock(wait: false))
        XCTAssertEqual(readText(store.lockPath), "\(getpid())\n", "holds the holder's pid, nothing else")
        XCTAssertEqual(permissions(store.lockPath), 0o644)
        second.release()
    }

    func testLockIsReleasedWhenTheObjectGoesAway() throws {
        do {
            let held = try store.lock(wait: false)
            XCTAssertNotNil(held)
            XCTAssertNil(try store.lock(wait: false))
        }
        XCTAssertNotNil(try store.lock(wait: false))
    }

    func testAnotherProcessSeesTheLockHeld() throws {
        try requireFlockTool()
        let held = try XCTUnwrap(try store.lock(wait: false))
        XCTAssertEqual(try runFlock(["-n", "-E", "42", store.lockPath, "true"]), 42, "busy for another process")
        held.release()
        XCTAssertEqual(try runFlock(["-n", "-E", "42", store.lockPath, "true"]), 0, "free after release")
    }

    func testLockHeldByAKilledProcessIsReleasedByTheKernel() throws {
        try requireFlockTool()
        // flock -o: the lock stays with the flock process itself (not the command), which
        // prints the pid of the command once the lock is held.
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: flockTool)
        holder.arguments = ["-o", store.lockPath, "/bin/sh", "-c", "echo $$; exec sleep 60 >/dev/null"]
        let output = Pipe()
        holder.standardOutput = output
        try holder.run()
        let firstLine = readLine(from: output.fileHandleForReading)
        var sleeperPID = Int32(firstLine.trimmingCharacters(in: .whitespacesAndNewlines))
        defer {
            // Only our own children, by pid, and only if not already ended below.
            if let sleeperPID { kill(sleeperPID, SIGKILL) }
            if holder.isRunning { kill(holder.processIdentifier, SIGKILL) }
        }
        XCTAssertNotNil(sleeperPID, "flock child printed \(firstLine)")

        XCTAssertNil(try store.lock(wait: false), "held by the child process")
        kill(holder.processIdentifier, SIGKILL)
        // Wait for the kernel to drop the lock (at the holder's death), bounded so a bug
        // cannot hang the suite. Process.waitUntilExit would also wait for the orphaned
        // sleeper, so it is only called once that is gone too.
        let released = DispatchSemaphore(value: 0)
        let store = self.store!
        Thread {
            if let lock = try? store.lock(wait: true) {
                lock.release()
                released.signal()
            }
        }.start()
        XCTAssertEqual(released.wait(timeout: .now() + 10), .success, "the kernel released the dead holder's lock")
        XCTAssertNotNil(try store.lock(wait: false))
        if let pid = sleeperPID {
            kill(pid, SIGKILL)
            sleeperPID = nil
        }
        holder.waitUntilExit()
        XCTAssertEqual(holder.terminationReason, .uncaughtSignal)
    }

    func testWaitingLockIsGrantedOnRelease() throws {
        let held = try XCTUnwrap(try store.lock(wait: false))
        let acquired = DispatchSemaphore(value: 0)
        let store = self.store!
        let waiter = Thread {
            if let lock = try? store.lock(wait: true) {
                acquired.signal()
                lock.release()
            }
        }
        waiter.start()
        XCTAssertEqual(acquired.wait(timeout: .now() + 0.3), .timedOut, "must block while held")
        held.release()
        XCTAssertEqual(acquired.wait(timeout: .now() + 10), .success, "granted once released")
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

    private func runFlock(_ arguments: [String]) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: flockTool)
        process.arguments = arguments
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus
    }

    private func readLine(from handle: FileHandle) -> String {
        var bytes: [UInt8] = []
        while bytes.last != UInt8(ascii: "\n") {
            let chunk = handle.readData(ofLength: 1)
            if chunk.isEmpty { break }
            bytes.append(contentsOf: chunk)
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
