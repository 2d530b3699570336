import CTSS2
import KeyInterface
import SwiftASN1

/// The public half of a TPM EC key (NIST P-256 or P-384), read from its TPMT_PUBLIC,
/// as the SubjectPublicKeyInfo the request and the certificate carry.
struct TPMECPublicKey: Equatable, Sendable {
    let curve: EllipticCurve
    /// The affine coordinates, big-endian, each `curve.coordinateLength` bytes.
    let x: [UInt8]
    let y: [UInt8]

    /// id-ecPublicKey (RFC 5480 §2.1.1).
    static let ecPublicKeyOID: ASN1ObjectIdentifier = [1, 2, 840, 10045, 2, 1]

    init(curve: EllipticCurve, x: [UInt8], y: [UInt8]) throws {
        let length = curve.coordinateLength
        // The TPM may drop leading zero bytes; a coordinate longer than the curve is corrupt.
        guard x.count <= length, y.count <= length, !x.isEmpty, !y.isEmpty else {
            throw TPMError(.invalidKeyFile, "the TPM key's EC point has coordinates of \(x.count) and \(y.count) bytes; \(curve.rawValue) has \(length)")
        }
        self.curve = curve
        self.x = [UInt8](repeating: 0, count: length - x.count) + x
        self.y = [UInt8](repeating: 0, count: length - y.count) + y
    }

    /// Reads an ECC public area on a supported curve; throws for anything else.
    init(_ tpmPublic: TPM2B_PUBLIC) throws {
        let area = tpmPublic.publicArea
        guard area.type == TPM2_ALG_ECC else {
            throw TPMError(.invalidKeyFile, "the TPM key is not an EC key (TPM algorithm 0x\(String(area.type, radix: 16)))")
        }
        guard let curve = EllipticCurve(tpmCurve: area.parameters.eccDetail.curveID) else {
            throw TPMError(.invalidKeyFile,
                           "the TPM key is on TPM curve 0x\(String(area.parameters.eccDetail.curveID, radix: 16)); only NIST P-256 and P-384 are supported")
        }
        let point = area.unique.ecc
        try self.init(curve: curve,
                      x: TSS2Buffer.bytes(of: point.x.buffer, count: Int(point.x.size)),
                      y: TSS2Buffer.bytes(of: point.y.buffer, count: Int(point.y.size)))
    }

    /// DER SubjectPublicKeyInfo (RFC 5480 §2): the algorithm id-ecPublicKey with the named
    /// curve as parameter, and the uncompressed point 04 || x || y as the BIT STRING.
    func subjectPublicKeyInfo() throws -> [UInt8] {
        var spki = DER.Serializer()
        try spki.appendConstructedNode(identifier: .sequence) { coder in
            try coder.appendConstructedNode(identifier: .sequence) { coder in
                try coder.serialize(Self.ecPublicKeyOID)
                try coder.serialize(curve.namedCurveOID)
            }
            try coder.serialize(ASN1BitString(bytes: ArraySlice([0x04] + x + y)))
        }
        return spki.serializedBytes
    }

    /// ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER } (RFC 5480 §2.2.3), from the
    /// TPM's unsigned big-endian r and s.
    static func signatureDER(r: [UInt8], s: [UInt8]) throws -> [UInt8] {
        var serializer = DER.Serializer()
        try serializer.appendConstructedNode(identifier: .sequence) { coder in
            try coder.serialize(ArraySlice(minimalUnsigned(r)))
            try coder.serialize(ArraySlice(minimalUnsigned(s)))
        }
        return serializer.serializedBytes
    }

    /// Without leading zero bytes (at least one byte): DER INTEGERs are minimal, and
    /// swift-asn1 adds the zero a high bit needs.
    static func minimalUnsigned(_ bytes: [UInt8]) -> [UInt8] {
        let trimmed = Array(bytes.drop(while: { $0 == 0 }))
        return trimmed.isEmpty ? [0] : trimmed
    }
}

extension EllipticCurve {
    /// The TPM's identifier (TPM 2.0 Part 2 §6.4).
    var tpmCurve: TPM2_ECC_CURVE { self == .p256 ? TPM2_ECC_NIST_P256 : TPM2_ECC_NIST_P384 }

    init?(tpmCurve: TPM2_ECC_CURVE) {
        switch tpmCurve {
        case TPM2_ECC_NIST_P256: self = .p256
        case TPM2_ECC_NIST_P384: self = .p384
        default: return nil
        }
    }

    /// secp256r1 (1.2.840.10045.3.1.7) and secp384r1 (1.3.132.0.34), RFC 5480 §2.1.1.1.
    var namedCurveOID: ASN1ObjectIdentifier {
        self == .p256 ? [1, 2, 840, 10045, 3, 1, 7] : [1, 3, 132, 0, 34]
    }
}
