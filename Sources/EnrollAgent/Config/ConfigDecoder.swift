import Foundation

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

    static let rootKeys = ["state_dir", "profile"]
    static let profileKeys = [
        "name", "scep_url", "ca_pin_file", "ca_pin_sha256", "subject",
        "san_upn", "san_dns", "san_email", "san_uri",
        "key_storage", "key_type", "key_bits", "tcti", "key_usage", "extended_key_usage",
        "certificate_policies", "renew_before", "renew_jitter", "renewal_mode", "reuse_key",
        "allow_weak_algorithms", "content_encryption", "poll_max_wait", "poll_initial_interval", "pending_max_age",
        "http_timeout", "tls_ca_file", "post_install", "hook_environment", "challenge", "variables", "ra_pin_sha256",
        "revocation_check_interval", "on_revoked",
    ]
    static let challengeKeysBySource: [(source: String, keys: [String])] = [
        ("endpoint", ["url", "token_file"]),
        ("file", ["file"]),
        ("command", ["command"]),
        ("none", []),
    ]

    /// Profile names seen so far, with the line of their `name` key.
    private var profileNames: [String: Int] = [:]

    /// The configuration, or nil when there were errors (see `problems`).
    func decode(_ document: TOMLDocument) -> AgentConfig? {
        let root = ConfigTableReader(table: document.root, scope: .root, problems: problems)
        root.reportUnknownKeys(known: Self.rootKeys)

        var stateDirectory = AgentConfig.defaultStateDirectory
        if let path = root.absolutePath("state_dir") {
            stateDirectory = path
        }

        var profiles: [ProfileConfig] = []
        switch document.root["profile"]?.kind {
        case nil:
            problems.add(ConfigProblem(line: nil, key: "profile",
                                       message: "no [[profile]] defined; add at least one [[profile]] table"))
        case .tableArray(let tables)?:
            for (offset, table) in tables.enumerated() {
                if let profile = decodeProfile(table, number: offset + 1) {
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
        return AgentConfig(stateDirectory: stateDirectory, profiles: profiles)
    }

    // MARK: - Profile

    private func decodeProfile(_ table: TOMLTable, number: Int) -> ProfileConfig? {
        let errorsBefore = problems.errorCount
        let name = decodeName(table, number: number)
        let scope = name.map { ConfigScope(profileLabel: "profile \"\($0)\"", keyPrefix: "profile.\($0).") }
            ?? ConfigScope(profileLabel: "profile #\(number)", keyPrefix: "profile[\(number)].")
        let reader = ConfigTableReader(table: table, scope: scope, problems: problems)
        reader.reportUnknownKeys(known: Self.profileKeys)

        let scepURL = decodeSCEPURL(reader)
        let caPin = decodePin(reader)
        let variables = decodeVariables(reader)
        let challenge = decodeChallenge(reader)
        let subject = decodeSubject(reader)
        let sans = SubjectAlternativeNameTemplates(
            upn: decodeTemplates(reader, "san_upn"),
            dns: decodeTemplates(reader, "san_dns"),
            email: decodeTemplates(reader, "san_email"),
            uri: decodeTemplates(reader, "san_uri"))
        if let challenge, let variables, let subject {
            checkTemplateVariables(reader, subject: subject, sans: sans, variables: variables, challenge: challenge)
        }

        var profile = ProfileConfig(
            name: name ?? "",
            scepURL: scepURL ?? URL(fileURLWithPath: "/"),
            caPin: caPin ?? CAPinConfig(),
            challenge: challenge ?? .noChallenge)
        profile.subjectTemplate = subject ?? ProfileConfig.defaultSubject
        profile.subjectAlternativeNames = sans
        profile.variables = variables ?? [:]
        decodeKeySettings(reader, into: &profile)
        decodeCertificateContents(reader, into: &profile)
        decodeProtocolSettings(reader, into: &profile)
        profile.revocation = decodeRevocationSettings(reader)
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

    private func decodeSCEPURL(_ reader: ConfigTableReader) -> URL? {
        guard let (text, line) = reader.string("scep_url") else {
            if reader.table["scep_url"] == nil {
                reader.reportMissing("scep_url", "expected the SCEP server URL, e.g. scep_url = \"https://scep.example.com/scep\"")
            }
            return nil
        }
        do {
            return try ConfigURL.parseHTTP(text, allowQuery: false)
        } catch {
            reader.report("scep_url", line: line, Self.message(error))
            return nil
        }
    }

    private func decodePin(_ reader: ConfigTableReader) -> CAPinConfig? {
        let file = reader.absolutePath("ca_pin_file")
        var fingerprints: [String] = []
        var fingerprintsValid = true
        if let (values, _) = reader.stringArray("ca_pin_sha256", acceptSingleString: true) {
            for (text, line) in values {
                do {
                    let normalized = try CAPinFingerprint.normalize(text)
                    if !fingerprints.contains(normalized) { fingerprints.append(normalized) }
                } catch {
                    reader.report("ca_pin_sha256", line: line, Self.message(error))
                    fingerprintsValid = false
                }
            }
        } else if reader.table["ca_pin_sha256"] != nil {
            fingerprintsValid = false
        }
        let fileGiven = reader.table["ca_pin_file"] != nil
        if !fileGiven, fingerprints.isEmpty, fingerprintsValid {
            if let value = reader.table["ca_pin_sha256"] {
                reader.report("ca_pin_sha256", line: value.line,
                              "the list is empty; give at least one SHA-256 fingerprint or set ca_pin_file")
            } else {
                reader.reportMissing("ca_pin_file",
                                     "the issuing CA must be pinned: set ca_pin_file (PEM) and/or ca_pin_sha256 (SHA-256 fingerprint)")
            }
            return nil
        }
        guard fingerprintsValid, !fileGiven || file != nil else { return nil }
        guard let raFingerprints = decodeFingerprintList(reader, "ra_pin_sha256") else { return nil }
        return CAPinConfig(file: file, sha256Fingerprints: fingerprints, raSHA256Fingerprints: raFingerprints)
    }

    /// A string or list of SHA-256 fingerprints (any case, colons allowed); nil after a problem.
    private func decodeFingerprintList(_ reader: ConfigTableReader, _ key: String) -> [String]? {
        guard reader.table[key] != nil else { return [] }
        guard let (values, _) = reader.stringArray(key, acceptSingleString: true) else { return nil }
        var fingerprints: [String] = []
        var valid = true
        for (text, line) in values {
            do {
                let normalized = try CAPinFingerprint.normalize(text)
                if !fingerprints.contains(normalized) { fingerprints.append(normalized) }
            } catch {
                reader.report(key, line: line, Self.message(error))
                valid = false
            }
        }
        return valid ? fingerprints : nil
    }

    // MARK: - Templates

    private func decodeSubject(_ reader: ConfigTableReader) -> String? {
        guard reader.table["subject"] != nil else { return ProfileConfig.defaultSubject }
        guard let (subject, line) = reader.string("subject") else { return nil }
        do {
            let template = try TextTemplate(subject)
            // Render with a neutral value to check the DN's shape now rather than at enrollment.
            let sample = Dictionary(uniqueKeysWithValues: template.variableNames.map { ($0, "x") })
            _ = try SubjectName.parse(try template.render(sample))
            return subject
        } catch {
            reader.report("subject", line: line, Self.message(error))
            return nil
        }
    }

    private func decodeTemplates(_ reader: ConfigTableReader, _ key: String) -> [String] {
        guard let (values, _) = reader.stringArray(key, acceptSingleString: true) else { return [] }
        var templates: [String] = []
        for (text, line) in values {
            do {
                _ = try TextTemplate(text)
                templates.append(text)
            } catch {
                reader.report(key, line: line, Self.message(error))
            }
        }
        return templates
    }

    /// Without an endpoint, the variables are known now: report the ones no one defines.
    private func checkTemplateVariables(_ reader: ConfigTableReader, subject: String,
                                        sans: SubjectAlternativeNameTemplates,
                                        variables: [String: String], challenge: ChallengeSource) {
        if case .endpoint = challenge { return }
        let known = Set(variables.keys).union(HostIdentity.builtInVariableNames)
        let templates: [(key: String, text: String)] =
            [("subject", subject)] + sans.upn.map { ("san_upn", $0) } + sans.dns.map { ("san_dns", $0) }
            + sans.email.map { ("san_email", $0) } + sans.uri.map { ("san_uri", $0) }
        for (key, text) in templates {
            guard let template = try? TextTemplate(text) else { continue }
            for name in template.variableNames where !known.contains(name) {
                let line = reader.table[key]?.line ?? reader.table.line
                reader.report(key, line: line,
                              "unknown template variable {{\(name)}}; define it in [profile.variables] (built-in: Hostname, MachineID)")
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
        let allKeys = ["source"] + Self.challengeKeysBySource.flatMap(\.keys)
        reader.reportUnknownKeys(known: allKeys)
        let sources = Self.challengeKeysBySource.map(\.source)

        guard let (source, sourceLine) = reader.string("source") else {
            if table["source"] == nil {
                reader.reportMissing("source", "expected \(ConfigTableReader.choiceList(sources))")
            }
            return nil
        }
        guard let used = Self.challengeKeysBySource.first(where: { $0.source == source }) else {
            reader.report("source", line: sourceLine,
                          "expected \(ConfigTableReader.choiceList(sources)), got \"\(source)\"\(didYouMean(source, among: sources))")
            return nil
        }
        for (key, value) in table.entries where key != "source" && allKeys.contains(key) && !used.keys.contains(key) {
            reader.report(key, line: value.line, "not used with source = \"\(source)\"; remove it or change source")
        }

        switch source {
        case "endpoint":
            let tokenFile = reader.absolutePath("token_file")
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
                reader.report("url", line: line,
                              "plain http to a loopback endpoint: the challenge is not encrypted in transit (acceptable for a local helper only)",
                              severity: .warning)
            }
            if table["token_file"] != nil, tokenFile == nil { return nil }
            return .endpoint(url: url, tokenFile: tokenFile)
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

    // MARK: - Key, certificate contents, protocol

    private func decodeKeySettings(_ reader: ConfigTableReader, into profile: inout ProfileConfig) {
        if let storage = reader.enumeration("key_storage", KeyStoragePolicy.self) {
            profile.keyStorage = storage
        }
        if let (type, line) = reader.string("key_type") {
            if let algorithm = KeyAlgorithm(rawValue: type) {
                profile.keyType = algorithm
            } else {
                reader.report("key_type", line: line, "only \"rsa\" is supported for now, got \"\(type)\"")
            }
        }
        if let (bits, line) = reader.integer("key_bits") {
            if bits == 2048 || bits == 3072 {
                profile.keyBits = bits
            } else {
                reader.report("key_bits", line: line, "expected 2048 or 3072, got \(bits)")
            }
        }
        if let (tcti, line) = reader.string("tcti") {
            if tcti.trimmingCharacters(in: .whitespaces).isEmpty {
                reader.report("tcti", line: line,
                              "expected a TCTI such as \"device:/dev/tpmrm0\" or \"swtpm:host=127.0.0.1,port=2321\", got an empty string")
            } else {
                profile.tcti = tcti
            }
        }
        if let reuse = reader.boolean("reuse_key") {
            profile.reuseKey = reuse
        }
    }

    private func decodeCertificateContents(_ reader: ConfigTableReader, into profile: inout ProfileConfig) {
        if let (values, line) = reader.stringArray("key_usage") {
            var usages: [RequestedKeyUsage] = []
            let choices = RequestedKeyUsage.allCases.map(\.rawValue)
            for (text, elementLine) in values {
                guard let usage = RequestedKeyUsage(rawValue: text) else {
                    reader.report("key_usage", line: elementLine,
                                  "expected \(ConfigTableReader.choiceList(choices)), got \"\(text)\"\(didYouMean(text, among: choices))")
                    continue
                }
                if !usages.contains(usage) { usages.append(usage) }
            }
            if values.isEmpty {
                reader.report("key_usage", line: line, "expected at least one of \(ConfigTableReader.choiceList(choices))")
            } else if usages.count == Set(values.map(\.0)).count {
                profile.keyUsage = usages
            }
        }
        if let (values, _) = reader.stringArray("extended_key_usage") {
            var oids: [String] = []
            let names = ExtendedKeyUsageSpec.namedOIDs.map(\.name)
            for (text, line) in values {
                let oid = ExtendedKeyUsageSpec.namedOIDs.first { $0.name.caseInsensitiveCompare(text) == .orderedSame }?.oid
                    ?? (ObjectIdentifierText.isValid(text) ? text : nil)
                guard let oid else {
                    reader.report("extended_key_usage", line: line,
                                  "expected one of \(names.joined(separator: ", ")) or a dotted OID, got \"\(text)\"\(didYouMean(text, among: names))")
                    continue
                }
                if !oids.contains(oid) { oids.append(oid) }
            }
            profile.extendedKeyUsage = ExtendedKeyUsageSpec(oids: oids)
        }
        if let (values, _) = reader.stringArray("certificate_policies") {
            var policies: [String] = []
            for (text, line) in values {
                guard ObjectIdentifierText.isValid(text) else {
                    reader.report("certificate_policies", line: line,
                                  "expected a dotted OID such as \"1.3.6.1.4.1.311.21.8.1\", got \"\(text)\"")
                    continue
                }
                if !policies.contains(text) { policies.append(text) }
            }
            profile.certificatePolicies = policies
        }
    }

    private func decodeProtocolSettings(_ reader: ConfigTableReader, into profile: inout ProfileConfig) {
        profile.renewBefore = reader.duration("renew_before")
        profile.renewJitter = reader.duration("renew_jitter", allowZero: true)
        if let mode = reader.enumeration("renewal_mode", RenewalMode.self) {
            profile.renewalMode = mode
        }
        if let weak = reader.boolean("allow_weak_algorithms") {
            profile.allowWeakAlgorithms = weak
        }
        if let cipher = reader.enumeration("content_encryption", ContentEncryption.self) {
            profile.contentEncryption = cipher
        }
        if let maxWait = reader.duration("poll_max_wait") {
            profile.pollMaxWait = maxWait
        }
        if let interval = reader.duration("poll_initial_interval") {
            profile.pollInitialInterval = interval
        }
        if let maxAge = reader.duration("pending_max_age") {
            profile.pendingMaxAge = maxAge
        }
        if profile.pollInitialInterval > profile.pollMaxWait {
            let line = reader.table["poll_initial_interval"]?.line ?? reader.table["poll_max_wait"]?.line
            reader.report("poll_initial_interval", line: line,
                          "must not exceed poll_max_wait (\(ConfigDuration.format(profile.pollMaxWait))), got \(ConfigDuration.format(profile.pollInitialInterval))")
        }
        if let timeout = reader.duration("http_timeout") {
            profile.httpTimeout = timeout
        }
        profile.tlsCAFile = reader.absolutePath("tls_ca_file")
        if let argv = reader.argv("post_install", allowEmpty: true) {
            profile.postInstall = argv
        }
        if let (names, _) = reader.stringArray("hook_environment") {
            for (name, line) in names {
                if EnvironmentName.isValid(name) {
                    if !profile.hookEnvironment.contains(name) { profile.hookEnvironment.append(name) }
                } else {
                    reader.report("hook_environment", line: line,
                                  "expected an environment variable name (letters, digits and '_', not starting with a digit), got \"\(name)\"")
                }
            }
        }
    }

    /// `revocation_check_interval` ("0s": every run) and `on_revoked`.
    private func decodeRevocationSettings(_ reader: ConfigTableReader) -> RevocationSettings {
        var settings = RevocationSettings()
        if let interval = reader.duration("revocation_check_interval", allowZero: true) {
            settings.checkInterval = interval
        }
        if let policy = reader.enumeration("on_revoked", OnRevoked.self) {
            settings.onRevoked = policy
        }
        return settings
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

    private static func message(_ error: Error) -> String {
        switch error {
        case let error as InvalidConfigValue: return error.message
        case let error as TemplateError: return error.reasonDescription
        case let error as SubjectNameError: return "not a usable distinguished name: \(error.message)"
        default: return "\(error)"
        }
    }
}
