#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// An exclusive flock(2) on `<profile>/lock`, so the daemon, the timer and a manual run
/// never enroll or install for the same profile at once.
///
/// flock belongs to the open file description: the kernel releases it when the holder
/// exits or is killed, so a stale lock file never blocks anyone. The file holds only the
/// holder's pid, for people looking at it. Released by `release()` or on deinit.
///
/// The file is 0600: flock needs only read access, so anyone who could open the file
/// could hold the lock and stop renewals. Waiting is bounded for the same reason, and a
/// wait that runs out names the holder.
///
/// flock locks are per open file description, not per process: taking the lock twice in
/// one process through two `ProfileLock`s blocks (or reports busy) like another process would.
///
/// A held `ProfileLock` is also the proof that methods such as
/// `ProfileStore.cleanUpLeftovers(holding:)` ask for: only `acquire` creates one.
public final class ProfileLock {
    /// How long `ProfileStore.lock(wait:)` waits by default. A run holds the lock for
    /// seconds, unless it polls a PENDING request (up to `poll_max_wait`); five minutes
    /// covers the first and turns the second into an error that names the holder.
    public static let defaultWait: Duration = .seconds(300)
    /// The longest pause between two tries while waiting: how late a waiter may notice
    /// that the lock was released.
    static let longestPause: Duration = .milliseconds(50)
    static let fileMode: mode_t = 0o600

    /// The lock file.
    public let path: String
    private var descriptor: Int32?

    /// Tries once: the lock, or nil when another holder has it.
    static func tryAcquire(path: String) throws -> ProfileLock? {
        let fd = try openLockFile(path)
        guard try tryLock(fd, path: path) else {
            close(fd)
            return nil
        }
        return ProfileLock(path: path, descriptor: fd)
    }

    /// Waits up to `wait` for the lock. Throws `.lockBusy` naming the holder when the wait
    /// runs out, `CancellationError` when the current task is cancelled meanwhile.
    ///
    /// Polls with LOCK_NB rather than blocking in flock(2): a blocked flock can be ended only
    /// by a signal, and the bound must hold even when the holder never lets go.
    static func acquire(path: String, wait: Duration) throws -> ProfileLock {
        let fd = try openLockFile(path)
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: wait)
        var pause: Duration = .milliseconds(1)
        while true {
            if try tryLock(fd, path: path) { return ProfileLock(path: path, descriptor: fd) }
            if Task.isCancelled {
                close(fd)
                throw CancellationError()
            }
            let remaining = deadline - clock.now
            guard remaining > .zero else {
                let error = busy(path: path, descriptor: fd, waited: wait)
                close(fd)
                throw error
            }
            sleep(for: min(pause, remaining))
            pause = min(pause * 2, longestPause)
        }
    }

    private init(path: String, descriptor: Int32) {
        self.path = path
        self.descriptor = descriptor
        recordHolder()
    }

    deinit { release() }

    /// Whether this object still holds the lock.
    public var isHeld: Bool { descriptor != nil }

    /// Releases the lock; calling it again does nothing.
    public func release() {
        guard let fd = descriptor else { return }
        descriptor = nil
        flock(fd, LOCK_UN)
        close(fd)
    }

    /// Opens (creating 0600 if missing) the lock file, and makes an existing one that we own
    /// 0600 (older versions created it 0644).
    private static func openLockFile(_ path: String) throws -> Int32 {
        // O_NOFOLLOW: never create, chmod or lock through a symlink planted at the name.
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, fileMode)
        guard fd >= 0 else { throw failure("open the lock file", path, errno: errno) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let code = errno
            close(fd)
            throw failure("inspect the lock file", path, errno: code)
        }
        guard info.st_mode & S_IFMT == S_IFREG else {
            close(fd)
            throw CertStoreError(.lockFailed, path: path,
                                 message: "cannot use the lock file \(path): it is not a regular file; remove it (the next run creates it again)")
        }
        if info.st_uid == geteuid() && info.st_mode & 0o7777 != fileMode {
            guard fchmod(fd, fileMode) == 0 else {
                let code = errno
                close(fd)
                throw failure("set the mode of the lock file", path, errno: code)
            }
        }
        return fd
    }

    /// One LOCK_NB try: true when taken, false when another holder has it.
    private static func tryLock(_ fd: Int32, path: String) throws -> Bool {
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let code = errno
            if code == EINTR { continue }
            if code == EWOULDBLOCK { return false }
            close(fd)
            throw failure("lock", path, errno: code)
        }
        return true
    }

    /// The error for a wait that ran out, naming whoever the kernel says holds the lock.
    private static func busy(path: String, descriptor: Int32, waited: Duration) -> CertStoreError {
        let holders = LockHolder.holders(ofFileOpenAs: descriptor)
        let who: String
        if holders.isEmpty {
            let recorded = (try? String(contentsOfFile: path, encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines)
            who = "by a process this agent cannot see (/proc/locks does not name it"
                + (recorded.map { $0.isEmpty ? "" : "; the last enroll-agent run to take it was pid \($0)" } ?? "") + ")"
        } else {
            who = "by " + holders.map(\.description).joined(separator: " and ")
        }
        return CertStoreError(.lockBusy, path: path,
                              message: "the lock \(path) is still held after \(describe(waited)) \(who); another enroll-agent run may still be working (one polling a pending request holds it up to poll_max_wait): try again once it is done, or stop that process if it is not enroll-agent")
    }

    private static func failure(_ verb: String, _ path: String, errno code: Int32) -> CertStoreError {
        CertStoreError(.lockFailed, path: path, systemError: code,
                       message: CertStoreError.system(verb, path, errno: code).message)
    }

    /// Writes "<pid>\n" for people inspecting the file; failures are irrelevant to locking.
    private func recordHolder() {
        guard let fd = descriptor else { return }
        let text = Array("\(getpid())\n".utf8)
        guard ftruncate(fd, 0) == 0 else { return }
        _ = text.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
    }
}

/// "300 s", or "250 ms" below a second or for fractions.
func describe(_ duration: Duration) -> String {
    let (seconds, attoseconds) = duration.components
    if attoseconds == 0 { return "\(seconds) s" }
    return "\(seconds * 1000 + attoseconds / 1_000_000_000_000_000) ms"
}

/// The pause between two tries for the lock; the only sleep in the store, bounded by the
/// caller's wait.
private func sleep(for duration: Duration) {
    let (seconds, attoseconds) = duration.components
    var request = timespec(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
    var remaining = timespec()
    while nanosleep(&request, &remaining) != 0 && errno == EINTR {
        request = remaining
    }
}
