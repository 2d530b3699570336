#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import XCTest
@testable import CertStore

/// A fresh directory under the system temp dir, removed by `remove()` (call from tearDown).
final class ScratchDirectory {
    let path: String

    init(_ label: String = "certstore") throws {
        var template = Array((NSTemporaryDirectory() + "/\(label)-XXXXXX").utf8CString)
        guard let created = mkdtemp(&template) else {
            throw CertStoreError.system("create temp directory", NSTemporaryDirectory(), errno: errno)
        }
        path = String(cString: created)
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// A bundle whose every file names its generation, so a reader can tell whether a
/// certificate and a key belong together.
func taggedBundle(_ tag: String, chain: Bool = true) -> CertificateBundle {
    CertificateBundle(
        certificatePEM: "-----BEGIN CERTIFICATE-----\ncert-\(tag)\n-----END CERTIFICATE-----\n",
        chainPEM: chain ? "-----BEGIN CERTIFICATE-----\nchain-\(tag)\n-----END CERTIFICATE-----\n" : "",
        keyPEM: "-----BEGIN PRIVATE KEY-----\nkey-\(tag)\n-----END PRIVATE KEY-----\n")
}

/// The tag a file written by `taggedBundle` carries ("cert-7" → "7"), nil if none.
func tag(in text: String, kind: String) -> String? {
    for line in text.split(separator: "\n") where line.hasPrefix(kind + "-") {
        return String(line.dropFirst(kind.count + 1))
    }
    return nil
}

func permissions(_ path: String) -> mode_t? {
    var info = stat()
    guard stat(path, &info) == 0 else { return nil }
    return info.st_mode & 0o7777
}

func readText(_ path: String) -> String? {
    guard let data = FileManager.default.contents(atPath: path) else { return nil }
    return String(decoding: data, as: UTF8.self)
}

func symlinkTarget(_ path: String) -> String? {
    try? FileManager.default.destinationOfSymbolicLink(atPath: path)
}

/// Wraps the real filesystem and fails a chosen mutating operation, to simulate a full or
/// read-only disk (`.once`) or a process killed at that instant (`.killed`: that operation
/// and every later mutation fail, so nothing more reaches the disk; a killed file write
/// leaves a half-written temp file behind as a real kill could).
/// `@unchecked Sendable`: used from one test thread at a time.
final class FaultyFileSystem: StoreFileSystem, @unchecked Sendable {
    enum Failure { case once, killed }

    private let real = POSIXFileSystem()
    private(set) var mutations = 0
    private(set) var triggered = false
    private var failAt: Int?
    private var failure = Failure.once

    /// Fails the mutation `steps` operations from now (0 = the next one).
    func fail(afterSteps steps: Int, as failure: Failure) {
        failAt = mutations + steps
        self.failure = failure
        triggered = false
    }

    private func mutation(_ verb: String, _ path: String, partialWrite: (() -> Void)? = nil) throws {
        defer { mutations += 1 }
        guard let failAt else { return }
        let dead = failure == .killed && mutations > failAt
        if mutations == failAt || dead {
            if mutations == failAt && failure == .killed { partialWrite?() }
            triggered = true
            throw CertStoreError.system(verb, path, errno: failure == .killed ? EINTR : ENOSPC)
        }
    }

    func writeFile(_ path: String, contents: [UInt8], mode: mode_t) throws {
        try mutation("write", path, partialWrite: {
            let temporary = parentDirectory(of: path) + "/." + lastComponent(of: path) + ".tmp-killed"
            _ = FileManager.default.createFile(atPath: temporary, contents: Data(contents.prefix(contents.count / 2)),
                                           attributes: [.posixPermissions: Int(mode)])
        })
        try real.writeFile(path, contents: contents, mode: mode)
    }

    func readFile(_ path: String) throws -> [UInt8]? { try real.readFile(path) }

    func makeDirectory(_ path: String, mode: mode_t) throws {
        try mutation("create directory", path)
        try real.makeDirectory(path, mode: mode)
    }

    func rename(_ source: String, to destination: String) throws {
        try mutation("rename to", destination)
        try real.rename(source, to: destination)
    }

    func createSymlink(at path: String, target: String) throws {
        try mutation("create symlink", path)
        try real.createSymlink(at: path, target: target)
    }

    func readSymlink(_ path: String) throws -> String? { try real.readSymlink(path) }

    func removeItem(_ path: String) throws {
        try mutation("remove", path)
        try real.removeItem(path)
    }

    func removeTree(_ relativePath: String, under root: String) throws {
        try mutation("remove", root + "/" + relativePath)
        try real.removeTree(relativePath, under: root)
    }

    func contentsOfDirectory(_ path: String) throws -> [String] { try real.contentsOfDirectory(path) }

    func itemKind(_ path: String) throws -> StoreItemKind? { try real.itemKind(path) }

    func owner(of path: String) throws -> uid_t? { try real.owner(of: path) }

    func syncDirectory(_ path: String) throws {
        try mutation("fsync directory", path)
        try real.syncDirectory(path)
    }
}

/// Asserts that `<profile>/live` resolves to a complete generation holding `tag`'s bundle
/// with the right modes.
func assertLive(_ profile: String, holds tag: String, file: StaticString = #filePath, line: UInt = #line) {
    let expected = taggedBundle(tag)
    let live = profile + "/live"
    XCTAssertEqual(readText(live + "/cert.pem"), expected.certificatePEM, "live cert", file: file, line: line)
    XCTAssertEqual(readText(live + "/chain.pem"), expected.chainPEM, "live chain", file: file, line: line)
    XCTAssertEqual(readText(live + "/fullchain.pem"), expected.fullchainPEM, "live fullchain", file: file, line: line)
    XCTAssertEqual(readText(live + "/key.pem"), expected.keyPEM, "live key", file: file, line: line)
    XCTAssertEqual(permissions(live + "/key.pem"), 0o600, "key mode", file: file, line: line)
    for name in ["cert.pem", "chain.pem", "fullchain.pem"] {
        XCTAssertEqual(permissions(live + "/" + name), 0o644, "\(name) mode", file: file, line: line)
    }
}

/// Writes a file the way a test sets up a scenario (not through the store).
func plant(_ text: String, at path: String, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(text.utf8)),
                  "could not create \(path)", file: file, line: line)
}

