import Foundation

/// Documentation generated from the key declarations (`ProfileKeys`, `ChallengeKeys`,
/// `RootKeys`): the example configuration and the README's key table. `enroll-agent
/// config-keys` prints them; `scripts/generate-config-docs.sh` writes them into the tree.
enum ConfigReference {
    // MARK: - The example file

    /// `packaging/config.example.toml`: every key, commented, with a working example value.
    static func exampleFile() -> String {
        var lines = exampleHeader
        lines += ["",
                  "# Store root: one folder per profile, <state_dir>/<name>/live/{cert.pem,",
                  "# chain.pem,fullchain.pem,key.pem}. The systemd units make only",
                  "# /var/lib/enroll-agent writable (ProtectSystem=strict): another directory",
                  "# needs `ReadWritePaths=` in a drop-in (`systemctl edit enroll-agent`).",
                  "state_dir = \"\(AgentConfig.defaultStateDirectory)\"",
                  "",
                  "# Prometheus text file for node_exporter's textfile collector, rewritten",
                  "# atomically after every enroll, renew and daemon check (off by default). The",
                  "# directory must be writable by the agent: ReadWritePaths= in a drop-in.",
                  "# metrics_textfile = \"/var/lib/prometheus/node-exporter/enroll_agent.prom\"",
                  "",
                  "# A proxy for every profile that sets none (see proxy in the profile below).",
                  "# proxy = \"http://proxy.example.com:3128\"",
                  "# proxy_credentials_file = \"/etc/enroll-agent/proxy-credentials\"",
                  "",
                  "# One [[profile]] per certificate. Add more [[profile]] blocks for more",
                  "# certificates (e.g. one for Wi-Fi, one for VPN); names must be unique.",
                  "[[profile]]"]
        var first = true
        for key in ProfileKeys.all where key.example != .omitted {
            if !key.comment.isEmpty {
                if !first { lines.append("") }
                lines += key.comment.map(comment)
            }
            first = false
            lines += exampleLines(key.name, key.example)
        }
        lines += ["",
                  "# Where the one-time SCEP challenge password comes from. It is a secret: never",
                  "# logged, never passed in argv, never written to the store.",
                  "[profile.challenge]"]
        for (index, source) in ChallengeKeys.sources.enumerated() {
            let active = index == 0
            if index > 0 { lines.append("") }
            lines += source.comment.map(comment)
            lines.append((active ? "" : "# ") + "source = \"\(source.name)\"")
            for (name, example) in source.keys {
                lines.append((active ? "" : "# ") + "\(name) = \(example)")
            }
            lines += source.optionalKeys.map { "# \($0.name) = \($0.example)" }
            for recipe in source.recipes {
                lines.append("")
                lines += recipe.comment.map(comment)
                lines += recipe.lines.map { "# " + $0 }
            }
        }
        lines += ["",
                  "# Values for the templates above; the challenge endpoint may add or override.",
                  "[profile.variables]",
                  "UserPrincipalName = \"host01@example.com\""]
        return lines.joined(separator: "\n") + "\n"
    }

    private static let exampleHeader = [
        "# /etc/enroll-agent/config.toml — enroll-agent configuration (TOML).",
        "# Generated from the agent's key table (`enroll-agent config-keys --format example`);",
        "# every key is listed with its default or an example.",
        "#",
        "# install.sh copies this file to /etc/enroll-agent/config.toml only when that",
        "# file does not exist yet. After editing, check it as the service user:",
        "#",
        "#   sudo -u enroll-agent enroll-agent check-config",
        "#",
        "# and (daemon mode) apply it with `systemctl reload enroll-agent`.",
        "#",
        "# Permissions: the service runs as user enroll-agent. Keep this directory and",
        "# every secret in it root:enroll-agent, 0750 for the directory and 0640 for",
        "# files (check-config refuses a secret file that every user can read):",
        "#",
        "#   chown root:enroll-agent /etc/enroll-agent/device-token",
        "#   chmod 0640 /etc/enroll-agent/device-token",
        "#",
        "# Durations are written \"30s\", \"90m\", \"12h\", \"30d\" or combined, largest unit",
        "# first (\"1d12h\"). Templates (\"{{Name}}\") take their values from the built-in",
        "# variables, read from this host when used: {{Hostname}},",
        "# {{FullyQualifiedDomainName}}, {{DeviceName}}, {{MachineID}}, {{SerialNumber}}",
        "# (DMI product serial, root only; also {{Device_Serial}}), {{WiFiMacAddress}},",
        "# {{EthernetMacAddress}} (12 uppercase hex digits), {{OperatingSystem}} and",
        "# {{OSVersion}} (os-release); then [profile.variables]; then the variables",
        "# returned by the challenge endpoint (which win).",
    ]

