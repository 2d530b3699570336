import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension AgentConfig {
    /// Checks the files and devices the configuration names, on this machine:
    /// pin and TLS CA files exist and hold PEM certificates, challenge and token files
    /// exist and are not world-readable, commands are executable, the TPM device exists
    /// when a TPM key is required. Separate from parsing so unit tests can check the pure part.
    func validateEnvironment() -> [ConfigProblem] {
        var problems: [ConfigProblem] = []
        if let status = FileStatus(path: stateDirectory), !status.isDirectory {
            problems.append(ConfigProblem(line: nil, key: "state_dir",
                                          message: "\(stateDirectory) exists but is not a directory"))
        }
        for profile in profiles {
            problems += EnvironmentCheck(profile: profile).run()
        }
        return problems + permissionProblems(reportReadableSecrets: false)  // EnvironmentCheck reports those as errors
    }
}

/// The filesystem checks for one profile.
private struct EnvironmentCheck {
    let profile: ProfileConfig
    var scope: ConfigScope {
        ConfigScope(profileLabel: "profile \"\(profile.name)\"", keyPrefix: "profile.\(profile.name).")
    }

    func run() -> [ConfigProblem] {
        var problems: [ConfigProblem] = []
        func report(_ key: String, _ message: String, severity: ConfigProblem.Severity = .error) {
            problems.append(scope.problem(key, line: profile.line(of: key), message, severity: severity))
        }

        if let pinFile = profile.caPin.file, let message = certificateFileProblem(pinFile) {
            report("ca_pin_file", message)
        }
        if let tlsCAFile = profile.tlsCAFile, let message = certificateFileProblem(tlsCAFile) {
            report("tls_ca_file", message)
        }
        for secret in profile.challenge.secretFiles {
            if let message = secretFileProblem(secret.path, what: secret.what) {
                report(secret.key, message)
            }
        }
        if let path = profile.proxyCredentialsFile, let message = secretFileProblem(path, what: "proxy credentials file") {
            report("proxy_credentials_file", message)
        }
        if case .command(let argv) = profile.challenge, let program = argv.first, let message = executableProblem(program) {
            report("challenge.command", message)
        }
        if let program = profile.postInstall.first, let message = executableProblem(program) {
            report("post_install", message)
        }
        if profile.keyStorage != .software, profile.tcti.hasPrefix("device:") {
            let device = String(profile.tcti.dropFirst("device:".count))
            if !device.isEmpty, FileStatus(path: device) == nil {
                if profile.keyStorage == .tpm {
                    report("tcti", "TPM device \(device) does not exist and key_storage = \"tpm\" requires a TPM")
                } else {
                    report("tcti", "TPM device \(device) does not exist; a software key will be used (key_storage = \"tpm-preferred\")",
                           severity: .warning)
                }
            }
        }
        return problems
    }

    /// nil when `path` is a readable file holding at least one PEM certificate.
    private func certificateFileProblem(_ path: String) -> String? {
        guard let status = FileStatus(path: path) else { return "\(path) does not exist" }
        guard status.isRegularFile else { return "\(path) is not a regular file" }
        guard let data = FileManager.default.contents(atPath: path) else { return "\(path) cannot be read" }
        guard let text = String(data: data, encoding: .utf8) else {
            return "\(path) is not a PEM file (expected -----BEGIN CERTIFICATE-----; convert DER with openssl x509 -inform der)"
        }
        switch PEMCertificateBlocks.derCertificates(in: text) {
        case .success(let certificates) where !certificates.isEmpty:
            return nil
        case .success:
            return "\(path) holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)"
        case .failure(let error):
            return "\(path): \(error.message)"
        }
    }

    /// nil when `path` is a non-empty regular file that other users cannot read.
    private func secretFileProblem(_ path: String, what: String) -> String? {
        guard let status = FileStatus(path: path) else { return "\(what) \(path) does not exist" }
        guard status.isRegularFile else { return "\(what) \(path) is not a regular file" }
        if status.permissions & 0o004 != 0 {
            return String(format: "\(what) \(path) is readable by every user (mode %04o); it holds a secret: chmod 0600 or 0640",
                          status.permissions)
        }
        guard status.size > 0 else { return "\(what) \(path) is empty" }
        return nil
    }

    /// nil when `path` is an executable regular file.
    private func executableProblem(_ path: String) -> String? {
        guard let status = FileStatus(path: path) else { return "\(path) does not exist" }
        guard status.isRegularFile else { return "\(path) is not a regular file" }
        guard status.permissions & 0o111 != 0 else { return "\(path) is not executable" }
        return nil
    }
}

/// `stat(2)` of a path (following symlinks); nil when it does not exist.
private struct FileStatus: Equatable {
    var isRegularFile: Bool
    var isDirectory: Bool
    /// The permission bits (`0o7777` mask).
    var permissions: Int
    var size: Int64

    init?(path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        let type = Int(info.st_mode) & Int(S_IFMT)
        isRegularFile = type == Int(S_IFREG)
        isDirectory = type == Int(S_IFDIR)
        permissions = Int(info.st_mode) & 0o7777
        size = Int64(info.st_size)
    }
}

/// The certificates of a PEM file, decoded to DER (only enough checking to tell an
/// administrator that the file is wrong; the SCEP client parses the certificates).
enum PEMCertificateBlocks {
    static func derCertificates(in text: String) -> Result<[Data], InvalidConfigValue> {
        let begin = "-----BEGIN CERTIFICATE-----"
        let end = "-----END CERTIFICATE-----"
        var certificates: [Data] = []
        var rest = Substring(text)
        while let start = rest.range(of: begin) {
            guard let stop = rest[start.upperBound...].range(of: end) else {
                return .failure(InvalidConfigValue(message: "a PEM certificate has no \(end) line"))
            }
            let base64 = rest[start.upperBound..<stop.lowerBound].filter { !$0.isWhitespace }
            guard let der = Data(base64Encoded: String(base64)), der.first == 0x30 else {
                return .failure(InvalidConfigValue(message: "certificate \(certificates.count + 1) is not valid base64 DER"))
            }
            certificates.append(der)
            rest = rest[stop.upperBound...]
        }
        return .success(certificates)
    }
}

