import CTSS2
import KeyInterface

/// The public-area templates the agent asks the TPM to create objects from.
enum TPMKeyTemplates {
    /// The storage root key as tpm2-openssl re-creates it for keys whose
    /// parent is the owner hierarchy (0x40000001): the TCG ECC P-256 SRK
    /// template with an *empty* `unique` field. Any difference — even in
    /// `unique` — yields a different primary key, and loading the child then
    /// fails with TPM2_RC_INTEGRITY (0x1DF). Equivalent CLI:
    /// `tpm2_createprimary -C o -G ecc256:aes128cfb -a "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda|restricted|decrypt"`.
    static var storageRootKey: TPM2B_PUBLIC {
        var template = TPM2B_PUBLIC()
        template.publicArea.type = TPM2_ALG_ECC
        template.publicArea.nameAlg = TPM2_ALG_SHA256
        template.publicArea.objectAttributes =
            TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN
            | TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_NODA | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT
        var ecc = TPMS_ECC_PARMS()
        ecc.symmetric.algorithm = TPM2_ALG_AES
        ecc.symmetric.keyBits.aes = 128
        ecc.symmetric.mode.aes = TPM2_ALG_CFB
        ecc.scheme.scheme = TPM2_ALG_NULL
        ecc.curveID = TPM2_ECC_NIST_P256
        ecc.kdf.scheme = TPM2_ALG_NULL
        template.publicArea.parameters.eccDetail = ecc
        return template
    }

    /// RSA parameters of an enrollment key: no symmetric algorithm and scheme
    /// NULL, so the caller picks RSASSA for signing and RSAES for decryption
    /// per command; exponent 0 (65537).
    static func enrollmentKeyParameters(bits: Int) -> TPMS_RSA_PARMS {
        var rsa = TPMS_RSA_PARMS()
        rsa.symmetric.algorithm = TPM2_ALG_NULL
        rsa.scheme.scheme = TPM2_ALG_NULL
        rsa.keyBits = TPMI_RSA_KEY_BITS(bits)
        rsa.exponent = 0
        return rsa
    }

    /// An unrestricted RSA sign + decrypt key with an empty auth value that
    /// never leaves this TPM (fixedTPM, fixedParent, sensitiveDataOrigin).
    ///
    /// noDA: with an empty auth value there is no secret to guess, so
    /// dictionary-attack protection only hurts — any local process failing
    /// authorization against the key (a wrong password on purpose or by
    /// mistake) would count toward lockout and lock this key out for every
    /// TLS client that uses key.pem. Access is controlled by who can read
    /// key.pem and open the TPM device instead (docs/tpm-key-access.md).
    static func enrollmentKey(bits: Int) -> TPM2B_PUBLIC {
        var template = TPM2B_PUBLIC()
        template.publicArea.type = TPM2_ALG_RSA
        template.publicArea.nameAlg = TPM2_ALG_SHA256
        template.publicArea.objectAttributes =
            TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN
            | TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_NODA | TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_DECRYPT
        template.publicArea.parameters.rsaDetail = enrollmentKeyParameters(bits: bits)
        return template
    }

    /// ECC parameters of an enrollment key: no symmetric algorithm, scheme and KDF NULL,
    /// so each TPM2_Sign picks ECDSA and its hash (as tpm2-openssl does too).
    static func enrollmentECKeyParameters(curve: EllipticCurve) -> TPMS_ECC_PARMS {
        var ecc = TPMS_ECC_PARMS()
        ecc.symmetric.algorithm = TPM2_ALG_NULL
        ecc.scheme.scheme = TPM2_ALG_NULL
        ecc.curveID = curve.tpmCurve
        ecc.kdf.scheme = TPM2_ALG_NULL
        return ecc
    }

    /// An unrestricted EC signing key (no decrypt: the SCEP reply goes to a temporary RSA
    /// key), with the RSA key's protections: empty auth, noDA, born in and bound to this TPM.
    static func enrollmentECKey(curve: EllipticCurve) -> TPM2B_PUBLIC {
        var template = TPM2B_PUBLIC()
        template.publicArea.type = TPM2_ALG_ECC
        template.publicArea.nameAlg = TPM2_ALG_SHA256
        template.publicArea.objectAttributes =
            TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN
            | TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_NODA | TPMA_OBJECT_SIGN_ENCRYPT
        template.publicArea.parameters.eccDetail = enrollmentECKeyParameters(curve: curve)
        return template
    }

