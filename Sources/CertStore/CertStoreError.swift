#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// The one error type of the CertStore module.
///
/// Equality compares the code only (as swift-certificates' `CertificateError` does), so
/// callers and tests can match on "what kind" without depending on message wording.
/// The message names the path involved and says what to do next.
public struct CertStoreError: Error, Equatable, CustomStringConvertible, LocalizedError {
    /// What went wrong, coarse enough to branch on.
    public enum Code: String, Sendable, Equatable {
        /// A filesystem operation failed (read-only disk, full disk, permissions, …).
        case fileSystem
        /// `state.json` exists but cannot be decoded. See `ProfileStore.moveCorruptStateAside(now:)`.
        case corruptState
        /// The `live` symlink or its generation is missing files or points somewhere unexpected.
        case brokenGeneration
        /// `rollback()` was asked for but there is no previous generation to return to.
        case noPreviousGeneration
        /// An install from the pending key was asked for but no pending key is stored.
        case noPendingKey
        /// The bundle handed to `install` is unusable (e.g. empty certificate or key).
        case invalidBundle
        /// Taking the per-profile lock failed for a reason other than "busy".
        case lockFailed
        /// Another process kept the per-profile lock for the whole bounded wait; the message
        /// names it when /proc/locks shows it.
        case lockBusy
        /// A method that needs the lock was handed a `ProfileLock` that is released or that
        /// belongs to another store.
        case lockNotHeld
        /// The store was opened with `ProfileStore(readingFrom:)` and a method tried to change it.
        case openedReadOnly
        /// Running as root on a store (or state_dir) that belongs to another user: root
        /// refuses to modify it, so that the files stay the owner's and root never acts on
        /// paths the owner controls.
        case ownedByAnotherUser
    }

    public let code: Code
    /// The file or directory involved, when there is one.
    public let path: String?
    /// `errno` of the failing system call, when there is one.
    public let systemError: Int32?
    /// A sentence for a person: what failed, where, and what to do.
    public let message: String

    public init(_ code: Code, path: String?, systemError: Int32? = nil, message: String) {
        self.code = code
        self.path = path
        self.systemError = systemError
        self.message = message
    }

    public static func == (lhs: CertStoreError, rhs: CertStoreError) -> Bool {
        lhs.code == rhs.code
    }

    public var description: String { message }
    public var errorDescription: String? { message }

    /// A failed system call on `path`: "cannot write /x: Read-only file system; <hint>".
    static func system(_ verb: String, _ path: String, errno code: Int32) -> CertStoreError {
        let reason = String(cString: strerror(code))
        return CertStoreError(.fileSystem, path: path, systemError: code,
                              message: "cannot \(verb) \(path): \(reason); \(hint(for: code))")
    }

    /// Root refusing to modify `folder`, which belongs to `owner`; `chown -R root: <handOver>`
    /// would make it root's.
    static func ownedByAnotherUser(_ folder: String, owner: uid_t, handOver: String) -> CertStoreError {
        let name = userName(of: owner)
        let who = name.map { "\($0) (uid \(owner))" } ?? "uid \(owner)"
        // sudo takes "#uid" for a user without a name.
        let sudoUser = name ?? "'#\(owner)'"
        return CertStoreError(.ownedByAnotherUser, path: folder,
                              message: "refusing to modify \(folder) as root: it belongs to \(who), and root does not write into a store another user controls; run the agent as that user (e.g. `sudo -u \(sudoUser) enroll-agent enroll`, or `systemctl start enroll-agent-renew.service`), or hand the store to root with `chown -R root: \(handOver)`; `enroll-agent status` works as root as it is")
    }

    private static func hint(for code: Int32) -> String {
        switch code {
        case EROFS, EACCES, EPERM:
            return "check that the state_dir exists and is writable by the agent (permissions, read-only mount)"
        case ENOSPC, EDQUOT:
            return "free disk space (or quota) on the filesystem holding the state_dir"
        case ENOENT, ENOTDIR:
            return "check that the state_dir path exists and is a directory"
        default:
            return "check the state_dir and the filesystem holding it"
        }
    }
}
