import Foundation
import SwiftASN1

/// A value that has the right type but not an acceptable form; `message` says what is expected.
struct InvalidConfigValue: Error, Equatable, Sendable {
    var message: String
}

/// Durations as written in the configuration: `30d`, `12h`, `90m`, `45s`, or combinations
/// in decreasing order such as `1d12h` or `2h30m`.
enum ConfigDuration {
    private static let units: [(unit: Character, seconds: Int)] = [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)]

    /// Seconds in `text`; throws `InvalidConfigValue` saying what a duration looks like.
    static func seconds(from text: String) throws -> TimeInterval {
        let hint = "expected a duration such as \"30d\", \"12h\", \"90m\", \"45s\" or \"1d12h\""
        guard !text.isEmpty else { throw InvalidConfigValue(message: "\(hint), got an empty string") }
        var total = 0
        var digits = ""
        var lastUnitIndex = -1
        for character in text {
            if character.isASCII, character.isNumber {
                digits.append(character)
                continue
            }
            guard let unitIndex = units.firstIndex(where: { $0.unit == character }) else {
                throw InvalidConfigValue(message: "\(hint), got \"\(text)\" ('\(character)' is not a unit: use d, h, m or s)")
            }
            guard !digits.isEmpty else {
                throw InvalidConfigValue(message: "\(hint), got \"\(text)\" (a number must come before '\(character)')")
            }
            guard let amount = Int(digits) else {
                throw InvalidConfigValue(message: "duration \"\(text)\" is too long")
            }
            guard unitIndex > lastUnitIndex else {
                throw InvalidConfigValue(message: "\(hint), got \"\(text)\" (units must appear once each, largest first)")
            }
            let (product, overflow) = amount.multipliedReportingOverflow(by: units[unitIndex].seconds)
            let (sum, overflow2) = total.addingReportingOverflow(product)
            guard !overflow, !overflow2 else {
                throw InvalidConfigValue(message: "duration \"\(text)\" is too long")
            }
            total = sum
            lastUnitIndex = unitIndex
            digits = ""
        }
        guard digits.isEmpty else {
            throw InvalidConfigValue(message: "\(hint), got \"\(text)\" (the number \(digits) has no unit)")
        }
        return TimeInterval(total)
    }

    /// `1d12h`, `90m`, `0s`: the canonical spelling of a whole number of seconds.
    static func format(_ seconds: TimeInterval) -> String {
        var remaining = Int(seconds.rounded())
        guard remaining > 0 else { return "0s" }
        var text = ""
        for (unit, size) in units where remaining >= size {
            text += "\(remaining / size)\(unit)"
            remaining %= size
        }
        return text
    }
}

/// SHA-256 fingerprints of the pinned CA, as pasted from `openssl x509 -fingerprint -sha256`
/// or `ca-info`: hex, with or without colons and spaces, any case.
enum CAPinFingerprint {
    /// 64 lowercase hex digits; throws `InvalidConfigValue` otherwise.
    static func normalize(_ text: String) throws -> String {
        let stripped = text.filter { $0 != ":" && $0 != " " && $0 != "\t" }.lowercased()
        guard stripped.allSatisfy({ $0.isHexDigit && $0.isASCII }) else {
            throw InvalidConfigValue(message:
                "expected a SHA-256 fingerprint (64 hex digits; colons and spaces allowed), got \"\(text)\" (not hexadecimal)")
        }
        guard stripped.count == 64 else {
            let hint = stripped.count == 40 ? " (a SHA-1 fingerprint? use SHA-256)" : ""
            throw InvalidConfigValue(message:
                "expected a SHA-256 fingerprint (64 hex digits; colons and spaces allowed), got \(stripped.count) hex digits\(hint)")
        }
        return stripped
    }
}

/// Dotted object identifiers (`1.3.6.1.5.5.7.3.2`).
enum ObjectIdentifierText {
    /// Whether `text` is a well-formed dotted OID: at least two arcs, decimal without
    /// leading zeros, first arc 0–2, second arc below 40 under arcs 0 and 1 (X.660).
    static func isValid(_ text: String) -> Bool {
        let arcs = text.split(separator: ".", omittingEmptySubsequences: false)
        guard arcs.count >= 2 else { return false }
        for arc in arcs {
            guard !arc.isEmpty, arc.allSatisfy({ $0.isASCII && $0.isNumber }) else { return false }
            if arc.count > 1, arc.first == "0" { return false }
        }
        guard let first = Int(arcs[0]), first <= 2 else { return false }
        if first < 2 {
            guard let second = Int(arcs[1]), second < 40 else { return false }
        }
        return true
    }

