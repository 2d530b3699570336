import Foundation
import Glibc

/// A peer program a test needs (scepserver, scepclient, swtpm, …) is missing.
///
/// TestSupport does not import XCTest, so it cannot skip a test itself. The
/// rule of this project: without the peer, a test may skip only when the
/// environment variable `CI` is not `"true"`; in CI it must fail. Tests
/// convert the error like this:
///
/// ```swift
/// func requirePeer(_ name: String) throws -> String {
///     do {
///         return try PeerRequirement.require(binary: name)
///     } catch let missing as PeerUnavailable where missing.maySkip {
///         throw XCTSkip(missing.description)
///     }
///     // In CI, `PeerUnavailable` propagates and the test fails.
/// }
/// ```
public struct PeerUnavailable: Error, CustomStringConvertible, Sendable {
    /// The binary name or path that was looked for.
    public let binary: String
    /// Where it was looked for.
    public let searched: [String]
    /// False when `CI=true`: the test must fail instead of skipping.
    public let maySkip: Bool

    public var description: String {
        let place = searched.isEmpty ? "" : " (searched \(searched.joined(separator: ":")))"
        if maySkip {
            return "peer '\(binary)' is not installed\(place); skipping. Install it to run this test."
        }
        return "peer '\(binary)' is required in CI (CI=true) but is not installed\(place); "
            + "the test fails rather than skips. Install the package that provides it."
    }
}

/// Finds peer programs for tests; see `PeerUnavailable` for the skip/fail rule.
public enum PeerRequirement {
    /// True when the environment variable `CI` is exactly `"true"`.
    public static var isCI: Bool {
        ProcessInfo.processInfo.environment["CI"] == "true"
    }

    /// Absolute path of an executable `binary`: a path containing "/" is
    /// checked as is; a bare name is searched on PATH (plus /usr/sbin, /sbin,
    /// which a test runner's PATH may lack).
    ///
    /// - Throws: `PeerUnavailable`, with `maySkip` false when `CI=true`.
    @discardableResult
    public static func require(binary: String) throws -> String {
        if let found = locate(binary) { return found }
        throw PeerUnavailable(binary: binary, searched: binary.contains("/") ? [] : searchDirectories,
                              maySkip: !isCI)
    }

    /// Like `require`, for several binaries at once (all must exist).
    @discardableResult
    public static func require(binaries: [String]) throws -> [String] {
        try binaries.map { try require(binary: $0) }
    }

    /// Absolute path of an executable, or nil.
    public static func locate(_ binary: String) -> String? {
        if binary.contains("/") {
            return isExecutableFile(binary) ? binary : nil
        }
        for directory in searchDirectories {
            let candidate = "\(directory)/\(binary)"
            if isExecutableFile(candidate) { return candidate }
        }
        return nil
    }

    static var searchDirectories: [String] {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        var directories = path.split(separator: ":").map(String.init).filter { !$0.isEmpty }
        for extra in ["/usr/sbin", "/sbin"] where !directories.contains(extra) {
            directories.append(extra)
        }
        return directories
    }

    private static func isExecutableFile(_ path: String) -> Bool {
        var info = stat()
        guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return false }
        return access(path, X_OK) == 0
    }
}
