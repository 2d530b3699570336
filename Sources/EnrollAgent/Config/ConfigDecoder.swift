import Foundation
import TOML

extension AgentConfig {
    /// Reads and validates the configuration file at `path`.
    /// Throws `ConfigError.unreadable` or `ConfigError.invalid` with every problem found.
    /// Filesystem checks on the paths it names are separate: `validateEnvironment()`.
    static func load(path: String = AgentConfig.defaultPath) throws -> AgentConfig {
        let data: Data
        do {
            data = Data(try BoundedFileReader(limit: maximumFileBytes).read(path))
        } catch .tooLarge(let size) {
            let found = size.map { "the file is \($0) bytes" } ?? "the file is larger than the limit"
            throw ConfigError.unreadable(path: path, reason:
                "\(found); a configuration may be at most \(maximumFileBytes) bytes (1 MiB): "
                + "check that --config names the agent's configuration file")
        } catch {
            throw ConfigError.unreadable(path: path, reason: Self.readFailureReason(path: path, fallback: error.reason))
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigError.unreadable(path: path, reason: "the file is not valid UTF-8")
        }
        return try parse(text, path: path)
    }

    /// Validates configuration text; `path` is used in messages only.
    /// Throws `ConfigError.invalid` with every problem found.
    static func parse(_ text: String, path: String = AgentConfig.defaultPath) throws -> AgentConfig {
        switch decode(text, path: path) {
        case .success(let config): return config
        case .failure(let error): throw error
        }
    }

    /// Like `parse`, as a result (convenient for `check-config`).
    static func decode(_ text: String, path: String = AgentConfig.defaultPath) -> Result<AgentConfig, ConfigError> {
        let (document, syntaxErrors) = TOMLDocument.parseCollectingErrors(text)
        if !syntaxErrors.isEmpty {
            // Keys on broken lines are missing from the document; checking the model now
            // would add misleading "missing key" problems, so report the syntax first.
            let problems = syntaxErrors.map { ConfigProblem(line: $0.line, key: "", message: $0.message) }
            return .failure(.invalid(path: path, problems: problems))
        }
        let decoder = ConfigDecoder()
        let config = decoder.decode(document)
        if let config, decoder.problems.errorCount == 0 {
            var result = config
            result.warnings = decoder.problems.problems
            result.sourcePath = path
            return .success(result)
        }
        return .failure(.invalid(path: path, problems: decoder.problems.problems))
    }

    /// A real configuration is a few KiB. The bound is checked before the file is read,
    /// so naming a huge file (or a device) by mistake cannot exhaust memory.
    static let maximumFileBytes = 1 << 20

    private static func readFailureReason(path: String, fallback: String) -> String {
        var isDirectory: ObjCBool = false
        if !FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            return "no such file (use --config PATH to choose another file)"
        }
        if isDirectory.boolValue { return "it is a directory" }
        if !FileManager.default.isReadableFile(atPath: path) { return "permission denied" }
        return fallback
    }
}

/// Turns a parsed TOML document into an `AgentConfig`, collecting every problem.
final class ConfigDecoder {
    let problems = ProblemCollector()

    /// Profile names seen so far, with the line of their `name` key.
    private var profileNames: [String: Int] = [:]

