import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Reads a small file whole, refusing one that is bigger than a limit before
/// reading it into memory: the configuration and the secret files are a few
/// hundred bytes, and a file of gigabytes (or `/dev/zero`) named by mistake or
/// by an attacker must not exhaust the daemon's memory.
///
/// Lives with the configuration code because that folder builds on its own
/// (the fuzzing package compiles it as a module); the challenge providers use it too.
struct BoundedFileReader {
    enum Failure: Error, Equatable {
        /// `open`, `fstat` or `read` failed with this errno.
        case system(errno: Int32)
        /// Larger than the limit. `size` is what `fstat` reported for a regular
        /// file, or nil when reading went past the limit (a pipe, a growing file).
        case tooLarge(size: Int?)

        /// `no such file`, `permission denied`, `is 2000000 bytes`, ...
        var reason: String {
            switch self {
            case .system(let number):
                switch number {
                case ENOENT: return "no such file"
                case EACCES, EPERM: return "permission denied"
                case EISDIR: return "it is a directory"
                default: return String(cString: strerror(number))
                }
            case .tooLarge(let size?):
                return "it is \(size) bytes"
            case .tooLarge(nil):
                return "it is larger than the limit"
            }
        }
    }

    /// The most bytes a file may hold.
    let limit: Int

    func read(_ path: String) throws(Failure) -> [UInt8] {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)
        guard descriptor >= 0 else { throw .system(errno: errno) }
        defer { close(descriptor) }

        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw .system(errno: errno) }
        if (status.st_mode & S_IFMT) == S_IFDIR { throw .system(errno: EISDIR) }
        // A regular file's size is known up front: refuse before reading a byte.
        if (status.st_mode & S_IFMT) == S_IFREG, Int(status.st_size) > limit {
            throw .tooLarge(size: Int(status.st_size))
        }

        // Read at most one byte past the limit: enough to tell "too large" for a
        // file whose size stat does not know (or that grew since).
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: min(limit + 1, 64 * 1024))
        while bytes.count <= limit {
            let wanted = min(chunk.count, limit + 1 - bytes.count)
            let count = chunk.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, wanted) }
            if count < 0 {
                if errno == EINTR { continue }
                throw .system(errno: errno)
            }
            if count == 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
        }
        guard bytes.count <= limit else { throw .tooLarge(size: nil) }
        return bytes
    }
}