/// What `check-config` reports: the configuration (when usable) and every problem,
/// from parsing, validation and (optionally) the environment.
struct ConfigCheckReport {
    var path: String
    var config: AgentConfig?
    /// Set when the file could not be read at all.
    var unreadableReason: String?
    /// Errors and warnings, in file order.
    var problems: [ConfigProblem]

    var errorCount: Int { problems.filter(\.isError).count + (unreadableReason == nil ? 0 : 1) }
    var isValid: Bool { errorCount == 0 }

    /// Runs every check on the file at `path`.
    static func run(path: String, checkEnvironment: Bool = true) -> ConfigCheckReport {
        do {
            let config = try AgentConfig.load(path: path)
            let environment = checkEnvironment ? config.validateEnvironment() : []
            return ConfigCheckReport(path: path, config: config,
                                     problems: ConfigProblem.sorted(config.warnings + environment))
        } catch ConfigError.unreadable(_, let reason) {
            return ConfigCheckReport(path: path, config: nil, unreadableReason: reason, problems: [])
        } catch ConfigError.invalid(_, let problems) {
            return ConfigCheckReport(path: path, config: nil, problems: ConfigProblem.sorted(problems))
        } catch {
            return ConfigCheckReport(path: path, config: nil, unreadableReason: "\(error)", problems: [])
        }
    }

    /// One line per problem (`path:line: ...`), then nothing else; empty when all is well.
    var lines: [String] {
        if let unreadableReason {
            return [ConfigError.unreadable(path: path, reason: unreadableReason).description]
        }
        return problems.map { $0.formatted(path: path) }
    }
}

extension AgentConfig {
    /// Files whose contents decide what the agent runs or sends, checked for who else can
    /// change them (or, for secrets, read them): the configuration, token and challenge
    /// files, the challenge command and post_install programs, and every directory above
    /// them. Warnings, not errors: the run goes on, and the log says what to fix. Checked
    /// at every run, not only by `check-config`, because permissions drift.
    func permissionProblems(reportReadableSecrets: Bool = true) -> [ConfigProblem] {
        var problems = FilePermissionAudit.problems(path: sourcePath, what: "configuration file", secret: false)
            .map { ConfigProblem(severity: .warning, line: nil, key: "", message: $0) }
        for profile in profiles {
            let scope = ConfigScope(profileLabel: "profile \"\(profile.name)\"", keyPrefix: "profile.\(profile.name).")
            var checked: [(key: String, path: String, what: String, secret: Bool)] =
                profile.challenge.secretFiles.map { ($0.key, $0.path, $0.what, true) }
            if case .command(let argv) = profile.challenge, let program = argv.first {
                checked.append(("challenge.command", program, "challenge command", false))
            }
            if let program = profile.postInstall.first { checked.append(("post_install", program, "post_install program", false)) }
            if let path = profile.proxyCredentialsFile { checked.append(("proxy_credentials_file", path, "proxy credentials file", true)) }
            for item in checked {
                for message in FilePermissionAudit.problems(path: item.path, what: item.what, secret: item.secret && reportReadableSecrets) {
                    problems.append(scope.problem(item.key, line: profile.line(of: item.key), message, severity: .warning))
                }
            }
        }
        return problems
    }
}

/// Who besides root and us can change (or read) a file, judged from lstat of the file
/// and of each directory above it. A directory with the sticky bit (/tmp) does not let
/// others replace what they do not own, so it is not reported.
enum FilePermissionAudit {
    static func problems(path: String, what: String, secret: Bool, ownUID: uid_t = geteuid()) -> [String] {
        var info = stat()
        guard stat(path, &info) == 0 else { return [] }  // a missing file is reported elsewhere
        var problems: [String] = []
        let mode = Int(info.st_mode) & 0o7777
        if mode & 0o022 != 0 {
            problems.append("\(what) \(path) can be changed by \(mode & 0o002 != 0 ? "every user" : "its group") (mode \(octal(mode))); chmod go-w \(path)")
        }
        if info.st_uid != 0 && info.st_uid != ownUID {
            problems.append("\(what) \(path) belongs to uid \(info.st_uid), neither root nor this agent; chown root \(path)")
        }
        if secret && mode & 0o004 != 0 {
            problems.append("\(what) \(path) is readable by every user (mode \(octal(mode))); it holds a secret: chmod 0600 or 0640")
        }
        var directory = parentDirectory(path)
        while true {
            var dirInfo = stat()
            if stat(directory, &dirInfo) == 0 {
                let dirMode = Int(dirInfo.st_mode) & 0o7777
                let sticky = dirMode & 0o1000 != 0
                if dirMode & 0o022 != 0 && !sticky {
                    problems.append("the directory \(directory) above \(what) \(path) can be changed by \(dirMode & 0o002 != 0 ? "every user" : "its group") (mode \(octal(dirMode))), who can then replace the file; chmod go-w \(directory)")
                }
                if dirInfo.st_uid != 0 && dirInfo.st_uid != ownUID && !sticky {
                    problems.append("the directory \(directory) above \(what) \(path) belongs to uid \(dirInfo.st_uid), neither root nor this agent")
                }
            }
            if directory == "/" { break }
            directory = parentDirectory(directory)
        }
        return problems
    }

    private static func parentDirectory(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    private static func octal(_ mode: Int) -> String {
        let digits = String(mode, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}
