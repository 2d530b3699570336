import Foundation

/// The challenge in an answer that is not our JSON: a bare line (`format = "text"`) or an
/// NDES `mscep_admin` page (`format = "ndes-admin"`; Okta's generic dynamic challenge URL
/// answers the same kind of page).
///
/// Pure functions of the body and its Content-Type, apart from `EndpointChallengeProvider`
/// so that they build with Foundation, `AgentError` and `SecretText` alone (like
/// `EndpointAnswer`). Errors name `url` (already without its query) and never quote the
/// body: it holds the challenge, and a page may hold more.
enum ChallengePage {
    /// NDES's page is about 2 KiB; anything far larger is not it, and is not searched.
    static let maximumPageBytes = 256 * 1024

    /// `format = "text"`: the body, decoded and trimmed, is the challenge (one line, checked by `SecretText`).
    static func text(_ body: [UInt8], contentType: String?, url: String) throws -> IssuedChallenge {
        let text = BodyText.decode(body, contentType: contentType).text
        return IssuedChallenge(secret: try SecretText.validated(text, from: .endpoint(displayURL: url)), variables: [:])
    }

    /// `format = "ndes-admin"`: the password after "The enrollment challenge password is:",
    /// inside `<B>…</B>` on NDES's page. The pages NDES shows instead of a password (its
    /// cache is full, the account lacks permission) are named with what to do.
    static func ndesAdmin(_ body: [UInt8], contentType: String?, url: String, username: String?) throws -> IssuedChallenge {
        guard body.count <= maximumPageBytes else {
            throw AgentError(.challenge, "the page from \(url) is \(body.count) bytes; an NDES admin page is a few KiB, so this is "
                             + "not one (at most \(maximumPageBytes) bytes are read): check url and format")
        }
        let decoded = BodyText.decode(body, contentType: contentType)
        let page = NDESAdminPage(decoded.text)
        if let password = page.challengePassword {
            let secret = try SecretText.validated(password, from: .endpoint(displayURL: url))
            return IssuedChallenge(secret: secret, variables: [:])
        }
        let account = username.map { "the account \($0)" } ?? "the account"
        if page.says(NDESAdminPage.cacheFull) {
            throw AgentError(.challenge, "NDES at \(url) says \"The password cache is full\": it already holds as many unused one-time "
                             + "passwords as it keeps (5 by default, each valid for 60 minutes). Unused ones expire on their own, so a later "
                             + "run succeeds; if this repeats, something fetches passwords without using them, or raise PasswordMax under "
                             + "HKLM\\SOFTWARE\\Microsoft\\Cryptography\\MSCEP on the NDES server")
        }
        if page.says(NDESAdminPage.insufficientPermission) {
            throw AgentError(.challenge, "NDES at \(url) says \"You do not have sufficient permission\": \(account) may not obtain "
                             + "enrollment passwords. Give it Enroll permission on the certificate template NDES issues (NDES may also "
                             + "require it to be a local administrator of the NDES server), or configure an account that has it")
        }
        // The page is not shown: it may carry a password in a form we do not know.
        throw AgentError(.challenge, "the page from \(url) (\(body.count) bytes, read as \(decoded.encodingName)) has no enrollment "
                         + "challenge password (expected \"The enrollment challenge password is: <B> … </B>\"); check that url is "
                         + "NDES's mscep_admin page (or Okta's challenge URL) and that format matches what it serves")
    }
}

/// The text of an NDES admin page, and what it says.
///
/// NDES writes, e.g. (Windows Server 2012–2022, UTF-16LE):
///
///     <P> The thumbprint (hash value) for the CA certificate is: <B> 8A1B… </B> <P>
///     The enrollment challenge password is: <B> 3F9A7C21D04E6B58 </B> <P>
///     This password can be used only once and will expire within 60 minutes.
///
/// Matching ignores case, collapses whitespace (and `&nbsp;`) and skips any tags between
/// the label and the password, so `<b>`, `<B><FONT …>` and line breaks all read the same.
struct NDESAdminPage {
    static let passwordLabel = "the enrollment challenge password is:"
    static let cacheFull = "the password cache is full"
    static let insufficientPermission = "you do not have sufficient permission"

