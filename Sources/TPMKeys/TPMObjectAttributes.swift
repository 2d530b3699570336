import CTSS2

/// TPMA_OBJECT bits (TPM 2.0 Part 2 §8.3) by the names the specification
/// and tpm2-tools use, so that error messages say which attribute a key
/// lacks or has too many instead of printing a bare mask.
enum TPMObjectAttributes {
    /// The attributes that together say a key was generated inside this TPM
    /// and can never leave it: fixedTPM (not duplicable to another TPM),
    /// fixedParent (not re-wrapped under another parent), sensitiveDataOrigin
    /// (the TPM, not the caller, generated the private key).
    static let bornInThisTPM: TPMA_OBJECT =
        TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN

    private static let named: [(bit: TPMA_OBJECT, name: String)] = [
        (TPMA_OBJECT_FIXEDTPM, "fixedTPM"),
        (TPMA_OBJECT_STCLEAR, "stClear"),
        (TPMA_OBJECT_FIXEDPARENT, "fixedParent"),
        (TPMA_OBJECT_SENSITIVEDATAORIGIN, "sensitiveDataOrigin"),
        (TPMA_OBJECT_USERWITHAUTH, "userWithAuth"),
        (TPMA_OBJECT_ADMINWITHPOLICY, "adminWithPolicy"),
        (TPMA_OBJECT_NODA, "noDA"),
        (TPMA_OBJECT_ENCRYPTEDDUPLICATION, "encryptedDuplication"),
        (TPMA_OBJECT_RESTRICTED, "restricted"),
        (TPMA_OBJECT_DECRYPT, "decrypt"),
        (TPMA_OBJECT_SIGN_ENCRYPT, "sign"),
        (TPMA_OBJECT_X509SIGN, "x509sign"),
    ]

    /// The names of the bits set in `attributes`, in bit order; a bit without
    /// a name (reserved) appears as its hex value.
    static func names(_ attributes: TPMA_OBJECT) -> [String] {
        var rest = attributes
        var result: [String] = []
        for (bit, name) in named where attributes & bit != 0 {
            result.append(name)
            rest &= ~bit
        }
        if rest != 0 { result.append("0x" + String(rest, radix: 16)) }
        return result
    }

    /// "fixedTPM, fixedParent" — the names of `attributes` joined for a sentence.
    static func list(_ attributes: TPMA_OBJECT) -> String {
        names(attributes).joined(separator: ", ")
    }
}
