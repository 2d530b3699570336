#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Deletes a directory tree by file descriptor, never following a symlink.
///
/// Whoever owns the store (the service user, its hooks, its challenge command) can rename
/// entries in it at any moment. A walk by path (lstat, then opendir and unlink by name)
/// can be made to descend through a symlink swapped in between the steps, so that a root
/// run deletes files elsewhere. Here every step is relative to a descriptor of a directory
/// that was opened with O_NOFOLLOW|O_DIRECTORY from the store root down, so a swapped-in
/// symlink is only ever unlinked itself: the worst a racing process can do is make the
/// removal fail or leave its own entries behind.
enum TreeRemoval {
    /// The store nests two levels (`generations/<id>/<file>`); anything far deeper was not
    /// made by it, and bounding the depth bounds the descriptors and the stack a planted
    /// tree can consume.
    static let maximumDepth = 16
    /// How often one entry is looked at again when it changes type under us (a directory
    /// swapped for a symlink, entries added) before giving up.
    static let maximumAttempts = 64

    /// Removes `relativePath` (and everything below it) under `root`; a missing path is not
    /// an error. `root` is opened without following a final symlink, and so is every
    /// directory between it and the entry.
    static func remove(_ relativePath: String, under root: String) throws {
        let components = relativePath.split(separator: "/").map(String.init)
        guard let name = components.last, !components.contains(where: { $0 == "." || $0 == ".." }) else {
            throw CertStoreError(.fileSystem, path: root + "/" + relativePath,
                                 message: "cannot remove \(root)/\(relativePath): not a path inside \(root); this is a bug")
        }
        let target = root + "/" + relativePath
        var directory = open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard directory >= 0 else {
            if errno == ENOENT { return }
            throw openFailure(root, removing: target, errno: errno)
        }
        defer { close(directory) }
        var parentPath = root
        for component in components.dropLast() {
            let next = openat(directory, component, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard next >= 0 else {
                if errno == ENOENT { return }
                throw openFailure(parentPath + "/" + component, removing: target, errno: errno)
            }
            close(directory)
            directory = next
            parentPath += "/" + component
        }
        try removeEntry(name, in: directory, path: parentPath + "/" + name, depth: 0)
    }

    /// O_NOFOLLOW|O_DIRECTORY fails with ENOTDIR (or ELOOP) on a symlink: say so.
    private static func openFailure(_ directory: String, removing target: String, errno code: Int32) -> CertStoreError {
        guard code == ENOTDIR || code == ELOOP else { return CertStoreError.system("open directory", directory, errno: code) }
        return CertStoreError(.fileSystem, path: directory, systemError: code,
                              message: "cannot remove \(target): \(directory) is a symlink or a file where the store expects a directory; the store never follows a symlink when it removes files, so remove \(directory) by hand")
    }

    /// Removes the entry `name` of the directory open as `parent`: a directory after its
    /// contents, anything else (a symlink included) with unlinkat.
    private static func removeEntry(_ name: String, in parent: Int32, path: String, depth: Int) throws {
        for _ in 0..<maximumAttempts {
            var info = stat()
            guard fstatat(parent, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else {
                if errno == ENOENT { return }
                throw CertStoreError.system("inspect", path, errno: errno)
            }
            if info.st_mode & S_IFMT != S_IFDIR {
                if unlinkat(parent, name, 0) == 0 { return }
                switch errno {
                case ENOENT: return
                case EISDIR: continue   // replaced by a directory since fstatat: look again
                default: throw CertStoreError.system("remove", path, errno: errno)
                }
            }
            guard depth < maximumDepth else {
                throw CertStoreError(.fileSystem, path: path,
                                     message: "cannot remove \(path): it nests more than \(maximumDepth) directories deep, which the store never does; remove it by hand")
            }
            let child = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard child >= 0 else {
                switch errno {
                case ENOENT: return
                case ELOOP, ENOTDIR: continue   // replaced by a symlink or a file: look again
                default: throw CertStoreError.system("open directory", path, errno: errno)
                }
            }
            try removeContents(of: child, path: path, depth: depth + 1)
            if unlinkat(parent, name, AT_REMOVEDIR) == 0 { return }
            switch errno {
            case ENOENT: return
            case ENOTEMPTY, EEXIST, ENOTDIR: continue   // entries added, or replaced: look again
            default: throw CertStoreError.system("remove directory", path, errno: errno)
            }
        }
        throw CertStoreError(.fileSystem, path: path,
                             message: "cannot remove \(path): it keeps changing while the agent removes it (\(maximumAttempts) attempts); find and stop the process that renames entries in the store")
    }

    /// Removes every entry of the directory open as `directory` (and closes it).
    private static func removeContents(of directory: Int32, path: String, depth: Int) throws {
        guard let stream = fdopendir(directory) else {
            let failure = errno
            close(directory)
            throw CertStoreError.system("list", path, errno: failure)
        }
        defer { closedir(stream) }
        // Names first, then removal: deleting while readdir walks is allowed but leaves it
        // unspecified which entries are still returned.
        var names: [String] = []
        while let entry = readdir(stream) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: Int(NAME_MAX) + 1) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        let descriptor = dirfd(stream)
        for name in names {
            try removeEntry(name, in: descriptor, path: path + "/" + name, depth: depth)
        }
    }
}
