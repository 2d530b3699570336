import CTSS2

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
    static func enrollmentKey(bits: Int) -> TPM2B_PUBLIC {
        var template = TPM2B_PUBLIC()
        template.publicArea.type = TPM2_ALG_RSA
        template.publicArea.nameAlg = TPM2_ALG_SHA256
        template.publicArea.objectAttributes =
            TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN
            | TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_DECRYPT
        template.publicArea.parameters.rsaDetail = enrollmentKeyParameters(bits: bits)
        return template
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
enum TPMStorageRootKey {
    /// The owner hierarchy handle, which a key file names as parent when the
    /// SRK is the transient primary re-created from `TPMKeyTemplates.storageRootKey`.
    static let ownerHierarchy: UInt32 = 0x4000_0001
    /// The well-known persistent SRK handle (TCG TPM v2.0 Provisioning Guidance).
    static let persistentHandle: UInt32 = 0x8100_0001

    /// The parent for a new key: the persistent SRK at 0x81000001 when one
    /// exists and is a storage key, else the primary re-created under the
    /// owner hierarchy. Returns its ESYS handle and the handle to record in
    /// the key file. Persistent objects are only read, never evicted.
    static func parentForNewKey(_ connection: TPMConnection) throws -> (object: ESYS_TR, fileHandle: UInt32) {
        if let persistent = try connection.persistentObject(at: persistentHandle) {
            let area = try connection.readPublic(persistent).publicArea
            let storage = TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT
            if area.objectAttributes & storage == storage && area.objectAttributes & TPMA_OBJECT_SIGN_ENCRYPT == 0 {
                return (persistent, persistentHandle)
            }
        }
        return (try createPrimary(connection), ownerHierarchy)
    }

    /// The parent a key file names: the owner hierarchy (re-created primary)
    /// or a persistent handle that must exist.
    static func parent(forFileHandle handle: UInt32, _ connection: TPMConnection) throws -> ESYS_TR {
        if handle == ownerHierarchy {
            return try createPrimary(connection)
        }
        guard (enroll_TPM2_PERSISTENT_FIRST...enroll_TPM2_PERSISTENT_LAST).contains(handle) else {
            throw TPMError(.invalidKeyFile,
                           "TSS2 key file: parent handle 0x\(String(handle, radix: 16)) is neither the owner hierarchy (0x40000001) nor a persistent key (0x81xxxxxx)")
        }
        guard let object = try connection.persistentObject(at: handle) else {
            throw TPMError(.keyNotLoadable,
                           "the key's parent, persistent key 0x\(String(handle, radix: 16)), does not exist in the TPM on TCTI \"\(connection.tcti.raw)\" (TPM cleared, or a different machine); enroll a new key",
                           tcti: connection.tcti.raw)
        }
        return object
    }

    private static func createPrimary(_ connection: TPMConnection) throws -> ESYS_TR {
        try connection.createPrimary(template: TPMKeyTemplates.storageRootKey,
                                     context: "re-creating the storage root key (ECC P-256) under the owner hierarchy")
    }
}
