import Foundation

/// Documentation generated from the key declarations (`ProfileKeys`, `ChallengeKeys`,
/// `RootKeys`): the example configuration and the README's key table. `enroll-agent
/// config-keys` prints them; `scripts/generate-config-docs.sh` writes them into the tree.
enum ConfigReference {
    // MARK: - The example file

    /// `packaging/config.example.toml`: every key, commented, with a working example value.
    static func exampleFile() -> String {
        let lines = exampleHeader + exampleCommonHeader + exampleStateDirectory + exampleProfile
        return lines.joined(separator: "\n") + "\n"
    }

    /// The configuration a package installs as `/etc/enroll-agent/config.toml`: the example
    /// with every line of the `[[profile]]` part commented out by one more `#`, so a fresh
    /// install enrolls nothing until the administrator defines a profile. Removing the first
    /// `#` of each line from `#[[profile]]` on (`disabledExampleEnableCommand`) gives back
    /// exactly the profile of `exampleFile()`.
    static func disabledExampleFile() -> String {
        let profile = exampleProfile.map { $0.isEmpty ? $0 : "#" + $0 }
        let lines = disabledExampleHeader + exampleCommonHeader + exampleStateDirectory + profile
        return lines.joined(separator: "\n") + "\n"
    }

    /// What turns the disabled example into a configured one, as the file's header tells it.
    static let disabledExampleEnableCommand = "sed -i '/^#\\[\\[profile\\]\\]/,$ s/^#//' /etc/enroll-agent/config.toml"

    private static let exampleStateDirectory = [
        "",
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
    ]

    /// From `[[profile]]` to the end of the example.
    private static var exampleProfile: [String] {
        var lines = ["[[profile]]"]
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
        return lines
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
    ]

    private static var disabledExampleHeader: [String] {[
        "# /etc/enroll-agent/config.toml — enroll-agent configuration (TOML).",
        "# Generated from the agent's key table (`enroll-agent config-keys --format disabled-example`).",
        "#",
        "# Nothing is configured yet: the [[profile]] below is commented out, so the agent",
        "# enrolls nothing. Until a profile is defined, `enroll-agent check-config` and",
        "# `enroll-agent run` stop with \"no [[profile]] defined\" (exit 78, which the",
        "# daemon's unit does not restart on).",
        "#",
        "# To configure a certificate, remove the first \"#\" of every line from",
        "# \"#[[profile]]\" on (lines starting with \"##\" stay comments):",
        "#",
        "#   \(disabledExampleEnableCommand)",
        "#",
        "# then set scep_url, the pinned CA and the challenge source, check the file as",
        "# the service user and start the daemon or the timer (not both):",
        "#",
        "#   sudo -u enroll-agent enroll-agent check-config",
        "#   systemctl enable --now enroll-agent    # or: enroll-agent-renew.timer",
        "#",
        "# Every key: enroll-agent.toml(5) or `enroll-agent config-keys`; the example",
        "# uncommented: /usr/share/doc/enroll-agent/config.example.toml. A package",
        "# installs this file as a conffile: your changes survive upgrades.",
    ]}

