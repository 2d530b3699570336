import Foundation

/// One attribute of a subject distinguished name, e.g. CN = "host01".
struct SubjectAttribute: Equatable, Sendable {
    /// Canonical short name (`CN`, `emailAddress`, ...) or the dotted OID when given as one.
    var name: String
    /// Dotted OID of the attribute type (X.520 / PKCS #9 / RFC 4519).
    var oid: String
    /// Unescaped value.
    var value: String
}

/// A subject distinguished name written as an RFC 4514 string: `CN=host01,O=Example,OU=IT`.
///
/// Escapes `\,` `\+` `\"` `\\` `\;` `\<` `\>` `\=` `\#` `\ ` and hex pairs (`\2C`, UTF-8
/// bytes such as `\C3\A9`) are understood. Multi-valued RDNs (`+`), quoted values and
/// `#`-hex (BER) values are rejected with a message saying so.
struct SubjectName: Equatable, Sendable, CustomStringConvertible {
    /// As written: most specific first (`CN` before `O`), the RFC 4514 string order.
    var attributes: [SubjectAttribute]

    /// The order in which the RDNs are encoded in the certificate's `Name` SEQUENCE:
    /// RFC 4514 §2.1 writes the last RDN first, so this is `attributes` reversed.
    var attributesInEncodingOrder: [SubjectAttribute] { attributes.reversed() }

    /// Accepted attribute names (case-insensitive) and their OIDs.
    static let attributeTypes: [(name: String, oid: String)] = [
        ("CN", "2.5.4.3"),
        ("O", "2.5.4.10"),
        ("OU", "2.5.4.11"),
        ("C", "2.5.4.6"),
        ("ST", "2.5.4.8"),
        ("L", "2.5.4.7"),
        ("emailAddress", "1.2.840.113549.1.9.1"),
        ("serialNumber", "2.5.4.5"),
        ("DC", "0.9.2342.19200300.100.1.25"),
        ("UID", "0.9.2342.19200300.100.1.1"),
    ]

    /// Alternative spellings accepted on input.
    private static let aliases = ["E": "emailAddress"]

    private static let specialCharacters: Set<UInt8> = Set("\"+,;<>\\=# ".utf8)

    /// The RFC 4514 string (canonical names, values escaped).
    var description: String {
        attributes.map { "\($0.name)=\(Self.escape($0.value))" }.joined(separator: ",")
    }

    /// Escapes a value for an RFC 4514 string: `,` `+` `"` `\` `;` `<` `>`, a leading `#`
    /// or space, a trailing space, and NUL.
    static func escape(_ value: String) -> String {
        var output = ""
        let characters = Array(value)
        for (index, character) in characters.enumerated() {
            switch character {
            case ",", "+", "\"", "\\", ";", "<", ">":
                output += "\\\(character)"
            case "#" where index == 0:
                output += "\\#"
            case " " where index == 0 || index == characters.count - 1:
                output += "\\ "
            case "\u{0}":
                output += "\\00"
            default:
                output.append(character)
            }
        }
        return output
    }

    /// Parses an RFC 4514 string; throws `SubjectNameError` naming the attribute and what is wrong.
    static func parse(_ text: String) throws -> SubjectName {
        var parser = Parser(text: text)
        return SubjectName(attributes: try parser.parse())
    }

    private struct Parser {
        let text: String
        let bytes: [UInt8]
        var index = 0

        init(text: String) {
            self.text = text
            bytes = Array(text.utf8)
        }

        mutating func parse() throws -> [SubjectAttribute] {
            skipSpaces()
            guard index < bytes.count else { throw fail("the subject is empty; expected e.g. \"CN=host01,O=Example\"") }
            var attributes: [SubjectAttribute] = []
            while true {
                attributes.append(try parseAttribute())
                guard index < bytes.count else { return attributes }
                // parseAttribute stops only at the end or at an unescaped ','.
                index += 1
                skipSpaces()
                guard index < bytes.count else {
                    throw fail("expected an attribute after the last ','")
                }
            }
        }

        private mutating func parseAttribute() throws -> SubjectAttribute {
            let typeStart = index
            while index < bytes.count, bytes[index] != UInt8(ascii: "="), bytes[index] != UInt8(ascii: ",") {
                index += 1
            }
            let typeName = String(decoding: bytes[typeStart..<index], as: UTF8.self)
                .trimmingCharacters(in: .whitespaces)
            guard !typeName.isEmpty else {
                throw fail("expected an attribute type such as CN, e.g. \"CN=host01,O=Example\"")
            }
            guard index < bytes.count, bytes[index] == UInt8(ascii: "=") else {
                throw fail("expected '=' after the attribute type \"\(typeName)\"")
            }
            let (name, oid) = try resolveType(typeName)
            index += 1 // =
            skipSpaces()
            let value = try parseValue(attribute: name)
            guard !value.isEmpty else {
                throw fail("\(name) has an empty value")
            }
            try checkValue(value, attribute: name)
            return SubjectAttribute(name: name, oid: oid, value: value)
        }

