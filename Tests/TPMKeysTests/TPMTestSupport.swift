import Foundation
import TestSupport
import XCTest

/// Peers and tools the TPM tests use: swtpm, tpm2-tools, the openssl CLI
/// (with the tpm2-openssl provider). Missing peers skip the test unless
/// `CI=true`, where they fail it (see `PeerRequirement`).
enum TPMTestPeers {
    /// A fresh swtpm; XCTSkip when it is not installed and not in CI.
    static func startSwtpm() throws -> SwtpmProcess {
        try skippingUnlessCI { try SwtpmProcess.start() }
    }

    /// Path of a required tool; XCTSkip when missing and not in CI.
    static func require(_ binary: String) throws -> String {
        try skippingUnlessCI { try PeerRequirement.require(binary: binary) }
    }

    private static func skippingUnlessCI<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let missing as PeerUnavailable where missing.maySkip {
            throw XCTSkip(missing.description)
        }
    }

    /// Runs `openssl` with `arguments`; fails the test (throws) on a non-zero exit.
    @discardableResult
    static func openssl(_ arguments: [String], environment: [String: String] = [:],
                        file: StaticString = #filePath, line: UInt = #line) throws -> ChildProcessResult {
        let result = try ChildProcess.run(executable: try require("openssl"), arguments: arguments,
                                          extraEnvironment: environment, timeout: 60)
        guard result.status.isSuccess else {
            throw TPMTestFailure("openssl \(arguments.joined(separator: " ")) failed (\(result.status)): \(result.errorOutput)\(result.output)")
        }
        return result
    }

    /// Transient handles loaded in the TPM right now, read with
    /// `tpm2_getcap handles-transient` (an independent client: the TPM
    /// connection of the code under test must be closed).
    static func transientHandles(tcti: String) throws -> [String] {
        let result = try ChildProcess.run(executable: try require("tpm2_getcap"),
                                          arguments: ["-T", tcti, "handles-transient"], timeout: 30)
        guard result.status.isSuccess else {
            throw TPMTestFailure("tpm2_getcap handles-transient failed (\(result.status)): \(result.errorOutput)")
        }
        return result.output.split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { $0.hasPrefix("- 0x") }
            .map { String($0.dropFirst(2)) }
    }

    /// Runs a tpm2-tools command against `tcti`; throws on failure.
    @discardableResult
    static func tpm2Tool(_ tool: String, _ arguments: [String], tcti: String, in directory: String) throws -> ChildProcessResult {
        let result = try ChildProcess.run(executable: try require(tool), arguments: arguments,
                                          extraEnvironment: ["TPM2TOOLS_TCTI": tcti],
                                          workingDirectory: directory, timeout: 60)
        guard result.status.isSuccess else {
            throw TPMTestFailure("\(tool) \(arguments.joined(separator: " ")) failed (\(result.status)): \(result.errorOutput)")
        }
        return result
    }

    /// Runs a tpm2-tools command, then `tpm2_flushcontext -t`: without a
    /// resource manager tpm2-tools leaves its objects loaded, and swtpm has
    /// only three slots. Throws when the command fails.
    @discardableResult
    static func tpm2ToolFlushing(_ tool: String, _ arguments: [String], tcti: String, in directory: String) throws -> ChildProcessResult {
        let result = try tpm2Tool(tool, arguments, tcti: tcti, in: directory)
        try tpm2Tool("tpm2_flushcontext", ["-t"], tcti: tcti, in: directory)
        return result
    }

    /// Runs a tpm2-tools command that must fail (e.g. a wrong password),
    /// then flushes transients. Throws when the command succeeds.
    @discardableResult
    static func tpm2ToolExpectingFailure(_ tool: String, _ arguments: [String], tcti: String, in directory: String) throws -> ChildProcessResult {
        let result = try ChildProcess.run(executable: try require(tool), arguments: arguments,
                                          extraEnvironment: ["TPM2TOOLS_TCTI": tcti],
                                          workingDirectory: directory, timeout: 60)
        try tpm2Tool("tpm2_flushcontext", ["-t"], tcti: tcti, in: directory)
        guard !result.status.isSuccess else {
            throw TPMTestFailure("\(tool) \(arguments.joined(separator: " ")) succeeded but was expected to fail")
        }
        return result
    }

    /// TPM2_PT_LOCKOUT_COUNTER: failed authorizations that counted toward
    /// dictionary-attack lockout (swtpm locks out at TPM2_PT_MAX_AUTH_FAIL = 3).
    static func lockoutCounter(tcti: String) throws -> Int {
        let result = try ChildProcess.run(executable: try require("tpm2_getcap"),
                                          arguments: ["-T", tcti, "properties-variable"], timeout: 30)
        guard result.status.isSuccess else {
            throw TPMTestFailure("tpm2_getcap properties-variable failed (\(result.status)): \(result.errorOutput)")
        }
        for line in result.output.split(whereSeparator: \.isNewline) where line.hasPrefix("TPM2_PT_LOCKOUT_COUNTER:") {
            let value = line.dropFirst("TPM2_PT_LOCKOUT_COUNTER:".count).trimmingCharacters(in: .whitespaces)
            if value.hasPrefix("0x"), let counter = Int(value.dropFirst(2), radix: 16) { return counter }
        }
        throw TPMTestFailure("no TPM2_PT_LOCKOUT_COUNTER in tpm2_getcap output: \(result.output)")
    }

    /// Persists at `handle` a storage key that is NOT the SRK of the key-file
    /// convention: it has a password and lacks noDA, so every authorization
    /// attempt with the empty password counts toward lockout.
    static func plantForeignStorageKey(at handle: String, tcti: String, in directory: String) throws {
        try tpm2ToolFlushing("tpm2_createprimary",
                             ["-C", "o", "-G", "ecc256:aes128cfb", "-p", "secret", "-c", "foreign.ctx", "-a",
                              "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|decrypt"],
                             tcti: tcti, in: directory)
        try tpm2ToolFlushing("tpm2_evictcontrol", ["-C", "o", "-c", "foreign.ctx", handle], tcti: tcti, in: directory)
    }

    /// Persists at `handle` the SRK the key-file convention expects (the
    /// template tpm2-openssl re-creates under 0x40000001).
    static func persistStorageRootKey(at handle: String, password: String? = nil, algorithm: String = "ecc256:aes128cfb",
                                      tcti: String, in directory: String) throws {
        try tpm2ToolFlushing("tpm2_createprimary",
                             ["-C", "o", "-G", algorithm, "-c", "srk.ctx", "-a",
                              "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda|restricted|decrypt"]
                                + (password.map { ["-p", $0] } ?? []),
                             tcti: tcti, in: directory)
        try tpm2ToolFlushing("tpm2_evictcontrol", ["-C", "o", "-c", "srk.ctx", handle], tcti: tcti, in: directory)
    }

    /// Removes the persistent object at `handle`.
    static func evict(_ handle: String, tcti: String, in directory: String) throws {
        try tpm2ToolFlushing("tpm2_evictcontrol", ["-C", "o", "-c", handle], tcti: tcti, in: directory)
    }
}

/// A helper step of a TPM test went wrong (tool failed, file missing).
struct TPMTestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A scratch directory for handing bytes to the openssl CLI.
final class TPMScratch {
    let directory: TemporaryDirectory

    init() throws { directory = try TemporaryDirectory(prefix: "tpmkeys-test") }

    func path(_ name: String) -> String { directory.appending(name) }

    @discardableResult
    func write(_ bytes: [UInt8], to name: String) throws -> String {
        let path = path(name)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    @discardableResult
    func write(_ text: String, to name: String) throws -> String {
        try write(Array(text.utf8), to: name)
    }

    func read(_ name: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path(name)) else {
            throw TPMTestFailure("no file \(path(name))")
        }
        return [UInt8](data)
    }
}

/// Random bytes for digests and plaintexts.
func randomBytes(_ count: Int) -> [UInt8] {
    var generator = SystemRandomNumberGenerator()
    return (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
}