    private static func comment(_ line: String) -> String {
        line.isEmpty ? "#" : "# " + line
    }

    private static func exampleLines(_ name: String, _ example: ConfigExample) -> [String] {
        switch example {
        case .set(let value): return ["\(name) = \(value)"]
        case .commented(let value): return ["# \(name) = \(value)"]
        case .setWithAlternatives(let value, let alternatives):
            return ["\(name) = \(value)"] + alternatives.map { "# \(name) = \($0)" }
        case .omitted: return []
        }
    }

    // MARK: - The README table

    static let markdownBegin = "<!-- config-keys: generated by `enroll-agent config-keys --format markdown` (scripts/generate-config-docs.sh); do not edit -->"
    static let markdownEnd = "<!-- end of config-keys -->"

    /// The README's key table, between its markers.
    static func markdownTable() -> String {
        var lines = [markdownBegin, "", "| key | type | default | meaning |", "|---|---|---|---|"]
        for key in RootKeys.keys {
            lines.append(row("`\(key.name)`", key.type, key.defaultValue, key.summary))
        }
        for key in ProfileKeys.all {
            lines.append(row("`\(key.name)`", key.type, key.defaultValue, key.summary))
        }
        for key in ChallengeKeys.keys {
            lines.append(row("`challenge.\(key.name)`", key.type, key.name == "source" ? .required : .none, key.summary))
        }
        lines += ["", markdownEnd]
        return lines.joined(separator: "\n") + "\n"
    }

    private static func row(_ name: String, _ type: ConfigValueType, _ defaultValue: ConfigDefault, _ summary: String) -> String {
        "| \(name) | \(type.description) | \(defaultValue.description) | \(summary.replacingOccurrences(of: "|", with: "\\|")) |"
    }

    /// `text` with the part between the markers replaced by `table`; nil when a marker is missing.
    static func replacingMarkdownTable(in text: String, with table: String) -> String? {
        guard let begin = text.range(of: markdownBegin), let end = text.range(of: markdownEnd),
              begin.lowerBound < end.lowerBound else { return nil }
        var after = end.upperBound
        if after < text.endIndex, text[after] == "\n" { after = text.index(after: after) }
        return String(text[..<begin.lowerBound]) + table + String(text[after...])
    }

    // MARK: - Plain text

    /// `enroll-agent config-keys`: one key a line, for a terminal.
    static func plainList() -> String {
        var lines: [String] = []
        func add(_ name: String, _ type: ConfigValueType, _ defaultValue: ConfigDefault, _ summary: String) {
            let plain = { (text: String) in text.replacingOccurrences(of: "`", with: "") }
            lines.append("\(name)  (\(plain(type.description)); default: \(plain(defaultValue.description)))")
            lines.append("    \(plain(summary))")
        }
        for key in RootKeys.keys { add(key.name, key.type, key.defaultValue, key.summary) }
        for key in ProfileKeys.all { add("profile.\(key.name)", key.type, key.defaultValue, key.summary) }
        for key in ChallengeKeys.keys {
            add("profile.challenge.\(key.name)", key.type, key.name == "source" ? .required : .none, key.summary)
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