        private func resolveType(_ typeName: String) throws -> (String, String) {
            let canonical = aliases.first { $0.key.caseInsensitiveCompare(typeName) == .orderedSame }?.value ?? typeName
            if let known = attributeTypes.first(where: { $0.name.caseInsensitiveCompare(canonical) == .orderedSame }) {
                return (known.name, known.oid)
            }
            let numeric = typeName.hasPrefix("OID.") || typeName.hasPrefix("oid.") ? String(typeName.dropFirst(4)) : typeName
            if ObjectIdentifierText.isValid(numeric) {
                return (numeric, numeric)
            }
            let accepted = attributeTypes.map(\.name).joined(separator: ", ")
            throw fail("unknown attribute type \"\(typeName)\"; accepted: \(accepted), E, or a dotted OID")
        }

        /// Reads up to an unescaped ',' or the end; trims unescaped spaces around the value.
        private mutating func parseValue(attribute: String) throws -> String {
            if index < bytes.count, bytes[index] == UInt8(ascii: "#") {
                throw fail("\(attribute): #-hex (BER) values are not supported; write the value as text (escape a leading '#' as \\#)")
            }
            if index < bytes.count, bytes[index] == UInt8(ascii: "\"") {
                throw fail("\(attribute): quoted values are not supported; escape special characters with '\\' instead (e.g. \\,)")
            }
            var value: [UInt8] = []
            var significantLength = 0 // length up to the last escaped or non-space byte
            while index < bytes.count {
                let byte = bytes[index]
                switch byte {
                case UInt8(ascii: ","):
                    return try decode(value.prefix(significantLength), attribute: attribute)
                case UInt8(ascii: "\\"):
                    value.append(try parseEscape(attribute: attribute))
                    significantLength = value.count
                    continue
                case UInt8(ascii: "+"):
                    throw fail("\(attribute): multi-valued RDNs ('+') are not supported; write \\+ for a literal '+'")
                case UInt8(ascii: "\""), UInt8(ascii: ";"), UInt8(ascii: "<"), UInt8(ascii: ">"):
                    let character = Character(Unicode.Scalar(byte))
                    throw fail("\(attribute): '\(character)' must be escaped as \\\(character)")
                case UInt8(ascii: " "):
                    value.append(byte)
                default:
                    value.append(byte)
                    significantLength = value.count
                }
                index += 1
            }
            return try decode(value.prefix(significantLength), attribute: attribute)
        }

        private mutating func parseEscape(attribute: String) throws -> UInt8 {
            index += 1 // backslash
            guard index < bytes.count else {
                throw fail("\(attribute): '\\' at the end of the value; write \\\\ for a literal backslash")
            }
            let next = bytes[index]
            if specialCharacters.contains(next) {
                index += 1
                return next
            }
            if index + 1 < bytes.count, let high = hexValue(next), let low = hexValue(bytes[index + 1]) {
                index += 2
                return high << 4 | low
            }
            let shown = String(decoding: bytes[index..<min(index + 2, bytes.count)], as: UTF8.self)
            throw fail("\(attribute): invalid escape \\\(shown); escape only , + \" \\ ; < > = # and space, or write two hex digits (\\2C)")
        }

        private func decode(_ value: ArraySlice<UInt8>, attribute: String) throws -> String {
            guard let string = String(bytes: value, encoding: .utf8) else {
                throw fail("\(attribute): the hex escapes do not form valid UTF-8")
            }
            return string
        }

        /// Limits of the ASN.1 string types these attributes are encoded with.
        private func checkValue(_ value: String, attribute: String) throws {
            switch attribute {
            case "C":
                guard value.count == 2, value.allSatisfy({ $0.isASCII && $0.isLetter }) else {
                    throw fail("C must be a two-letter ISO 3166 country code, got \"\(value)\"")
                }
            case "emailAddress", "DC":
                guard value.allSatisfy(\.isASCII) else {
                    throw fail("\(attribute) must be ASCII, got \"\(value)\"")
                }
            default:
                break
            }
        }

        private func hexValue(_ byte: UInt8) -> UInt8? {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
            default: return nil
            }
        }

        private mutating func skipSpaces() {
            while index < bytes.count, bytes[index] == UInt8(ascii: " ") {
                index += 1
            }
        }

        private func fail(_ message: String) -> SubjectNameError {
            SubjectNameError(subject: text, message: message)
        }
    }
}

/// A subject string that is not a distinguished name we can encode.
struct SubjectNameError: Error, Equatable, Sendable, CustomStringConvertible {
    var subject: String
    var message: String

    var description: String { "subject \"\(subject)\": \(message)" }
}
