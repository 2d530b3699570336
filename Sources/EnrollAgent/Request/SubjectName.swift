import Foundation
import SCEPClient
import X509

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
/// bytes such as `\C3\A9`) are understood, and so are quoted values (`CN="Doe, John"`, as
/// Intune's documentation writes them). Multi-valued RDNs (`+`) and
/// `#`-hex (BER) values are rejected with a message saying so.
struct SubjectName: Equatable, Sendable, CustomStringConvertible {
    /// As written: most specific first (`CN` before `O`), the RFC 4514 string order.
    var attributes: [SubjectAttribute]

    /// The order in which the RDNs are encoded in the certificate's `Name` SEQUENCE:
    /// RFC 4514 §2.1 writes the last RDN first, so this is `attributes` reversed.
    var attributesInEncodingOrder: [SubjectAttribute] { attributes.reversed() }

    /// The X.509 name, each value in the string type its attribute type requires.
    func distinguishedName() throws -> DistinguishedName {
        try DistinguishedName(subjectAttributes: attributesInEncodingOrder.map { attribute in
            guard let type = ObjectIdentifierText.parse(attribute.oid) else {
                throw SCEPError(.invalidRequest, "subject attribute \(attribute.name): \"\(attribute.oid)\" is not a dotted OID")
            }
            return (type: type, value: attribute.value)
        })
    }

    /// Accepted attribute types. Names are case-insensitive; the first is the canonical one.
    ///
    /// The names are RFC 4514's, plus the keys of Microsoft's X.500 strings (CertStrToName /
    /// CertNameToStr, which Intune's "Subject name format" is parsed with: E, S, T, G, I, SN,
    /// SERIALNUMBER, Description, PostalCode, POBox, Phone), plus the LDAP names (RFC 4519)
    /// and OpenSSL's. Note that **SN is surname (2.5.4.4)**, as in Microsoft's and OpenSSL's
    /// naming and X.520 — not serialNumber, which is SERIALNUMBER.
    static let attributeTypes: [SubjectAttributeType] = [
        SubjectAttributeType("CN", "2.5.4.3", aliases: ["commonName"]),
        SubjectAttributeType("SN", "2.5.4.4", aliases: ["surname"]),
        SubjectAttributeType("serialNumber", "2.5.4.5"),
        SubjectAttributeType("C", "2.5.4.6", aliases: ["countryName"]),
        SubjectAttributeType("L", "2.5.4.7", aliases: ["localityName"]),
        SubjectAttributeType("ST", "2.5.4.8", aliases: ["S", "stateOrProvinceName"]),
        SubjectAttributeType("STREET", "2.5.4.9", aliases: ["streetAddress"]),
        SubjectAttributeType("O", "2.5.4.10", aliases: ["organizationName"]),
        SubjectAttributeType("OU", "2.5.4.11", aliases: ["organizationalUnitName"]),
        SubjectAttributeType("title", "2.5.4.12", aliases: ["T"]),
        SubjectAttributeType("description", "2.5.4.13"),
        SubjectAttributeType("postalCode", "2.5.4.17"),
        SubjectAttributeType("postOfficeBox", "2.5.4.18", aliases: ["POBox"]),
        SubjectAttributeType("telephoneNumber", "2.5.4.20", aliases: ["Phone"]),
        SubjectAttributeType("name", "2.5.4.41"),
        SubjectAttributeType("givenName", "2.5.4.42", aliases: ["G", "GN"]),
        SubjectAttributeType("initials", "2.5.4.43", aliases: ["I"]),
        SubjectAttributeType("generationQualifier", "2.5.4.44"),
        SubjectAttributeType("dnQualifier", "2.5.4.46"),
        SubjectAttributeType("pseudonym", "2.5.4.65"),
        SubjectAttributeType("emailAddress", "1.2.840.113549.1.9.1", aliases: ["E", "Email"]),
        SubjectAttributeType("unstructuredName", "1.2.840.113549.1.9.2"),
        SubjectAttributeType("DC", "0.9.2342.19200300.100.1.25", aliases: ["domainComponent"]),
        SubjectAttributeType("UID", "0.9.2342.19200300.100.1.1", aliases: ["userid"]),
    ]

    /// Every accepted spelling (canonical names and aliases), for messages and suggestions.
    static var acceptedNames: [String] { attributeTypes.flatMap { [$0.name] + $0.aliases } }

