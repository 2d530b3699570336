import CTSS2
import SwiftASN1

/// The public half of a TPM RSA key, read from its TPMT_PUBLIC, in the
/// forms the rest of the agent needs (SubjectPublicKeyInfo DER).
struct TPMRSAPublicKey: Equatable, Sendable {
    /// The RSA modulus, big-endian, as the TPM stores it (keyBits / 8 bytes).
    let modulus: [UInt8]
    /// The public exponent (the TPM's 0 already replaced by 65537).
    let exponent: UInt32

    /// TPM 2.0 Part 2 §12.2.3.5: an exponent of zero means the default 2^16 + 1.
    static let defaultExponent: UInt32 = 65537

    /// rsaEncryption (RFC 8017 Appendix C).
    static let rsaEncryptionOID: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 1, 1]

    init(modulus: [UInt8], exponent: UInt32) {
        self.modulus = modulus
        self.exponent = exponent == 0 ? Self.defaultExponent : exponent
    }

    /// Reads an RSA public area; throws for any other key type.
    init(_ tpmPublic: TPM2B_PUBLIC) throws {
        let area = tpmPublic.publicArea
        guard area.type == TPM2_ALG_RSA else {
            throw TPMError(.invalidKeyFile, "the TPM key is not an RSA key (TPM algorithm 0x\(String(area.type, radix: 16)))")
        }
        let unique = area.unique.rsa
        let declaredBytes = Int(area.parameters.rsaDetail.keyBits) / 8
        guard unique.size > 0, Int(unique.size) == declaredBytes else {
            throw TPMError(.invalidKeyFile,
                           "the TPM key's modulus is \(unique.size) bytes, but its public area declares \(area.parameters.rsaDetail.keyBits) bits")
        }
        self.init(modulus: TSS2Buffer.bytes(of: unique.buffer, count: Int(unique.size)),
                  exponent: area.parameters.rsaDetail.exponent)
    }

    /// Modulus size in bits.
    var keyBits: Int { modulus.count * 8 }

    /// DER SubjectPublicKeyInfo (RFC 5280 §4.1, RFC 8017 Appendix A.1.1):
    ///
    /// ```
    /// SubjectPublicKeyInfo ::= SEQUENCE {
    ///     algorithm         SEQUENCE { rsaEncryption OID, NULL },
    ///     subjectPublicKey  BIT STRING -- DER of RSAPublicKey
    /// }
    /// RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }
    /// ```
    func subjectPublicKeyInfo() throws -> [UInt8] {
        var rsaKey = DER.Serializer()
        try rsaKey.appendConstructedNode(identifier: .sequence) { coder in
            try coder.serialize(ArraySlice(modulus))
            try coder.serialize(exponent)
        }
        var spki = DER.Serializer()
        try spki.appendConstructedNode(identifier: .sequence) { coder in
            try coder.appendConstructedNode(identifier: .sequence) { coder in
                try coder.serialize(Self.rsaEncryptionOID)
                try coder.serialize(ASN1Null())
            }
            try coder.serialize(ASN1BitString(bytes: ArraySlice(rsaKey.serializedBytes)))
        }
        return spki.serializedBytes
    }
}
