import Foundation
import TestSupport
import XCTest

/// Runs the real, built `enroll-agent` binary the way an administrator does:
/// a config file on disk, `--config PATH`, stdout/stderr/exit code captured.
///
/// ```swift
/// let run = try AgentProcess.run(arguments: ["enroll"], config: profile.toml)
/// XCTAssertEqual(run.exitCode, 0, run.transcript)
/// ```
enum AgentProcess {
    /// Set this environment variable to an absolute path to test another build
    /// of the binary (e.g. a release build).
    static let binaryOverrideVariable = "ENROLL_AGENT_BINARY"

    /// Runs `enroll-agent <arguments> [--config <file>]` to completion.
    ///
    /// - Parameters:
    ///   - arguments: subcommand and options, e.g. `["status", "--json"]`.
    ///   - config: TOML text; when given it is written to a fresh 0600 file
    ///     and `--config <file>` is appended to `arguments`.
    ///   - environment: added to the test's environment for the child (put
    ///     secrets here, never in `arguments`).
    ///   - timeout: the run is killed and the call throws after this many seconds.
    static func run(
        arguments: [String], config: String? = nil, environment: [String: String] = [:],
        timeout: TimeInterval = 180
    ) throws -> AgentRun {
        let executable = try locateBinary()
        var fullArguments = arguments
        var configDirectory: TemporaryDirectory?
        if let config {
            let directory = try TemporaryDirectory(prefix: "agent-config")
            let path = directory.appending("config.toml")
            try AgentTestFiles.writeSecret(config, to: path)
            fullArguments += ["--config", path]
            configDirectory = directory
        }
        defer { configDirectory?.remove() }
        let result = try ChildProcess.run(executable: executable, arguments: fullArguments,
                                          extraEnvironment: environment, timeout: timeout)
        return AgentRun(arguments: fullArguments, result: result)
    }

    /// The `enroll-agent` executable SwiftPM built next to the test bundle.
    ///
    /// On Linux `swift test` runs `<build>/debug/<package>PackageTests.xctest`
    /// itself, so `Bundle.main.bundlePath` and `arguments[0]`'s directory are
    /// both `<build>/debug`; on macOS the bundle sits one level further in
    /// (`….xctest/Contents/MacOS`), hence the parent directories too.
    static func locateBinary() throws -> String {
        if let override = ProcessInfo.processInfo.environment[binaryOverrideVariable], !override.isEmpty {
            guard FileManager.default.isExecutableFile(atPath: override) else {
                throw AgentProcessError("\(binaryOverrideVariable)=\(override) is not an executable file")
            }
            return override
        }
        let candidates = candidateDirectories().map { $0 + "/enroll-agent" }
        if let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) {
            return found
        }
        throw AgentProcessError("""
            the built enroll-agent binary was not found (looked at \(candidates.joined(separator: ", "))); \
            run `swift build --build-tests` first or set \(binaryOverrideVariable)
            """)
    }

    private static func candidateDirectories() -> [String] {
        var directories: [String] = []
        func add(_ path: String) {
            let standardized = (path as NSString).standardizingPath
            if !standardized.isEmpty, !directories.contains(standardized) { directories.append(standardized) }
        }
        let bundle = Bundle.main.bundlePath
        add(bundle)
        add((bundle as NSString).deletingLastPathComponent)
        if let argument0 = ProcessInfo.processInfo.arguments.first, argument0.contains("/") {
            let absolute = argument0.hasPrefix("/") ? argument0 : FileManager.default.currentDirectoryPath + "/" + argument0
            let directory = (absolute as NSString).deletingLastPathComponent
            add(directory)
            add((directory as NSString).deletingLastPathComponent)
        }
        for bundle in Bundle.allBundles where bundle.bundlePath.hasSuffix(".xctest") {
            add((bundle.bundlePath as NSString).deletingLastPathComponent)
        }
        return directories
    }
}

/// One finished `enroll-agent` run.
struct AgentRun {
    /// The arguments it ran with (after argv[0]), `--config <file>` included.
    let arguments: [String]
    let result: ChildProcessResult