    /// The identifier `text` writes, when it is well-formed (``isValid(_:)``).
    static func parse(_ text: String) -> ASN1ObjectIdentifier? {
        guard isValid(text) else { return nil }
        return try? ASN1ObjectIdentifier(dotRepresentation: text)
    }
}

/// URL checks shared by `scep_url` and the challenge endpoint.
enum ConfigURL {
    /// Parses an absolute http(s) URL with a host; throws `InvalidConfigValue` naming what is wrong.
    static func parseHTTP(_ text: String, allowQuery: Bool) throws -> URL {
        guard let components = URLComponents(string: text), let url = components.url,
              let scheme = components.scheme?.lowercased() else {
            throw InvalidConfigValue(message: "expected an http:// or https:// URL, got \"\(text)\"")
        }
        guard scheme == "http" || scheme == "https" else {
            throw InvalidConfigValue(message: "expected an http:// or https:// URL, got scheme \"\(scheme)\"")
        }
        // percentEncodedHost: `host` would load ICU's IDNA data on every config load.
        guard let host = components.percentEncodedHost, !host.isEmpty else {
            throw InvalidConfigValue(message: "expected an http:// or https:// URL with a host name, got \"\(text)\"")
        }
        guard components.user == nil, components.password == nil else {
            throw InvalidConfigValue(message: "credentials in the URL are not allowed; remove the user:password@ part")
        }
        if !allowQuery, components.query != nil {
            throw InvalidConfigValue(message:
                "the URL must not contain a query (the agent appends ?operation=...), got \"\(text)\"")
        }
        guard components.fragment == nil else {
            throw InvalidConfigValue(message: "the URL must not contain a fragment ('#...'), got \"\(text)\"")
        }
        return url
    }

    /// Whether the URL's host is the loopback interface (127.0.0.1, ::1, localhost).
    static func isLoopback(_ url: URL) -> Bool {
        guard let host = URLComponents(url: url, resolvingAgainstBaseURL: false)?.percentEncodedHost?.lowercased() else {
            return false
        }
        return ["127.0.0.1", "localhost", "::1", "[::1]"].contains(host)
    }
}

/// Edit distance counting a swap of two neighbours as one edit (optimal string alignment),
/// to suggest the known word a typo was meant to be ("tmp" → "tpm").
func editDistance(_ lhs: String, _ rhs: String) -> Int {
    let a = Array(lhs.lowercased()), b = Array(rhs.lowercased())
    guard !a.isEmpty else { return b.count }
    guard !b.isEmpty else { return a.count }
    var distance = Array(repeating: Array(repeating: 0, count: b.count + 1), count: a.count + 1)
    for i in 0...a.count { distance[i][0] = i }
    for j in 0...b.count { distance[0][j] = j }
    for i in 1...a.count {
        for j in 1...b.count {
            let cost = a[i - 1] == b[j - 1] ? 0 : 1
            distance[i][j] = min(distance[i - 1][j] + 1, distance[i][j - 1] + 1, distance[i - 1][j - 1] + cost)
            if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                distance[i][j] = min(distance[i][j], distance[i - 2][j - 2] + 1)
            }
        }
    }
    return distance[a.count][b.count]
}

/// `; did you mean "x"?` when one of `candidates` is close to `word`, else "".
///
/// A candidate whose length differs from the word's by more than the allowed distance is
/// skipped unscored: the distance is at least that difference, and scoring a long word costs
/// its length times the candidate's (a 60 KB unknown key took seconds, found by fuzzing).
func didYouMean(_ word: String, among candidates: [String]) -> String {
    let allowed = max(1, word.count / 3)
    let scored = candidates.filter { abs($0.count - word.count) <= allowed }
        .map { ($0, editDistance(word, $0)) }.filter { $0.1 <= allowed }
    guard let best = scored.min(by: { $0.1 < $1.1 }) else { return "" }
    return "; did you mean \"\(best.0)\"?"
}

/// Environment variable names (`HTTPS_PROXY`): POSIX portable names.
enum EnvironmentName {
    static func isValid(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, !("0"..."9").contains(first) else { return false }
        return name.unicodeScalars.allSatisfy { scalar in
            switch scalar {
            case "A"..."Z", "a"..."z", "0"..."9", "_": return true
            default: return false
            }
        }
    }
}
