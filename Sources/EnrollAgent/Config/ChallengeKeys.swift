import Foundation

/// The keys of `[profile.challenge]`. Which keys a source uses comes from here; building the
/// `ChallengeSource` from them is `ConfigDecoder.decodeChallenge`, since a source is a
/// combination of keys rather than one value.
enum ChallengeKeys {
    /// One `source = "…"` and what the example file says of it.
    struct Source {
        var name: String
        var comment: [String]
        /// Keys shown with an example value (set for the first source, commented for the others).
        var keys: [(name: String, example: String)]
        /// Further keys the source takes, shown commented.
        var optionalKeys: [(name: String, example: String)] = []
        /// Complete commented examples for services people meet (Okta, NDES).
        var recipes: [Recipe] = []

        /// Every key this source reads; the others are "not used with source = …".
        var usedKeys: [String] { keys.map(\.name) + optionalKeys.map(\.name) }
    }

    struct Recipe {
        var comment: [String]
        var lines: [String]
    }

    struct Key {
        var name: String
        var type: ConfigValueType
        var summary: String
    }

    static let keys: [Key] = [
        Key(name: "source", type: .choice(sources.map(\.name)), summary: "where the challenge comes from (required)"),
        Key(name: "url", type: .url, summary: "`endpoint`: the management endpoint (https, or http to loopback only)"),
        Key(name: "auth", type: .choice(EndpointAuth.names),
            summary: "`endpoint`: `bearer` (the default with `token_file`), `basic` or `ntlm` (with `username` and `password_file`)"),
        Key(name: "token_file", type: .absolutePath, summary: "`endpoint`, `auth = \"bearer\"`: file holding the bearer token"),
        Key(name: "username", type: .string, summary: "`endpoint`, `auth = \"basic\"` or `\"ntlm\"`: the user name (`DOMAIN\\user` or `user@domain` for NTLM)"),
        Key(name: "password_file", type: .absolutePath, summary: "`endpoint`, `auth = \"basic\"` or `\"ntlm\"`: file holding the password (secrets only from files)"),
        Key(name: "format", type: .choice(ChallengeFormat.allCases.map(\.rawValue)),
            summary: "`endpoint`: the answer: `json` (our contract, the default), `text` (the body is the challenge) or `ndes-admin` (an NDES mscep_admin page, UTF-8 or UTF-16)"),
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
                      ("token_file", "\"/etc/enroll-agent/device-token\"")],
               optionalKeys: [("auth", "\"bearer\"     # the default with token_file; \"basic\" / \"ntlm\" take username and password_file"),
                              ("username", "\"scep-client\""),
                              ("password_file", "\"/etc/enroll-agent/challenge-password\""),
                              ("format", "\"json\"     # the default; \"text\" (the body is the challenge) or \"ndes-admin\"")],
               recipes: [
                   Recipe(comment: ["Okta as CA, \"Dynamic SCEP URL\" of type Generic: Okta shows a challenge URL, a",
                                    "username and a password. Its challenge URL answers an NDES-style page over",
                                    "HTTP Basic. Put the password alone in a file (chmod 0640 root:enroll-agent)."],
                          lines: ["source = \"endpoint\"",
                                  "url = \"https://example.okta.com/…\"         # the Challenge URL Okta showed",
                                  "auth = \"basic\"",
                                  "username = \"…\"                            # the Username Okta showed",
                                  "password_file = \"/etc/enroll-agent/okta-challenge-password\"",
                                  "format = \"ndes-admin\""]),
                   Recipe(comment: ["Microsoft NDES: one-time passwords from its admin page. NDES asks for Windows",
                                    "authentication (NTLM) by default; \"basic\" where Basic is enabled in IIS.",
                                    "Use an account allowed to get enrollment passwords."],
                          lines: ["source = \"endpoint\"",
                                  "url = \"https://ndes.example.com/certsrv/mscep_admin/\"",
                                  "auth = \"ntlm\"",
                                  "username = 'EXAMPLE\\ndes-enroll'          # DOMAIN\\user (a literal string) or user@domain",
                                  "password_file = \"/etc/enroll-agent/ndes-password\"",
                                  "format = \"ndes-admin\""]),
               ]),
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