    /// The configuration, or nil when there were errors (see `problems`).
    func decode(_ document: TOMLDocument) -> AgentConfig? {
        let root = ConfigTableReader(table: document.root, scope: .root, problems: problems)
        root.reportUnknownKeys(known: RootKeys.names)

        var stateDirectory = AgentConfig.defaultStateDirectory
        if let path = root.absolutePath("state_dir") {
            stateDirectory = path
        }
        let metricsTextfile = root.absolutePath("metrics_textfile")
        let globalProxy = ProxyKeys.decodeProxy(root)
        let globalProxyCredentials = root.absolutePath("proxy_credentials_file")

        var profiles: [ProfileConfig] = []
        switch document.root["profile"]?.kind {
        case nil:
            problems.add(ConfigProblem(line: nil, key: "profile",
                                       message: "no [[profile]] defined, so there is nothing to enroll; add a [[profile]] table (a freshly installed config.toml has one commented out: see its header), then run `enroll-agent check-config` again; every key: `enroll-agent config-keys` or man 5 enroll-agent.toml"))
        case .tableArray(let tables)?:
            for (offset, table) in tables.enumerated() {
                if var profile = decodeProfile(table, number: offset + 1) {
                    // The top-level proxy keys for a profile that sets none of its own.
                    if profile.sourceLines["proxy"] == nil, let globalProxy { profile.proxy = globalProxy }
                    if profile.proxyCredentialsFile == nil { profile.proxyCredentialsFile = globalProxyCredentials }
                    profiles.append(profile)
                }
            }
        case .table(let table)?:
            problems.add(ConfigProblem(line: table.line, key: "profile",
                                       message: "expected [[profile]] (double brackets: an array of tables), got a single [profile] table"))
        case .some:
            let line = document.root["profile"]?.line
            let type = document.root["profile"]?.typeDescription ?? "a value"
            problems.add(ConfigProblem(line: line, key: "profile",
                                       message: "expected [[profile]] tables, got \(type)"))
        }

        guard problems.errorCount == 0 else { return nil }
        return AgentConfig(stateDirectory: stateDirectory, profiles: profiles, metricsTextfile: metricsTextfile)
    }

    // MARK: - Profile

    private func decodeProfile(_ table: TOMLTable, number: Int) -> ProfileConfig? {
        let errorsBefore = problems.errorCount
        let name = decodeName(table, number: number)
        let scope = name.map { ConfigScope(profileLabel: "profile \"\($0)\"", keyPrefix: "profile.\($0).") }
            ?? ConfigScope(profileLabel: "profile #\(number)", keyPrefix: "profile[\(number)].")
        let reader = ConfigTableReader(table: table, scope: scope, problems: problems)
        reader.reportUnknownKeys(known: ProfileKeys.names)

        var profile = ProfileConfig(name: name ?? "", scepURL: URL(fileURLWithPath: "/"),
                                    caPin: CAPinConfig(), challenge: .noChallenge)
        for key in ProfileKeys.all {
            key.decode(reader, &profile)
        }
        checkPin(reader, profile.caPin)
        let variables = decodeVariables(reader)
        let challenge = decodeChallenge(reader)
        profile.variables = variables ?? [:]
        profile.challenge = challenge ?? .noChallenge
        if let challenge, let variables {
            checkTemplateVariables(reader, subject: profile.subjectTemplate, sans: profile.subjectAlternativeNames,
                                   variables: variables, challenge: challenge)
        }
        checkPolling(reader, profile)
        profile.sourceLines = Self.sourceLines(of: table)

        guard problems.errorCount == errorsBefore, name != nil else { return nil }
        return profile
    }

    /// The profile's name if valid and unique (problems are reported under `profile #N`).
    private func decodeName(_ table: TOMLTable, number: Int) -> String? {
        let reader = ConfigTableReader(
            table: table, scope: ConfigScope(profileLabel: "profile #\(number)", keyPrefix: "profile[\(number)]."),
            problems: problems)
        guard let (name, line) = reader.string("name") else {
            if table["name"] == nil {
                reader.reportMissing("name", "expected e.g. name = \"device\" (also the store folder name)")
            }
            return nil
        }
        let allowed = name.unicodeScalars.allSatisfy { scalar in
            switch scalar {
            case "A"..."Z", "a"..."z", "0"..."9", ".", "_", "-": return true
            default: return false
            }
        }
        guard !name.isEmpty, allowed, name != ".", name != ".." else {
            reader.report("name", line: line,
                          "expected a folder name made of letters, digits, '.', '_' and '-' (not \".\" or \"..\"), got \"\(name)\"")
            return nil
        }
        if let firstLine = profileNames[name] {
            reader.report("name", line: line,
                          "\"\(name)\" is already the name of the profile on line \(firstLine); profile names must be unique")
            return nil
        }
        profileNames[name] = line
        return name
    }

