import SwiftASN1

/// The text of an ASN.1 character string of any of the types a server may pick
/// (DirectoryString and friends), for values we only show, never compare.
enum ASN1Text {
    static func decode(_ value: ASN1Any) -> String? {
        var serializer = DER.Serializer()
        guard (try? serializer.serialize(value)) != nil,
              let node = try? DER.parse(serializer.serializedBytes),
              case .primitive(let content) = node.content,
              node.identifier.tagClass == .universal else { return nil }
        let bytes = Array(content)
        switch node.identifier.tagNumber {
        case 12, 19, 22, 26:  // UTF8String, PrintableString, IA5String, VisibleString
            return String(decoding: bytes, as: UTF8.self)
        case 20:  // TeletexString: in practice Latin-1
            return String(bytes.map { Character(Unicode.Scalar($0)) })
        case 30:  // BMPString: UTF-16BE
            guard bytes.count % 2 == 0 else { return nil }
            let units = stride(from: 0, to: bytes.count, by: 2).map { UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]) }
            return String(decoding: units, as: UTF16.self)
        case 28:  // UniversalString: UTF-32BE
            guard bytes.count % 4 == 0 else { return nil }
            var text = ""
            for offset in stride(from: 0, to: bytes.count, by: 4) {
                let value = bytes[offset..<offset + 4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
                text.unicodeScalars.append(Unicode.Scalar(value) ?? "\u{FFFD}")
            }
            return text
        default:
            return nil
        }
    }
}
