import Foundation

/// Where a token or challenge came from, in the words error messages use.
enum SecretSource {
    /// `challenge.token_file` of the endpoint source.
    case tokenFile(path: String)
    /// `challenge.password_file` of the endpoint source (Basic, NTLM).
    case passwordFile(path: String)
    /// `challenge.file` of the file source.
    case challengeFile(path: String)
    /// `proxy_credentials_file` (`user:password`).
    case proxyCredentialsFile(path: String)
    /// The first line printed by `challenge.command`.
    case challengeCommand(executable: String)
    /// The `challenge` value of the endpoint's JSON answer (URL without its query).
    case endpoint(displayURL: String)

    /// "token_file /etc/x", "the challenge command /usr/bin/y", ...
    var name: String {
        switch self {
        case .tokenFile(let path): return "token_file \(path)"
        case .passwordFile(let path): return "password_file \(path)"
        case .challengeFile(let path): return "the challenge file \(path)"
        case .proxyCredentialsFile(let path): return "proxy_credentials_file \(path)"
        case .challengeCommand(let executable): return "the challenge command \(executable)"
        case .endpoint(let url): return "the management endpoint \(url)"
        }
    }

    var noun: String {
        switch self {
        case .tokenFile: return "token"
        case .passwordFile: return "password"
        case .proxyCredentialsFile: return "proxy credentials (user:password)"
        default: return "challenge"
        }
    }

    /// What the administrator does about a malformed secret.
    var remedy: String {
        switch self {
        case .tokenFile, .passwordFile, .challengeFile, .proxyCredentialsFile: return "write the \(noun) alone into the file, on one line"
        case .challengeCommand: return "make the command print the challenge alone on its first line"
        case .endpoint: return "the endpoint must answer a challenge of printable characters; ask its operator"
        }
    }
}

/// The rules every token and challenge passes before it is used: at most
/// `maximumBytes`, surrounding whitespace trimmed, not empty, and no control
/// character inside. A CR or LF inside a bearer token would end the
/// Authorization header and start another one (header injection), and no SCEP
/// server expects control characters in a challengePassword.
///
/// Errors name the source and, for a control character, its code point — never the secret.
enum SecretText {
    /// A token or challenge is a line of at most a few hundred bytes.
    static let maximumBytes = 64 * 1024

    /// Reads a secret file with the size bound, then applies `validated`.
    static func read(_ source: SecretSource, path: String) throws -> Secret {
        let bytes: [UInt8]
        do {
            bytes = try BoundedFileReader(limit: maximumBytes).read(path)
        } catch .tooLarge(let size) {
            throw tooLarge(source, size: size)
        } catch {
            throw AgentError(.challenge, "cannot read \(source.name): \(error.reason)")
        }
        guard let text = String(bytes: bytes, encoding: .utf8) else {
            throw AgentError(.challenge, "\(source.name) is not valid UTF-8 text; \(source.remedy)")
        }
        return try validated(text, from: source)
    }

    /// Trims surrounding whitespace and line breaks and checks what is left.
    static func validated(_ text: String, from source: SecretSource) throws -> Secret {
        guard text.utf8.count <= maximumBytes else { throw tooLarge(source, size: text.utf8.count) }
        let secret = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !secret.isEmpty else {
            switch source {
            case .challengeCommand: throw AgentError(.challenge, "\(source.name) printed nothing")
            case .endpoint: throw AgentError(.challenge, "\(source.name) answered with an empty challenge")
            default: throw AgentError(.challenge, "\(source.name) is empty")
            }
        }
        if let control = secret.unicodeScalars.first(where: isControl) {
            // The code point helps find the stray byte; the secret itself is never shown.
            throw AgentError(.challenge,
                "\(source.name): the \(source.noun) contains a control character (\(codePoint(control))); \(source.remedy)")
        }
        return Secret(secret)
    }

    /// C0 (which includes CR, LF and TAB), DEL and C1.
    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value)
    }

    /// `U+000A`.
    static func codePoint(_ scalar: Unicode.Scalar) -> String {
        let hex = String(scalar.value, radix: 16, uppercase: true)
        return "U+" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
    }

    private static func tooLarge(_ source: SecretSource, size: Int?) -> AgentError {
        let found = size.map { "is \($0) bytes" } ?? "is larger than the limit"
        return AgentError(.challenge, "\(source.name) \(found); a \(source.noun) may be at most \(maximumBytes) bytes: \(source.remedy)")
    }
}