    /// Lowercased for searching; `original` keeps the password's case.
    private let folded: [Character]
    private let original: [Character]

    init(_ text: String) {
        // One space for every whitespace run, so a label broken over lines still matches.
        var normalized: [Character] = []
        var pendingSpace = false
        for character in text.replacingOccurrences(of: "&nbsp;", with: " ", options: .caseInsensitive) {
            if character.isWhitespace {
                pendingSpace = true
                continue
            }
            if pendingSpace && !normalized.isEmpty { normalized.append(" ") }
            pendingSpace = false
            normalized.append(character)
        }
        original = normalized
        // Lowercasing per character keeps the indexes of `original` (no "ß" → "ss" growth).
        folded = normalized.map { $0.isASCII ? Character($0.lowercased()) : $0 }
    }

    func says(_ phrase: String) -> Bool { range(of: phrase, from: 0) != nil }

    /// The first text after the label, past any tags; nil when there is none or it is not
    /// one token (words, or a tag that never closes, mean this is not the password).
    var challengePassword: String? {
        guard let label = range(of: Self.passwordLabel, from: 0) else { return nil }
        var index = label.upperBound
        func skipSpaces() { while index < original.count, original[index] == " " { index += 1 } }
        skipSpaces()
        while index < original.count, original[index] == "<" {
            guard let close = original[index...].firstIndex(of: ">") else { return nil }
            index = close + 1
            skipSpaces()
        }
        let end = original[index...].firstIndex(of: "<") ?? original.count
        let token = String(original[index..<end]).trimmingCharacters(in: .whitespaces)
        guard !token.isEmpty, !token.contains(" ") else { return nil }
        return token
    }

    private func range(of phrase: String, from start: Int) -> Range<Int>? {
        let needle = Array(phrase)
        guard !needle.isEmpty, folded.count >= needle.count else { return nil }
        var index = start
        while index + needle.count <= folded.count {
            if folded[index] == needle[0], folded[index..<index + needle.count].elementsEqual(needle) {
                return index..<index + needle.count
            }
            index += 1
        }
        return nil
    }
}

/// A body's text, as a browser would read it: a byte order mark first, then the
/// Content-Type charset, then the pattern of NUL bytes UTF-16 leaves in ASCII text
/// (NDES often serves UTF-16LE with neither BOM nor charset), then UTF-8, and
/// windows-1252 (what Okta's page declares) for anything else.
enum BodyText {
    struct Decoded: Equatable {
        var text: String
        /// For messages: "UTF-16LE (byte order mark)", "UTF-8", …
        var encodingName: String
    }

    static func decode(_ body: [UInt8], contentType: String?) -> Decoded {
        if body.starts(with: [0xEF, 0xBB, 0xBF]), let text = utf8(body.dropFirst(3)) {
            return Decoded(text: text, encodingName: "UTF-8 (byte order mark)")
        }
        if body.starts(with: [0xFF, 0xFE]), let text = utf16(body.dropFirst(2), littleEndian: true) {
            return Decoded(text: text, encodingName: "UTF-16LE (byte order mark)")
        }
        if body.starts(with: [0xFE, 0xFF]), let text = utf16(body.dropFirst(2), littleEndian: false) {
            return Decoded(text: text, encodingName: "UTF-16BE (byte order mark)")
        }
        if let charset = charset(of: contentType), let decoded = decode(body, charset: charset) {
            return decoded
        }
        if let littleEndian = utf16ByteOrder(body), let text = utf16(body[...], littleEndian: littleEndian) {
            return Decoded(text: text, encodingName: littleEndian ? "UTF-16LE (no byte order mark)" : "UTF-16BE (no byte order mark)")
        }
        if let text = utf8(body[...]) { return Decoded(text: text, encodingName: "UTF-8") }
        return Decoded(text: windows1252(body), encodingName: "windows-1252")
    }

