/// Hex text for fingerprints, serials and transactionIDs, without
/// `String(format:)` (which pulls in Foundation's formatting machinery).
public enum Hex {
    private static let lower = Array("0123456789abcdef".utf8)
    private static let upper = Array("0123456789ABCDEF".utf8)

    public static func encode<Bytes: Sequence>(_ bytes: Bytes, uppercase: Bool = false, separator: String = "") -> String
    where Bytes.Element == UInt8 {
        let digits = uppercase ? upper : lower
        var out: [UInt8] = []
        let separatorBytes = Array(separator.utf8)
        for (index, byte) in bytes.enumerated() {
            if index > 0 { out += separatorBytes }
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
