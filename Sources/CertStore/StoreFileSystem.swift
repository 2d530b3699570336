#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What kind of directory entry a path names (without following a final symlink).
public enum StoreItemKind: Sendable, Equatable {
    case file, directory, symlink, other
}

/// The few filesystem primitives the store is built from.
///
/// A seam so tests can inject failures (a full or read-only disk at the Nth step, or a
/// "kill" after which nothing more happens) and check that the live generation survives.
/// Every method throws `CertStoreError` with the path and a hint.
public protocol StoreFileSystem: Sendable {
    /// Replaces `path` atomically with `contents`: a temp file in the same directory created
    /// with O_EXCL and the final `mode` from the start, written, fsynced, renamed over `path`,
    /// then the directory fsynced. Readers see the old file or the new one, never a part.
    func writeFile(_ path: String, contents: [UInt8], mode: mode_t) throws
    /// The whole file, or nil when it does not exist.
    func readFile(_ path: String) throws -> [UInt8]?
    /// Creates a directory with exactly `mode`; an existing directory is left as is.
    func makeDirectory(_ path: String, mode: mode_t) throws
    /// rename(2): atomic replacement of `destination` (a file, symlink or empty directory).
    func rename(_ source: String, to destination: String) throws
    /// Creates a symlink at `path` pointing to `target` (stored verbatim, may be relative).
    func createSymlink(at path: String, target: String) throws
    /// The target of the symlink at `path`, or nil when nothing exists there.
    func readSymlink(_ path: String) throws -> String?
    /// Removes a file, a symlink or an empty directory; a missing path is not an error.
    func removeItem(_ path: String) throws
    /// Removes `relativePath` under `root` and, when it is a directory, everything below it;
    /// a missing path is not an error. Follows no symlink anywhere: `root`, the directories
    /// between it and the entry, and every entry in the walk are opened with O_NOFOLLOW,
    /// and a symlink met on the way is removed itself. Safe while another process renames
    /// entries in the tree.
    func removeTree(_ relativePath: String, under root: String) throws
    /// Entry names in a directory (without "." and ".."); empty when it does not exist.
    func contentsOfDirectory(_ path: String) throws -> [String]
    /// lstat(2): the kind of entry at `path`, or nil when nothing exists there.
    func itemKind(_ path: String) throws -> StoreItemKind?
    /// lstat(2): the uid owning the entry at `path`, or nil when nothing exists there.
    func owner(of path: String) throws -> uid_t?
    /// fsync(2) on a directory, so that renames and creations inside it are durable.
    func syncDirectory(_ path: String) throws
}

/// The real implementation on POSIX system calls.
public struct POSIXFileSystem: StoreFileSystem {
    public init() {}

    public func writeFile(_ path: String, contents: [UInt8], mode: mode_t) throws {
        let directory = parentDirectory(of: path)
        let temporary = directory + "/." + lastComponent(of: path) + ".tmp-" + randomSuffix()
        // O_EXCL + O_NOFOLLOW: never write through something planted at the temp name.
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        guard fd >= 0 else { throw CertStoreError.system("create", temporary, errno: errno) }
        var committed = false
        defer {
            if !committed { unlink(temporary) }
        }
        do {
            defer { close(fd) }
            // open() applies the umask; fchmod makes the mode exact before any byte is written.
            guard fchmod(fd, mode) == 0 else { throw CertStoreError.system("set the mode of", temporary, errno: errno) }
            try writeAll(fd, contents, path: temporary)
            guard fsync(fd) == 0 else { throw CertStoreError.system("fsync", temporary, errno: errno) }
        }
        guard posixRename(temporary, path) == 0 else { throw CertStoreError.system("rename into place", path, errno: errno) }
        committed = true
        try syncDirectory(directory)
    }