    /// `text/html; charset="UTF-16"` → "utf-16".
    static func charset(of contentType: String?) -> String? {
        guard let contentType else { return nil }
        for parameter in contentType.split(separator: ";").dropFirst() {
            let parts = parameter.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, parts[0].lowercased() == "charset" else { continue }
            return parts[1].trimmingCharacters(in: CharacterSet(charactersIn: "\"'")).lowercased()
        }
        return nil
    }

    /// The charset the server named, or nil when it is unknown or the body does not decode as it.
    private static func decode(_ body: [UInt8], charset: String) -> Decoded? {
        switch charset {
        case "utf-8", "utf8":
            return utf8(body[...]).map { Decoded(text: $0, encodingName: "UTF-8 (charset)") }
        case "utf-16le":
            return utf16(body[...], littleEndian: true).map { Decoded(text: $0, encodingName: "UTF-16LE (charset)") }
        case "utf-16be":
            return utf16(body[...], littleEndian: false).map { Decoded(text: $0, encodingName: "UTF-16BE (charset)") }
        case "utf-16", "unicode":
            // Without a BOM, RFC 2781 says big-endian, but Windows means little-endian: look at the NULs.
            let littleEndian = utf16ByteOrder(body) ?? true
            return utf16(body[...], littleEndian: littleEndian)
                .map { Decoded(text: $0, encodingName: littleEndian ? "UTF-16LE (charset utf-16)" : "UTF-16BE (charset utf-16)") }
        case "windows-1252", "cp1252", "iso-8859-1", "latin1", "iso_8859-1", "us-ascii", "ascii":
            return Decoded(text: windows1252(body), encodingName: "windows-1252 (charset \(charset))")
        default:
            return nil
        }
    }

    /// Mostly-ASCII text in UTF-16 has a NUL in every other byte: at odd offsets for
    /// little-endian, at even ones for big-endian. Nil when neither pattern is clear.
    static func utf16ByteOrder(_ body: [UInt8]) -> Bool? {
        guard body.count >= 4, body.count % 2 == 0 else { return nil }
        let pairs = body.count / 2
        var oddNULs = 0, evenNULs = 0
        for pair in 0..<pairs {
            if body[2 * pair] == 0 { evenNULs += 1 }
            if body[2 * pair + 1] == 0 { oddNULs += 1 }
        }
        if oddNULs * 2 > pairs && evenNULs * 8 < pairs { return true }
        if evenNULs * 2 > pairs && oddNULs * 8 < pairs { return false }
        return nil
    }

    private static func utf8(_ bytes: ArraySlice<UInt8>) -> String? {
        String(bytes: bytes, encoding: .utf8)
    }

    private static func utf16(_ bytes: ArraySlice<UInt8>, littleEndian: Bool) -> String? {
        guard bytes.count % 2 == 0 else { return nil }
        var units: [UInt16] = []
        units.reserveCapacity(bytes.count / 2)
        var index = bytes.startIndex
        while index < bytes.endIndex {
            let first = UInt16(bytes[index]), second = UInt16(bytes[index + 1])
            units.append(littleEndian ? first | second << 8 : first << 8 | second)
            index += 2
        }
        // Unpaired surrogates mean this is not UTF-16.
        var text = ""
        var decoder = UTF16()
        var iterator = units.makeIterator()
        while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar): text.unicodeScalars.append(scalar)
            case .emptyInput: return text
            case .error: return nil
            }
        }
    }

    /// Never fails: the five bytes windows-1252 leaves undefined read as their Latin-1 controls.
    private static func windows1252(_ body: [UInt8]) -> String {
        String(bytes: body, encoding: .windowsCP1252) ?? String(body.map { Character(Unicode.Scalar($0)) })
    }
}