    /// The TPM2_TestParms argument asking whether an EC enrollment key on `curve` can exist.
    static func enrollmentECKeyTestParameters(curve: EllipticCurve) -> TPMT_PUBLIC_PARMS {
        var parms = TPMT_PUBLIC_PARMS()
        parms.type = TPM2_ALG_ECC
        parms.parameters.eccDetail = enrollmentECKeyParameters(curve: curve)
        return parms
    }

    /// The TPM2_TestParms argument asking whether an enrollment key of `bits` can exist.
    static func enrollmentKeyTestParameters(bits: Int) -> TPMT_PUBLIC_PARMS {
        var parms = TPMT_PUBLIC_PARMS()
        parms.type = TPM2_ALG_RSA
        parms.parameters.rsaDetail = enrollmentKeyParameters(bits: bits)
        return parms
    }
}

/// Finds or re-creates the storage root key an enrollment key lives under.
///
/// A persistent object at 0x81000001 is only trusted as the SRK when its
/// public area matches `TPMKeyTemplates.storageRootKey`. Anything else there
/// (a key planted by another tool, an RSA SRK, a storage key with a password
/// and without noDA) is never authorized against: each failed authorization
/// with the empty password counts toward dictionary-attack lockout, and a few
/// failed enrollments would lock the TPM for every user.
enum TPMStorageRootKey {
    /// The owner hierarchy handle, which a key file names as parent when the
    /// SRK is the transient primary re-created from `TPMKeyTemplates.storageRootKey`.
    static let ownerHierarchy: UInt32 = 0x4000_0001
    /// The well-known persistent SRK handle (TCG TPM v2.0 Provisioning Guidance).
    static let persistentHandle: UInt32 = 0x8100_0001

    /// The parent for a new key: the persistent SRK at 0x81000001 when one
    /// exists and matches the SRK template, else the primary re-created under
    /// the owner hierarchy. Returns its ESYS handle and the handle to record
    /// in the key file. Persistent objects are only read, never evicted.
    static func parentForNewKey(_ connection: TPMConnection) throws -> (object: ESYS_TR, fileHandle: UInt32) {
        if let persistent = try connection.persistentObject(at: persistentHandle),
           differences(fromTemplate: try connection.readPublic(persistent).publicArea).isEmpty {
            return (persistent, persistentHandle)
        }
        return (try ownerPrimary(connection), ownerHierarchy)
    }

    /// The parent a key file names: the owner hierarchy (re-created primary)
    /// or a persistent key that must exist and match the SRK template. A
    /// persistent object that does not match is refused before Esys_Load, so
    /// no authorization is ever tried against it.
    static func parent(forFileHandle handle: UInt32, _ connection: TPMConnection) throws -> ESYS_TR {
        if handle == ownerHierarchy {
            return try ownerPrimary(connection)
        }
        let name = "0x" + String(handle, radix: 16)
        guard (enroll_TPM2_PERSISTENT_FIRST...enroll_TPM2_PERSISTENT_LAST).contains(handle) else {
            throw TPMError(.invalidKeyFile,
                           "TSS2 key file: parent handle \(name) is neither the owner hierarchy (0x40000001) nor a persistent key (0x81xxxxxx)")
        }
        guard let object = try connection.persistentObject(at: handle) else {
            throw TPMError(.keyNotLoadable,
                           "the key's parent, persistent key \(name), does not exist in the TPM on TCTI \"\(connection.tcti.raw)\" (TPM cleared, or a different machine); enroll a new key",
                           tcti: connection.tcti.raw)
        }
        let mismatches = unsafeParentProblems(try connection.readPublic(object).publicArea)
        guard mismatches.isEmpty else {
            throw TPMError(.keyNotLoadable,
                           "the key's parent, persistent key \(name) on TCTI \"\(connection.tcti.raw)\", is not a storage key the agent can load under without risking dictionary-attack lockout (\(mismatches.joined(separator: "; "))): it was replaced after the key was created. The agent does not use it, so that no authorization is tried against a foreign key; restore the original SRK at \(name), or enroll a new key",
                           tcti: connection.tcti.raw)
        }
        return object
    }

