import Foundation

/// The one error type of TestSupport (besides `PeerUnavailable`, which tests
/// catch separately to decide between skipping and failing).
///
/// Carries what went wrong and, where it helps, the captured output of the
/// child process involved, so a failing test explains itself.
public struct TestSupportError: Error, CustomStringConvertible, Equatable {
    /// What kind of failure this is; tests may compare on it.
    public enum Code: String, Sendable, Equatable {
        case temporaryDirectory
        case spawnFailed
        case processTimedOut
        case processFailed
        case socketFailed
        case peerNotReady
        case httpClientFailed
    }

    public let code: Code
    /// What happened and what to look at next.
    public let reason: String

    public init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    public var description: String { "TestSupportError.\(code.rawValue): \(reason)" }

    static func posix(_ code: Code, _ what: String, errno savedErrno: Int32 = errno) -> TestSupportError {
        TestSupportError(code, "\(what): \(String(cString: strerror(savedErrno))) (errno \(savedErrno))")
    }
}