    /// The attribute type a name stands for (case-insensitive), or nil.
    static func attributeType(named name: String) -> SubjectAttributeType? {
        attributeTypes.first { type in
            ([type.name] + type.aliases).contains { $0.caseInsensitiveCompare(name) == .orderedSame }
        }
    }

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
            try checkValue(value, attribute: name, oid: oid)
            return SubjectAttribute(name: name, oid: oid, value: value)
        }

        private func resolveType(_ typeName: String) throws -> (String, String) {
            if let known = attributeType(named: typeName) {
                return (known.name, known.oid)
            }
            let numeric = typeName.lowercased().hasPrefix("oid.") ? String(typeName.dropFirst(4)) : typeName
            if ObjectIdentifierText.isValid(numeric) {
                return (numeric, numeric)
            }
            let accepted = attributeTypes.map { ([$0.name] + $0.aliases).joined(separator: "/") }.joined(separator: ", ")
            throw fail("unknown attribute type \"\(typeName)\"\(didYouMean(typeName, among: acceptedNames)); "
                       + "accepted (any case): \(accepted), or a dotted OID")
        }

        /// Reads up to an unescaped ',' or the end; trims unescaped spaces around the value.
        private mutating func parseValue(attribute: String) throws -> String {
            if index < bytes.count, bytes[index] == UInt8(ascii: "#") {
                throw fail("\(attribute): #-hex (BER) values are not supported; write the value as text (escape a leading '#' as \\#)")
            }
            if index < bytes.count, bytes[index] == UInt8(ascii: "\"") {
                return try parseQuotedValue(attribute: attribute)
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

        /// A quoted value, as Intune's documentation recommends for values with commas
        /// (`CN="Test User (TestCompany, LLC)"`): RFC 1779 quoting, where everything up to the
        /// closing quote is literal except backslash pairs, plus Microsoft's `""` for a quote
        /// (CertStrToName). Only spaces may follow the closing quote.
        private mutating func parseQuotedValue(attribute: String) throws -> String {
            index += 1 // opening quote
            var value: [UInt8] = []
            while true {
                guard index < bytes.count else {
                    throw fail("\(attribute): the quoted value has no closing '\"'")
                }
                let byte = bytes[index]
                if byte == UInt8(ascii: "\\") {
                    value.append(try parseEscape(attribute: attribute))
                    continue
                }
                index += 1
                if byte == UInt8(ascii: "\"") {
                    if index < bytes.count, bytes[index] == UInt8(ascii: "\"") {
                        value.append(byte) // "" inside quotes
                        index += 1
                        continue
                    }
                    break
                }
                value.append(byte)
            }
            skipSpaces()
            guard index == bytes.count || bytes[index] == UInt8(ascii: ",") else {
                throw fail("\(attribute): only ',' may follow a quoted value's closing '\"'")
            }
            return try decode(value[...], attribute: attribute)
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

        /// Limits of the ASN.1 string types these attributes are encoded with
        /// (``SubjectValueEncoding``), checked now so `check-config` reports them.
        private func checkValue(_ value: String, attribute: String, oid: String) throws {
            if oid == "2.5.4.6", !(value.count == 2 && value.allSatisfy({ $0.isASCII && $0.isLetter })) {
                throw fail("C must be a two-letter ISO 3166 country code, got \"\(value)\"")
            }
            let encoding = SubjectValueEncoding.required(forOID: oid)
            guard !encoding.canEncode(value) else { return }
            switch encoding {
            case .ia5String:
                throw fail("\(attribute) must be ASCII (it is encoded as an IA5String), got \"\(value)\"")
            case .printableString:
                throw fail("\(attribute) is encoded as a PrintableString: only letters, digits, space and ' ( ) + , - . / : = ? "
                           + "are allowed, got \"\(value)\"")
            case .utf8String:
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

/// An attribute type a subject template may name, e.g. givenName (G, GN) = 2.5.4.42.
struct SubjectAttributeType: Equatable, Sendable {
    /// The canonical name, used when the subject is written back (`description`).
    var name: String
    /// Dotted OID.
    var oid: String
    /// Other accepted spellings (Microsoft's X.500 keys, LDAP names).
    var aliases: [String]

    init(_ name: String, _ oid: String, aliases: [String] = []) {
        self.name = name
        self.oid = oid
        self.aliases = aliases
    }

    /// The ASN.1 string type the value is encoded with.
    var encoding: SubjectValueEncoding { SubjectValueEncoding.required(forOID: oid) }
}

/// A subject string that is not a distinguished name we can encode.
struct SubjectNameError: Error, Equatable, Sendable, CustomStringConvertible {
    var subject: String
    var message: String

    var description: String { "subject \"\(subject)\": \(message)" }
}
