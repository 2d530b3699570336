#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An exclusive flock(2) on `<profile>/lock`, so the daemon, the timer and a manual run
/// never enroll or install for the same profile at once.
///
/// flock belongs to the open file description: the kernel releases it when the holder
/// exits or is killed, so a stale lock file never blocks anyone. The file holds only the
/// holder's pid, for people looking at it. Released by `release()` or on deinit.
///
/// flock locks are per open file description, not per process: taking the lock twice in
/// one process through two `ProfileLock`s blocks (or reports busy) like another process would.
public final class ProfileLock {
    /// The lock file.
    public let path: String
    private var descriptor: Int32?

    /// Opens (creating 0644 if missing) and locks `path`.
    /// Returns nil when `wait` is false and another holder has the lock.
    static func acquire(path: String, wait: Bool) throws -> ProfileLock? {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o644)
        guard fd >= 0 else {
            let failure = errno
            throw CertStoreError(.lockFailed, path: path, systemError: failure,
                                 message: CertStoreError.system("open the lock file", path, errno: failure).message)
        }
        let operation = LOCK_EX | (wait ? 0 : LOCK_NB)
        while flock(fd, operation) != 0 {
            let failure = errno
            if failure == EINTR { continue }
            close(fd)
            if failure == EWOULDBLOCK { return nil }
            throw CertStoreError(.lockFailed, path: path, systemError: failure,
                                 message: CertStoreError.system("lock", path, errno: failure).message)
        }
        let lock = ProfileLock(path: path, descriptor: fd)
        lock.recordHolder()
        return lock
    }

    private init(path: String, descriptor: Int32) {
        self.path = path
        self.descriptor = descriptor
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

    /// Writes "<pid>\n" for people inspecting the file; failures are irrelevant to locking.
    private func recordHolder() {
        guard let fd = descriptor else { return }
        let text = Array("\(getpid())\n".utf8)
        guard ftruncate(fd, 0) == 0 else { return }
        _ = text.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
    }
}
