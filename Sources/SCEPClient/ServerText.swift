/// Text that came from a server (certificate subjects, failInfoText, HTTP bodies) made
/// safe to put into a log line or an error message: control characters, line and
/// paragraph separators and bidirectional overrides are shown as `\u{…}` (newlines as
/// `\n`), so a server cannot forge a log line or hide text.
public enum ServerText {
    public static func escaped(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.unicodeScalars.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if needsEscaping(scalar) {
                    out += "\\u{" + String(scalar.value, radix: 16) + "}"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }

    /// At most `limit` characters of `text`, escaped, with "…" when cut.
    public static func excerpt(_ text: String, limit: Int = 200) -> String {
        let cut = text.count > limit
        return escaped(String(text.prefix(limit))) + (cut ? "…" : "")
    }

    static func needsEscaping(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F: return true          // C0, DEL, C1
        case 0x2028, 0x2029: return true                    // line / paragraph separator
        case 0x202A...0x202E, 0x2066...0x2069: return true  // bidi embeddings, overrides, isolates
        case 0x200E, 0x200F, 0x061C: return true            // bidi marks
        default: return false
        }
    }
}