    /// At least one pin: a file, or a non-empty list of fingerprints.
    private func checkPin(_ reader: ConfigTableReader, _ pin: CAPinConfig) {
        guard reader.table["ca_pin_file"] == nil else { return }
        if let value = reader.table["ca_pin_sha256"] {
            if value.arrayValue?.isEmpty == true {
                reader.report("ca_pin_sha256", line: value.line,
                              "the list is empty; give at least one SHA-256 fingerprint or set ca_pin_file")
            }
        } else {
            reader.reportMissing("ca_pin_file",
                                 "the issuing CA must be pinned: set ca_pin_file (PEM) and/or ca_pin_sha256 (SHA-256 fingerprint)")
        }
    }

    // MARK: - Templates

    /// Without an endpoint, the variables are known now: report the ones no one defines.
    /// A root-only built-in not set by hand is a warning: the packaged units run as a user.
    private func checkTemplateVariables(_ reader: ConfigTableReader, subject: String,
                                        sans: SubjectAlternativeNameTemplates,
                                        variables: [String: String], challenge: ChallengeSource) {
        let templates: [(key: String, text: String)] =
            [("subject", subject)] + sans.upn.map { ("san_upn", $0) } + sans.dns.map { ("san_dns", $0) }
            + sans.email.map { ("san_email", $0) } + sans.uri.map { ("san_uri", $0) }
        for (key, text) in templates {
            guard let template = try? TextTemplate(text) else { continue }
            for name in template.variableNames where variables[name] == nil {
                guard let variable = HostVariable(rawValue: name), let source = HostIdentity.rootOnlySources[variable] else { continue }
                reader.report(key, line: reader.table[key]?.line ?? reader.table.line,
                              "{{\(name)}} is read from \(source), which only root can read, and the packaged systemd units run "
                              + "as user enroll-agent: set \(name) in [profile.variables] (or have the endpoint send it) "
                              + "unless the agent runs as root", severity: .warning)
            }
        }
        // Only our JSON contract adds variables at enrollment time.
        if case .endpoint(let endpoint) = challenge, endpoint.format == .json { return }
        let known = Set(variables.keys).union(HostIdentity.builtInVariableNames)
        for (key, text) in templates {
            guard let template = try? TextTemplate(text) else { continue }
            for name in template.variableNames where !known.contains(name) {
                let line = reader.table[key]?.line ?? reader.table.line
                let builtIns = HostIdentity.builtInVariableNames.joined(separator: ", ")
                reader.report(key, line: line,
                              "unknown template variable {{\(name)}}\(didYouMean(name, among: known.sorted())); "
                              + "define it in [profile.variables] (built-in: \(builtIns))")
            }
        }
    }

    private func decodeVariables(_ reader: ConfigTableReader) -> [String: String]? {
        guard reader.table["variables"] != nil else { return [:] }
        guard let table = reader.table("variables") else { return nil }
        let scope = reader.scope.nested("variables")
        var variables: [String: String] = [:]
        var valid = true
        for (name, value) in table.entries {
            guard TextTemplate.isValidVariableName(name) else {
                problems.add(scope.problem(name, line: value.line,
                                           "variable names must be letters, digits and '_' (used as {{Name}})"))
                valid = false
                continue
            }
            guard let string = value.stringValue else {
                problems.add(scope.problem(name, line: value.line, "expected a string, got \(value.typeDescription)"))
                valid = false
                continue
            }
            guard HostIdentity.isPlainText(string) else {
                problems.add(scope.problem(name, line: value.line,
                                           "the value holds control characters (a line break, a tab…); use one line of plain text"))
                valid = false
                continue
            }
            variables[name] = string
        }
        return valid ? variables : nil
    }

    // MARK: - Challenge