    /// The part of the header both examples share.
    private static let exampleCommonHeader = [
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

    // MARK: - The manual page

    /// `enroll-agent.toml(5)` in man(7) roff: every key with its type, default and meaning,
    /// and the example's active lines as a minimal configuration.
    static func manualPage(version: String) -> String {
        var lines = [
            ".\\\" Generated by `enroll-agent config-keys --format man` from the key table; do not edit.",
            ".TH ENROLL\\-AGENT.TOML 5 \"\" \"enroll\\-agent \(roffText(version))\" \"File Formats\"",
            ".SH NAME",
            "enroll\\-agent.toml \\- configuration file of enroll\\-agent, the SCEP certificate enrollment agent",
            ".SH SYNOPSIS",
            ".I /etc/enroll\\-agent/config.toml",
            ".SH DESCRIPTION",
            roff("`enroll-agent`(8) reads its configuration from `/etc/enroll-agent/config.toml`, or from the file `--config` names. The file is TOML: a few top-level keys, then one `[[profile]]` table per certificate, each with a `[profile.challenge]` table and optionally a `[profile.variables]` table. A file without any `[[profile]]` is a configuration error (exit 78): the agent has nothing to enroll."),
            ".PP",
            roff("Durations are written `\"30s\"`, `\"90m\"`, `\"12h\"`, `\"30d\"` or combined, largest unit first (`\"1d12h\"`). Templates (`{{Name}}`) take their values from the built-in variables `Hostname` and `MachineID`, then `[profile.variables]`, then the `variables` the challenge endpoint returns (which win)."),
            ".PP",
            roff("The service runs as user `enroll-agent`. Keep `/etc/enroll-agent` and every secret in it (tokens, challenge files) owned by `root:enroll-agent`, mode 0750 for the directory and 0640 for files: `check-config` refuses a secret file that every user can read. Secrets never appear in logs, argv or the store."),
            ".PP",
            roff("After editing, check the file as the service user with `sudo -u enroll-agent enroll-agent check-config`, and apply it to a running daemon with `systemctl reload enroll-agent`. `enroll-agent config-keys` lists the same keys on a terminal."),
            ".SH TOP\\-LEVEL KEYS",
        ]
        for key in RootKeys.keys {
            lines += manualEntry(key.name, key.type, key.defaultValue, key.summary)
        }
        lines += [".SH PROFILE KEYS", roff("Each `[[profile]]` table describes one certificate.")]
        for key in ProfileKeys.all {
            lines += manualEntry(key.name, key.type, key.defaultValue, key.summary)
        }
        lines += [".SH CHALLENGE KEYS",
                  roff("The `[profile.challenge]` table says where the one-time SCEP challenge comes from. Which keys apply depends on `source`.")]
        for key in ChallengeKeys.keys {
            lines += manualEntry(key.name, key.type, key.name == "source" ? .required : .none, key.summary)
        }
        lines += [".SH EXAMPLE",
                  roff("The keys the commented example sets, without its comments (the full example, with every key, is `/usr/share/doc/enroll-agent/config.example.toml` in the package and `enroll-agent config-keys --format example`):"),
                  ".PP", ".RS", ".nf"]
        lines += exampleActiveLines().map(roffCode)
        lines += [".fi", ".RE",
                  ".SH FILES",
                  ".TP", ".I /etc/enroll\\-agent/config.toml", "the configuration",
                  ".TP", ".I /var/lib/enroll\\-agent/", roff("the store (`state_dir`): `<profile>/live/{cert.pem,chain.pem,fullchain.pem,key.pem}`"),
                  ".SH SEE ALSO",
                  ".BR enroll\\-agent (8),",
                  ".BR systemctl (1)"]
        return lines.joined(separator: "\n") + "\n"
    }

    private static func manualEntry(_ name: String, _ type: ConfigValueType, _ defaultValue: ConfigDefault, _ summary: String) -> [String] {
        [".TP",
         ".B \(roffCode(name))",
         roff(summary.prefix(1).uppercased() + summary.dropFirst() + "."),
         ".br",
         roff("Type: \(type.description); default: \(defaultValue == .none ? "none" : defaultValue.description).")]
    }

    /// The example's lines that are not comments: a minimal configuration.
    static func exampleActiveLines() -> [String] {
        var lines: [String] = []
        for line in exampleFile().split(separator: "\n", omittingEmptySubsequences: false) {
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("["), !lines.isEmpty { lines.append("") }
            lines.append(String(line))
        }
        return lines
    }

    /// Prose with `code` spans (as the key table writes them) as one roff text line: code in bold
    /// with its minus signs kept as such.
    private static func roff(_ text: String) -> String {
        var output = ""
        for (index, part) in text.split(separator: "`", omittingEmptySubsequences: false).enumerated() {
            output += index % 2 == 1 ? "\\fB" + roffCode(String(part)) + "\\fR" : roffText(String(part))
        }
        return guardLineStart(output)
    }

    /// Literal text (a key, a value, a line of TOML): backslashes and hyphens escaped.
    private static func roffCode(_ text: String) -> String {
        guardLineStart(roffText(text).replacingOccurrences(of: "-", with: "\\-"))
    }

    /// Backslashes escaped, and every character outside ASCII as a groff `\[uXXXX]` escape
    /// (troff reads bytes, and warns on the UTF-8 of "–" or "…").
    private static func roffText(_ text: String) -> String {
        var output = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\\": output += "\\e"
            case _ where scalar.isASCII: output.unicodeScalars.append(scalar)
            default: output += "\\[u" + String(format: "%04X", scalar.value) + "]"
            }
        }
        return output
    }

    /// A text line starting with `.` or `'` would be read as a request.
    private static func guardLineStart(_ line: String) -> String {
        line.hasPrefix(".") || line.hasPrefix("'") ? "\\&" + line : line
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
