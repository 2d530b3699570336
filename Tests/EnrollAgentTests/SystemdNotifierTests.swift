import Foundation
import Glibc
import TestSupport
import XCTest

@testable import EnrollAgent

/// A bound AF_UNIX datagram socket standing in for systemd's notify socket.
private final class NotifierTestSocket {
    let fd: Int32

    /// Binds to `name`: a filesystem path, or "@name" for the abstract namespace.
    init(name: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }

        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(name.utf8)
        if bytes.first == UInt8(ascii: "@") { bytes[0] = 0 }
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            close(fd)
            throw POSIXError(.ENAMETOOLONG)
        }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard bound == 0 else {
            let saved = errno
            close(fd)
            throw POSIXError(POSIXErrorCode(rawValue: saved) ?? .EIO)
        }
        // A receive that never comes must fail the test, not hang it.
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    /// The next datagram's bytes, or nil when none arrives within 2 s.
    func receive() -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        return count >= 0 ? Array(buffer[..<count]) : nil
    }

    /// Whether a datagram is waiting (without consuming it).
    var hasPendingDatagram: Bool {
        var byte: UInt8 = 0
        return recv(fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT)) >= 0
    }
}

final class SystemdNotifierTests: XCTestCase {
    private var workspace: TemporaryDirectory!

    override func setUpWithError() throws { workspace = try TemporaryDirectory(prefix: "notify") }
    override func tearDown() { workspace?.remove() }

    func testNotifySendsExactlyTheMessageToTheSocketPath() throws {
        let path = workspace.appending("notify.sock")
        let socket = try NotifierTestSocket(name: path)
        let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": path])

        XCTAssertTrue(notifier.isActive)
        XCTAssertTrue(notifier.notify("READY=1\nSTATUS=x"))
        XCTAssertEqual(socket.receive(), Array("READY=1\nSTATUS=x".utf8))

        // One datagram per message, in order.
        XCTAssertTrue(notifier.notify("WATCHDOG=1"))
        XCTAssertTrue(notifier.notify("STOPPING=1"))
        XCTAssertEqual(socket.receive(), Array("WATCHDOG=1".utf8))
        XCTAssertEqual(socket.receive(), Array("STOPPING=1".utf8))
        XCTAssertFalse(socket.hasPendingDatagram)
    }

    func testAbstractSocketWorks() throws {
        let name = "@enroll-agent-notify-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let socket = try NotifierTestSocket(name: name)
        let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": name])

        XCTAssertTrue(notifier.notify("READY=1\nSTATUS=abstract"))
        XCTAssertEqual(socket.receive(), Array("READY=1\nSTATUS=abstract".utf8))
    }

    func testWithoutNotifySocketNothingHappens() {
        for environment in [[:], ["NOTIFY_SOCKET": ""]] as [[String: String]] {
            let notifier = SystemdNotifier(environment: environment)
            XCTAssertFalse(notifier.isActive, "\(environment)")
            XCTAssertFalse(notifier.notify("READY=1"), "\(environment)")
        }
    }

    func testSocketThatDoesNotExistReturnsFalse() {
        let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": workspace.appending("absent.sock")])
        XCTAssertTrue(notifier.isActive)
        XCTAssertFalse(notifier.notify("READY=1"))
    }

    func testPathTooLongForSockaddrReturnsFalse() {
        let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": "/" + String(repeating: "x", count: 200)])
        XCTAssertFalse(notifier.notify("READY=1"))
    }

    func testWatchdogIntervalIsHalfOfWatchdogUsec() {
        let own = SystemdNotifier(environment: ["WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "\(getpid())"])
        XCTAssertEqual(own.watchdogInterval, 1)
        // Without WATCHDOG_PID the watchdog is ours.
        XCTAssertEqual(SystemdNotifier(environment: ["WATCHDOG_USEC": "2000000"]).watchdogInterval, 1)
    }

    func testWatchdogForAnotherPidIsIgnored() {
        let other = getpid() == 1 ? 2 : 1
        let notifier = SystemdNotifier(environment: ["WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "\(other)"])
        XCTAssertNil(notifier.watchdogInterval)
    }

    func testNoOrInvalidWatchdogUsecGivesNoInterval() {
        for value in [nil, "0", "-5", "soon", ""] as [String?] {
            var environment: [String: String] = [:]
            environment["WATCHDOG_USEC"] = value
            XCTAssertNil(SystemdNotifier(environment: environment).watchdogInterval, "WATCHDOG_USEC=\(value ?? "(unset)")")
        }
    }
}
