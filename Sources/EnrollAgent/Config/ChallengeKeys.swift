import Foundation

/// The keys of `[profile.challenge]`. Which keys a source uses comes from here; building the
/// `ChallengeSource` from them is `ConfigDecoder.decodeChallenge`, since a source is a
/// combination of keys rather than one value.
enum ChallengeKeys {
    /// One `source = "…"` and what the example file says of it.
    struct Source {
        var name: String
        var comment: [String]
        /// The keys this source uses, with the example value the example file shows.
        var keys: [(name: String, example: String)]
    }

    struct Key {
        var name: String
        var type: ConfigValueType
        var summary: String
    }

    static let keys: [Key] = [
        Key(name: "source", type: .choice(sources.map(\.name)), summary: "where the challenge comes from (required)"),
        Key(name: "url", type: .url, summary: "`endpoint`: the management endpoint (https, or http to loopback only)"),
        Key(name: "token_file", type: .absolutePath, summary: "`endpoint`: file holding the bearer token"),
        Key(name: "file", type: .absolutePath, summary: "`file`: file holding a static challenge"),
        Key(name: "command", type: .command, summary: "`command`: a program printing the challenge on stdout"),
    ]

    static var names: [String] { keys.map(\.name) }

    static let sources: [Source] = [
        Source(name: "endpoint",
               comment: ["\"endpoint\": HTTPS GET to the management endpoint with",
                         "  \"Authorization: Bearer <token>\", the token read from token_file. The JSON",
                         "  answer {\"challenge\": \"...\", \"expires_in\": 600, \"variables\": {...}} may add",
                         "  template variables."],
               keys: [("url", "\"https://mdm.example.com/v1/scep/challenge\""),
                      ("token_file", "\"/etc/enroll-agent/device-token\"")]),
        Source(name: "file",
               comment: ["\"file\": a static challenge in a file readable only by root:enroll-agent."],
               keys: [("file", "\"/etc/enroll-agent/challenge\"")]),
        Source(name: "command",
               comment: ["\"command\": an executable (argv, absolute path) that prints the challenge on",
                         "stdout. It runs in the service's sandbox (see post_install above); a JIT",
                         "runtime (Java, Node.js, .NET) needs MemoryDenyWriteExecute=no in a drop-in."],
               keys: [("command", "[\"/usr/local/bin/get-scep-challenge\", \"--profile\", \"device\"]")]),
        Source(name: "none",
               comment: ["\"none\": the SCEP server needs no challenge."],
               keys: []),
    ]

    static func source(named name: String) -> Source? {
        sources.first { $0.name == name }
    }
}

/// The keys at the top of the file.
enum RootKeys {
    static let keys: [(name: String, type: ConfigValueType, defaultValue: ConfigDefault, summary: String)] = [
        ("state_dir", .absolutePath, .value("\"\(AgentConfig.defaultStateDirectory)\""),
         "store root; one folder per profile below it"),
        ("profile", .table, .required, "`[[profile]]`: one table per certificate"),
    ]

    static var names: [String] { keys.map(\.name) }
}