    private func decodeChallenge(_ profileReader: ConfigTableReader) -> ChallengeSource? {
        guard profileReader.table["challenge"] != nil else {
            profileReader.reportMissing("challenge",
                                        "add a [profile.challenge] table with source = \"endpoint\", \"file\", \"command\" or \"none\"")
            return nil
        }
        guard let table = profileReader.table("challenge") else { return nil }
        let reader = ConfigTableReader(table: table, scope: profileReader.scope.nested("challenge"), problems: problems)
        let allKeys = ChallengeKeys.names
        reader.reportUnknownKeys(known: allKeys)
        let sources = ChallengeKeys.sources.map(\.name)

        guard let (source, sourceLine) = reader.string("source") else {
            if table["source"] == nil {
                reader.reportMissing("source", "expected \(ConfigTableReader.choiceList(sources))")
            }
            return nil
        }
        guard let used = ChallengeKeys.source(named: source)?.usedKeys else {
            reader.report("source", line: sourceLine,
                          "expected \(ConfigTableReader.choiceList(sources)), got \"\(source)\"\(didYouMean(source, among: sources))")
            return nil
        }
        for (key, value) in table.entries where key != "source" && allKeys.contains(key) && !used.contains(key) {
            reader.report(key, line: value.line, "not used with source = \"\(source)\"; remove it or change source")
        }

        switch source {
        case "endpoint":
            let auth = decodeEndpointAuth(reader)
            let format = reader.enumeration("format", ChallengeFormat.self)
            guard let (text, line) = reader.string("url") else {
                if table["url"] == nil {
                    reader.reportMissing("url", "expected the management endpoint, e.g. url = \"https://mdm.example.com/v1/scep/challenge\"")
                }
                return nil
            }
            let url: URL
            do {
                url = try ConfigURL.parseHTTP(text, allowQuery: true)
            } catch {
                reader.report("url", line: line, Self.message(error))
                return nil
            }
            if url.scheme?.lowercased() == "http" {
                guard ConfigURL.isLoopback(url) else {
                    reader.report("url", line: line,
                                  "expected an https:// URL (plain http is allowed only for 127.0.0.1, ::1 or localhost), got \"\(text)\"")
                    return nil
                }
                let secrets: String
                switch auth {
                case .basic?: secrets = "the challenge and the Basic password are"
                case .bearer?: secrets = "the challenge and the token are"
                default: secrets = "the challenge is"
                }
                reader.report("url", line: line,
                              "plain http to a loopback endpoint: \(secrets) not encrypted in transit (acceptable for a local helper only)",
                              severity: .warning)
            }
            guard let auth, table["format"] == nil || format != nil else { return nil }
            return .endpoint(EndpointChallenge(url: url, auth: auth, format: format ?? .json))
        case "file":
            guard let path = reader.absolutePath("file") else {
                if table["file"] == nil {
                    reader.reportMissing("file", "expected the path of the file holding the challenge, e.g. file = \"/etc/enroll-agent/challenge\"")
                }
                return nil
            }
            return .file(path: path)
        case "command":
            guard let argv = reader.argv("command", allowEmpty: false) else {
                if table["command"] == nil {
                    reader.reportMissing("command", "expected the command as an array, e.g. command = [\"/usr/local/bin/get-scep-challenge\"]")
                }
                return nil
            }
            return .command(argv: argv)
        default:
            return .noChallenge
        }
    }

