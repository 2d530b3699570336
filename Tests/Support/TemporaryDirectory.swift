import Foundation
import Glibc

/// A fresh directory made with `mkdtemp`, removed with everything in it by
/// `remove()` or when the object goes away.
///
/// Set the environment variable `KEEP_TEST_DIRS` (to anything) to keep the
/// directories for a post-mortem; their paths are then printed to stderr.
public final class TemporaryDirectory: @unchecked Sendable {
    /// Absolute path of the directory.
    public let path: String
    private let lock = NSLock()
    private var removed = false

    /// Creates `$TMPDIR/<prefix>.XXXXXX` (or under /tmp), mode 0700.
    public init(prefix: String = "enroll-agent-test") throws {
        let base = ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        var template = Array("\(base)/\(prefix).XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { buffer -> Bool in
            mkdtemp(buffer.baseAddress!) != nil
        }
        guard made else {
            throw TestSupportError.posix(.temporaryDirectory, "mkdtemp under \(base) failed")
        }
        path = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    /// `path/component` (the component may contain further slashes).
    public func appending(_ component: String) -> String {
        "\(path)/\(component)"
    }

    /// The directory as a file URL.
    public var url: URL { URL(fileURLWithPath: path, isDirectory: true) }

    /// Whether removal is disabled by `KEEP_TEST_DIRS`.
    public static var keepsDirectories: Bool {
        ProcessInfo.processInfo.environment["KEEP_TEST_DIRS"] != nil
    }

    /// Deletes the directory tree (idempotent). Honours `KEEP_TEST_DIRS`.
    public func remove() {
        lock.lock()
        defer { lock.unlock() }
        guard !removed else { return }
        removed = true
        if Self.keepsDirectories {
            FileHandle.standardError.write(Data("KEEP_TEST_DIRS: kept \(path)\n".utf8))
            return
        }
        if (try? FileManager.default.removeItem(atPath: path)) == nil {
            // A test may have made a subdirectory read-only (store failure
            // tests); give the owner write access back and try once more.
            chmod(path, 0o700)
            for case let relative as String in FileManager.default.enumerator(atPath: path) ?? .init() {
                var info = stat()
                let full = "\(path)/\(relative)"
                if lstat(full, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR { chmod(full, 0o700) }
            }
            try? FileManager.default.removeItem(atPath: path)
        }
    }

    deinit { remove() }
}