    /// The exit code, or nil when a signal ended it.
    var exitCode: Int32? {
        if case .exited(let code) = result.status { return code }
        return nil
    }

    var standardOutput: String { result.output }
    var standardError: String { result.errorOutput }

    /// Command, status and both streams: for assertion messages.
    var transcript: String {
        """
        enroll-agent \(arguments.joined(separator: " ")) → \(result.status)
        --- stdout ---
        \(standardOutput)
        --- stderr ---
        \(standardError)
        """
    }

    /// Fails the test when `secret` appears anywhere in stdout or stderr.
    /// The message never repeats the secret itself.
    func assertDoesNotLeak(_ secret: String, _ what: String = "the challenge",
                           file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertFalse(secret.isEmpty, "an empty secret proves nothing", file: file, line: line)
        XCTAssertFalse(standardOutput.contains(secret),
                       "\(what) appears in stdout of enroll-agent \(arguments.first ?? "")", file: file, line: line)
        XCTAssertFalse(standardError.contains(secret),
                       "\(what) appears in stderr of enroll-agent \(arguments.first ?? "")", file: file, line: line)
    }

    /// stdout parsed as one JSON object (`status --json`).
    func jsonObject() throws -> [String: Any] {
        let data = Data(standardOutput.utf8)
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw AgentProcessError("stdout is not a JSON object: \(standardOutput)")
        }
        return object
    }
}

/// A profile for an agent config pointed at a test SCEP server, rendered as
/// TOML with the key names of DESIGN.md's config contract.
struct AgentTestProfile {
    var name = "device"
    var scepURL: String
    var caPinFile: String
    var challengeFile: String
    var subject = "CN={{UserPrincipalName}},O=Example"
    var sanUPN = ["{{UserPrincipalName}}"]
    var keyStorage = "software"
    var keyBits: Int?
    var tcti: String?
    var variables = ["UserPrincipalName": "host01@example.com"]
    /// Further `key = value` lines for the profile table, written verbatim.
    var extraLines: [String] = []

    /// The whole config file: `state_dir` plus this one profile.
    func configText(stateDirectory: String) -> String {
        var lines = ["state_dir = \(quoted(stateDirectory))", "", "[[profile]]",
                     "name = \(quoted(name))",
                     "scep_url = \(quoted(scepURL))",
                     "ca_pin_file = \(quoted(caPinFile))",
                     "subject = \(quoted(subject))",
                     "san_upn = [\(sanUPN.map(quoted).joined(separator: ", "))]",
                     "key_storage = \(quoted(keyStorage))"]
        if let keyBits { lines.append("key_bits = \(keyBits)") }
        if let tcti { lines.append("tcti = \(quoted(tcti))") }
        lines += extraLines
        lines += ["", "[profile.challenge]", "source = \"file\"", "file = \(quoted(challengeFile))",
                  "", "[profile.variables]"]
        lines += variables.sorted { $0.key < $1.key }.map { "\($0.key) = \(quoted($0.value))" }
        return lines.joined(separator: "\n") + "\n"
    }

    /// A TOML basic string.
    private func quoted(_ value: String) -> String {
        var escaped = ""
        for character in value.unicodeScalars {
            switch character {
            case "\\": escaped += "\\\\"
            case "\"": escaped += "\\\""
            case "\n": escaped += "\\n"
            case "\t": escaped += "\\t"
            default: escaped.unicodeScalars.append(character)
            }
        }
        return "\"\(escaped)\""
    }
}

/// Files the agent reads in tests.
enum AgentTestFiles {
    /// Writes `text` to `path` with mode 0600 from the start (never briefly
    /// world-readable: the agent refuses readable challenge files).
    static func writeSecret(_ text: String, to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw AgentProcessError("cannot create \(path): errno \(errno)") }
        defer { close(fd) }
        guard fchmod(fd, 0o600) == 0 else { throw AgentProcessError("cannot chmod \(path): errno \(errno)") }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count else { throw AgentProcessError("short write to \(path)") }
    }
}

/// A helper step around the agent binary went wrong (not found, bad output).
struct AgentProcessError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
