import Foundation
import SCEPClient
import SwiftASN1
import X509

/// A distinguished name written the way `certificateUserIds` holds it.
///
/// Microsoft's examples (`X509:<I>DC=com,DC=contoso,CN=CONTOSO-DC-CA`,
/// `C=US,O=U.SGovernment,OU=DoD,OU=PKI,OU=CONTRACTOR,CN=CRL.BALA.SelfSignedCertificate`)
/// and the rule "in the reverse order of their format in the certificate. Don't add any
/// spaces" (how-to-certificate-based-authentication, "Test the username binding policy"):
/// the RDNs in the order they are encoded, most significant first — the reverse of
/// RFC 4514 and of what Windows and `openssl -nameopt RFC2253` display — joined by
/// "," with no space, attribute names as Windows' CertNameToStr writes them (`S` for
/// stateOrProvinceName, `E` for emailAddress, `OID.x.y.z` for names it has none for).
enum EntraDistinguishedName {
    static func format(_ name: DistinguishedName) -> String {
        name.map { rdn in rdn.map(attribute).joined(separator: "+") }.joined(separator: ",")
    }

    static func attribute(_ attribute: RelativeDistinguishedName.Attribute) -> String {
        "\(key(for: attribute.type))=\(quotedIfNeeded(text(of: attribute.value)))"
    }

    /// CertNameToStr's X.500 keys (wincrypt.h, CERT_RDN_ATTR names).
    static let keys: [ASN1ObjectIdentifier: String] = [
        [2, 5, 4, 3]: "CN", [2, 5, 4, 4]: "SN", [2, 5, 4, 5]: "SERIALNUMBER", [2, 5, 4, 6]: "C",
        [2, 5, 4, 7]: "L", [2, 5, 4, 8]: "S", [2, 5, 4, 9]: "STREET", [2, 5, 4, 10]: "O",
        [2, 5, 4, 11]: "OU", [2, 5, 4, 12]: "T", [2, 5, 4, 13]: "Description", [2, 5, 4, 17]: "PostalCode",
        [2, 5, 4, 42]: "G", [2, 5, 4, 43]: "I", [2, 5, 4, 46]: "dnQualifier",
        [0, 9, 2342, 19_200_300, 100, 1, 25]: "DC", [1, 2, 840, 113_549, 1, 9, 1]: "E",
    ]

    static func key(for type: ASN1ObjectIdentifier) -> String {
        keys[type] ?? "OID.\(type)"
    }

    /// The attribute's text; a value in no string type Windows decodes is written as
    /// RFC 4514 `#` + its DER in hex.
    static func text(of value: RelativeDistinguishedName.Attribute.Value) -> String {
        if let string = String(value) { return string }
        let any = ASN1Any(value)
        if let visible = try? ASN1VisibleString(asn1Any: any) { return String(visible) }
        if let bmp = try? ASN1BMPString(asn1Any: any) {
            let bytes = Array(bmp.bytes)
            let units = stride(from: 0, to: bytes.count - 1, by: 2).map { UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]) }
            return String(decoding: units, as: UTF16.self)
        }
        var serializer = DER.Serializer()
        try? serializer.serialize(any)
        return "#" + Hex.encode(serializer.serializedBytes)
    }

    /// CertNameToStr puts a value in double quotes (doubling any quote inside) when it
    /// holds a separator or starts or ends with a space; otherwise it is written as is.
    static func quotedIfNeeded(_ text: String) -> String {
        let special: Set<Character> = [",", "+", "=", "\"", "\n", "\r", "<", ">", "#", ";"]
        let needsQuotes = text.contains(where: special.contains) || text.first == " " || text.last == " "
        guard needsQuotes else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
