import Foundation
import Glibc

/// Everything observable about a directory tree without following symlinks: each entry's
/// type, mode, owner, modification time and content (or link target), keyed by relative
/// path ("." for the root). Two equal snapshots mean nothing in the tree was created,
/// removed or changed.
public struct TreeSnapshot: Equatable, CustomStringConvertible {
    public struct Entry: Equatable {
        public let type: mode_t
        public let mode: mode_t
        public let owner: uid_t
        public let modifiedSeconds: Int
        public let modifiedNanoseconds: Int
        public let content: Data?
    }

    public private(set) var entries: [String: Entry] = [:]

    public init(_ root: String) {
        add(root, relative: ".")
    }

    private mutating func add(_ path: String, relative: String) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        let type = info.st_mode & S_IFMT
        var content: Data?
        if type == S_IFREG { content = FileManager.default.contents(atPath: path) }
        if type == S_IFLNK {
            content = (try? FileManager.default.destinationOfSymbolicLink(atPath: path)).map { Data($0.utf8) }
        }
        entries[relative] = Entry(type: type, mode: info.st_mode & 0o7777, owner: info.st_uid,
                                  modifiedSeconds: info.st_mtim.tv_sec, modifiedNanoseconds: info.st_mtim.tv_nsec,
                                  content: content)
        guard type == S_IFDIR else { return }
        for name in (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [] {
            add(path + "/" + name, relative: relative == "." ? name : relative + "/" + name)
        }
    }

    public var description: String { entries.keys.sorted().joined(separator: ", ") }
}