    public func readFile(_ path: String) throws -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw CertStoreError.system("read", path, errno: errno)
        }
        defer { close(fd) }
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw CertStoreError.system("read", path, errno: errno)
            }
            if count == 0 { return result }
            result.append(contentsOf: buffer[0..<count])
        }
    }

    public func makeDirectory(_ path: String, mode: mode_t) throws {
        if mkdir(path, mode) == 0 {
            // mkdir() applies the umask; make the mode exact.
            guard chmod(path, mode) == 0 else { throw CertStoreError.system("set the mode of", path, errno: errno) }
            return
        }
        let failure = errno
        if failure == EEXIST, try itemKind(path) == .directory { return }
        throw CertStoreError.system("create directory", path, errno: failure)
    }

    public func rename(_ source: String, to destination: String) throws {
        guard posixRename(source, destination) == 0 else {
            throw CertStoreError.system("rename \(source) to", destination, errno: errno)
        }
    }

    public func createSymlink(at path: String, target: String) throws {
        guard symlink(target, path) == 0 else { throw CertStoreError.system("create symlink", path, errno: errno) }
    }

    public func readSymlink(_ path: String) throws -> String? {
        var buffer = [Int8](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink(path, &buffer, buffer.count - 1)
        if count < 0 {
            if errno == ENOENT { return nil }
            throw CertStoreError.system("read symlink", path, errno: errno)
        }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public func removeItem(_ path: String) throws {
        if unlink(path) == 0 { return }
        var failure = errno
        if failure == ENOENT { return }
        if failure == EISDIR || failure == EPERM {
            // Linux reports EISDIR for directories (POSIX allows EPERM).
            if rmdir(path) == 0 { return }
            failure = errno
            if failure == ENOENT { return }
        }
        throw CertStoreError.system("remove", path, errno: failure)
    }

    public func removeTree(_ relativePath: String, under root: String) throws {
        try TreeRemoval.remove(relativePath, under: root)
    }

    public func contentsOfDirectory(_ path: String) throws -> [String] {
        guard let directory = opendir(path) else {
            if errno == ENOENT { return [] }
            throw CertStoreError.system("list", path, errno: errno)
        }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: Int(NAME_MAX) + 1) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    public func itemKind(_ path: String) throws -> StoreItemKind? {
        var info = stat()
        guard lstat(path, &info) == 0 else {
            if errno == ENOENT { return nil }
            throw CertStoreError.system("inspect", path, errno: errno)
        }
        switch info.st_mode & S_IFMT {
        case S_IFREG: return .file
        case S_IFDIR: return .directory
        case S_IFLNK: return .symlink
        default: return .other
        }
    }

    public func owner(of path: String) throws -> uid_t? {
        var info = stat()
        guard lstat(path, &info) == 0 else {
            if errno == ENOENT { return nil }
            throw CertStoreError.system("inspect", path, errno: errno)
        }
        return info.st_uid
    }

    public func syncDirectory(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw CertStoreError.system("open directory", path, errno: errno) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw CertStoreError.system("fsync directory", path, errno: errno) }
    }

    private func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { buffer -> Int in
                guard let base = buffer.baseAddress else { return 0 }
                return write(fd, base + offset, buffer.count - offset)
            }
            if written < 0 {
                if errno == EINTR { continue }
                throw CertStoreError.system("write", path, errno: errno)
            }
            offset += written
        }
    }
}

/// rename(2) under a name that does not collide with `StoreFileSystem.rename`.
private func posixRename(_ source: String, _ destination: String) -> Int32 {
    #if canImport(Glibc)
    return Glibc.rename(source, destination)
    #else
    return Darwin.rename(source, destination)
    #endif
}

/// Random hex for temp and staging names; uniqueness, not secrecy, is what matters.
func randomSuffix() -> String {
    let value = UInt64.random(in: .min ... .max)
    let hex = String(value, radix: 16)
    return String(repeating: "0", count: 16 - hex.count) + hex
}

func parentDirectory(of path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return "." }
    if slash == path.startIndex { return "/" }
    return String(path[..<slash])
}

func lastComponent(of path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return path }
    return String(path[path.index(after: slash)...])
}