    /// The primary re-created from the SRK template under the owner hierarchy
    /// (key file parent 0x40000001); tracked, so flushed when the connection closes.
    static func ownerPrimary(_ connection: TPMConnection) throws -> ESYS_TR {
        try connection.createPrimary(template: TPMKeyTemplates.storageRootKey,
                                     context: "re-creating the storage root key (ECC P-256) under the owner hierarchy")
    }

    /// Why loading a key under `area` could count toward dictionary-attack lockout or is
    /// not a storage key at all; empty when it is safe to try. Looser than the template
    /// on purpose: key files created by earlier versions under another storage key at
    /// 0x81000001 (an RSA SRK, as Windows provisions) keep loading, because with noDA a
    /// failed authorization cannot count, whatever the key's algorithm.
    static func unsafeParentProblems(_ area: TPMT_PUBLIC) -> [String] {
        var found: [String] = []
        let required = TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT | TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_NODA
        let missing = required & ~area.objectAttributes
        if missing != 0 { found.append("it lacks \(TPMObjectAttributes.list(missing))") }
        if area.objectAttributes & TPMA_OBJECT_SIGN_ENCRYPT != 0 { found.append("it is a signing key, not a storage key") }
        if area.authPolicy.size != 0 { found.append("it has an authPolicy of \(area.authPolicy.size) bytes") }
        return found
    }

    /// How `area` differs from the SRK template, one phrase per field; empty
    /// when it is a storage key of exactly that kind. `unique` (the public
    /// point) is not compared: it differs per TPM and per primary seed.
    static func differences(fromTemplate area: TPMT_PUBLIC) -> [String] {
        let template = TPMKeyTemplates.storageRootKey.publicArea
        var found: [String] = []
        func hex<T: BinaryInteger>(_ value: T) -> String { "0x" + String(value, radix: 16) }

        if area.type != template.type {
            found.append("type \(hex(area.type)) instead of ECC (0x23)")
        }
        if area.nameAlg != template.nameAlg {
            found.append("nameAlg \(hex(area.nameAlg)) instead of SHA-256 (0xb)")
        }
        if area.objectAttributes != template.objectAttributes {
            let missing = template.objectAttributes & ~area.objectAttributes
            let extra = area.objectAttributes & ~template.objectAttributes
            var phrase = "objectAttributes \(hex(area.objectAttributes)) instead of \(hex(template.objectAttributes))"
            if missing != 0 { phrase += ", lacking \(TPMObjectAttributes.list(missing))" }
            if extra != 0 { phrase += ", with \(TPMObjectAttributes.list(extra))" }
            found.append(phrase)
        }
        if area.authPolicy.size != 0 {
            found.append("an authPolicy of \(area.authPolicy.size) bytes instead of none")
        }
        // The ECC parameters mean something only for an ECC key.
        guard area.type == TPM2_ALG_ECC else { return found }
        let ecc = area.parameters.eccDetail
        let expected = template.parameters.eccDetail
        if ecc.symmetric.algorithm != expected.symmetric.algorithm
            || ecc.symmetric.keyBits.aes != expected.symmetric.keyBits.aes
            || ecc.symmetric.mode.aes != expected.symmetric.mode.aes {
            found.append("symmetric algorithm \(hex(ecc.symmetric.algorithm))/\(ecc.symmetric.keyBits.aes) bits/mode \(hex(ecc.symmetric.mode.aes)) instead of AES-128-CFB")
        }
        if ecc.scheme.scheme != expected.scheme.scheme {
            found.append("scheme \(hex(ecc.scheme.scheme)) instead of NULL")
        }
        if ecc.curveID != expected.curveID {
            found.append("curve \(hex(ecc.curveID)) instead of NIST P-256 (0x3)")
        }
        if ecc.kdf.scheme != expected.kdf.scheme {
            found.append("kdf \(hex(ecc.kdf.scheme)) instead of NULL")
        }
        return found
    }
}