    /// `auth` with its credentials: `token_file` for bearer (the default when it is given),
    /// `username` + `password_file` for basic and ntlm; a key the chosen scheme does not use
    /// is an error, so a half-changed configuration does not silently send the wrong secret.
    /// Nil after a problem was reported.
    private func decodeEndpointAuth(_ reader: ConfigTableReader) -> EndpointAuth? {
        let table = reader.table
        let tokenFile = reader.absolutePath("token_file")
        let passwordFile = reader.absolutePath("password_file")
        let username = reader.string("username")
        let scheme: String
        if let (text, line) = reader.string("auth") {
            guard EndpointAuth.names.contains(text) else {
                reader.report("auth", line: line, "expected \(ConfigTableReader.choiceList(EndpointAuth.names)), got \"\(text)\"\(didYouMean(text, among: EndpointAuth.names))")
                return nil
            }
            scheme = text
        } else if table["auth"] != nil {
            return nil  // wrong type, reported
        } else if table["token_file"] != nil {
            scheme = "bearer"
        } else if table["username"] != nil || table["password_file"] != nil {
            let key = table["username"] != nil ? "username" : "password_file"
            reader.report(key, line: table[key]?.line,
                          "\(key) is used only with auth = \"basic\" or \"ntlm\"; add the auth key (Okta's generic dynamic challenge and NDES take \"basic\"; NDES with Windows authentication \"ntlm\")")
            return nil
        } else {
            return .noCredentials
        }

        var valid = true
        func refuse(_ key: String, _ why: String) {
            guard let value = table[key] else { return }
            reader.report(key, line: value.line, "not used with auth = \"\(scheme)\"; \(why)")
            valid = false
        }
        func require(_ key: String, _ example: String) {
            guard table[key] == nil else { return }
            reader.report(key, line: table["auth"]?.line ?? (table.line > 0 ? table.line : nil),
                          "auth = \"\(scheme)\" needs \(key), e.g. \(example)")
            valid = false
        }
        if scheme == "bearer" {
            refuse("username", "bearer sends only the token from token_file; remove it, or set auth = \"basic\"")
            refuse("password_file", "bearer sends only the token from token_file; remove it, or set auth = \"basic\"")
            require("token_file", "token_file = \"/etc/enroll-agent/device-token\"")
            guard valid, let tokenFile else { return nil }
            return .bearer(tokenFile: tokenFile)
        }
        refuse("token_file", "\(scheme) reads the password from password_file; remove token_file")
        require("username", "username = \"scep-client\"")
        require("password_file", "password_file = \"/etc/enroll-agent/challenge-password\"")
        guard valid, let (name, line) = username, let passwordFile else { return nil }
        if let problem = Self.usernameProblem(name, scheme: scheme) {
            reader.report("username", line: line, problem)
            return nil
        }
        return scheme == "basic" ? .basic(username: name, passwordFile: passwordFile)
            : .ntlm(username: name, passwordFile: passwordFile)
    }

    /// A user name is sent in the Authorization header: one printable line, bounded, and
    /// for Basic without a colon (RFC 7617 §2: the user-id ends at the first colon).
    static func usernameProblem(_ name: String, scheme: String) -> String? {
        if name.isEmpty { return "expected a user name, got an empty string" }
        if name.utf8.count > 256 { return "expected a user name of at most 256 bytes, got \(name.utf8.count)" }
        if name.unicodeScalars.contains(where: { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) }) {
            return "the user name contains a control character; write it on one line"
        }
        if scheme == "basic" && name.contains(":") {
            return "a Basic user name cannot contain ':' (RFC 7617); check that the password is not part of it"
        }
        return nil
    }

    // MARK: - Checks across keys

    private func checkPolling(_ reader: ConfigTableReader, _ profile: ProfileConfig) {
        guard profile.pollInitialInterval > profile.pollMaxWait else { return }
        let line = reader.table["poll_initial_interval"]?.line ?? reader.table["poll_max_wait"]?.line
        reader.report("poll_initial_interval", line: line,
                      "must not exceed poll_max_wait (\(ConfigDuration.format(profile.pollMaxWait))), got \(ConfigDuration.format(profile.pollInitialInterval))")
    }

    // MARK: - Helpers

    /// Lines of the profile's keys (`key_bits`, `challenge.url`, ...) and of its header ("").
    private static func sourceLines(of table: TOMLTable) -> [String: Int] {
        var lines = ["": table.line]
        for (key, value) in table.entries {
            lines[key] = value.line
            for (subKey, subValue) in value.tableValue?.entries ?? [] {
                lines["\(key).\(subKey)"] = subValue.line
            }
        }
        return lines
    }

    static func message(_ error: Error) -> String {
        switch error {
        case let error as InvalidConfigValue: return error.message
        case let error as TemplateError: return error.reasonDescription
        case let error as SubjectNameError: return "not a usable distinguished name: \(error.message)"
        default: return "\(error)"
        }
    }
}
