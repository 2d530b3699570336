import CTSS2
import KeyInterface

/// An RSA or EC enrollment key whose private half lives in a TPM 2.0.
///
/// The value holds only the key file (public area and the TPM-wrapped private
/// blob) and the TCTI; each operation opens the TPM, re-creates or finds the
/// storage root key, loads the key, runs one command, flushes everything and
/// closes the TPM again (see `TPMConnection`). That keeps swtpm and
/// non-resource-managed TPMs free for other clients between operations.
public struct TPMKey: EnrollmentKey {
    /// The TCTI configuration string the key is used through.
    public let tcti: String
    let keyFile: TSS2PrivateKeyFile
    let publicKey: PublicKey
    private let keyPublic: TPM2B_PUBLIC
    private let keyPrivate: TPM2B_PRIVATE

    /// The public half, by key type.
    enum PublicKey: Equatable, Sendable {
        case rsa(TPMRSAPublicKey)
        case ec(TPMECPublicKey)
    }

    /// DER SubjectPublicKeyInfo of the public key.
    public let subjectPublicKeyInfo: [UInt8]

    public var storage: KeyStorageKind { .tpm }

    public var algorithm: KeyAlgorithm {
        switch publicKey {
        case .rsa(let rsa): return .rsa(bits: rsa.keyBits)
        case .ec(let ec): return .ec(ec.curve)
        }
    }

    /// Key size in bits: the RSA modulus, or the curve's order.
    public var keyBits: Int {
        switch publicKey {
        case .rsa(let rsa): return rsa.keyBits
        case .ec(let ec): return ec.curve.coordinateLength * 8
        }
    }

    /// TPM handle of the parent recorded in the key file (0x40000001 or 0x81000001).
    public var parentHandle: UInt32 { keyFile.parent }

    init(keyFile: TSS2PrivateKeyFile, tcti: String) throws {
        guard keyFile.emptyAuth else {
            throw TPMError(.authorizationRequired,
                           "the TSS2 key needs an authorization value (emptyAuth is not set); the agent only uses keys with an empty auth value")
        }
        self.keyFile = keyFile
        self.tcti = tcti
        keyPublic = try TSS2Marshalling.unmarshalPublic(keyFile.publicBlob)
        keyPrivate = try TSS2Marshalling.unmarshalPrivate(keyFile.privateBlob)
        let attributes = keyPublic.publicArea.objectAttributes
        // A key brought in with TPM2_Import (or duplicable) has a private half
        // that was, or can be, outside the TPM: not a hardware-bound key.
        let missingOrigin = TPMObjectAttributes.bornInThisTPM & ~attributes
        guard missingOrigin == 0 else {
            throw TPMError(.keyNotCreatedInTPM,
                           "the TPM key lacks \(TPMObjectAttributes.list(missingOrigin)): it was not born in this TPM (imported, or duplicable to another parent or TPM), so its private key may exist outside the TPM; the agent does not use it, enroll a new key")
        }
        // An RSA key also opens the SCEP reply; an EC key only signs (its reply goes to
        // a temporary RSA key).
        let isRSA = keyPublic.publicArea.type == TPM2_ALG_RSA
        let needed = TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_USERWITHAUTH | (isRSA ? TPMA_OBJECT_DECRYPT : 0)
        guard attributes & needed == needed, attributes & TPMA_OBJECT_RESTRICTED == 0 else {
            throw TPMError(.invalidKeyFile,
                           "the TPM key cannot serve as an enrollment key: it must be an unrestricted \(isRSA ? "sign + decrypt" : "signing") key usable with its auth value (attributes 0x\(String(attributes, radix: 16)))")
        }
        if isRSA {
            let rsa = try TPMRSAPublicKey(keyPublic)
            publicKey = .rsa(rsa)
            subjectPublicKeyInfo = try rsa.subjectPublicKeyInfo()
        } else {
            let ec = try TPMECPublicKey(keyPublic)
            publicKey = .ec(ec)
            subjectPublicKeyInfo = try ec.subjectPublicKeyInfo()
        }
    }

    /// RSASSA-PKCS1-v1_5 (RSA) or ECDSA (EC, DER) over `digest`, computed inside the TPM.
    public func sign(digest: [UInt8], algorithm: DigestAlgorithm) throws -> [UInt8] {
        guard digest.count == algorithm.length else {
            throw TPMError(.invalidInput,
                           "a \(algorithm.rawValue.uppercased()) digest is \(algorithm.length) bytes, got \(digest.count)")
        }
        switch publicKey {
        case .rsa:
            return try withLoadedKey { connection, key in
                try connection.signRSASSA(key: key, digest: digest, hashAlgorithm: algorithm.tpmAlgorithm)
            }
        case .ec:
            let (r, s) = try withLoadedKey { connection, key in
                try connection.signECDSA(key: key, digest: digest, hashAlgorithm: algorithm.tpmAlgorithm)
            }
            return try TPMECPublicKey.signatureDER(r: r, s: s)
        }
    }

    /// RSAES-PKCS1-v1_5 decryption inside the TPM (RSA keys only).
    public func decrypt(_ ciphertext: [UInt8]) throws -> [UInt8] {
        guard case .rsa(let rsaKey) = publicKey else {
            throw TPMError(.invalidInput, "an \(algorithm) key cannot decrypt an RSA key-transport envelope")
        }
        let modulusBytes = rsaKey.modulus.count
        guard !ciphertext.isEmpty, ciphertext.count <= modulusBytes else {
            throw TPMError(.invalidInput,
                           "an RSA-\(keyBits) ciphertext is at most \(modulusBytes) bytes, got \(ciphertext.count)")
        }
        return try withLoadedKey { connection, key in
            do {
                return try connection.decryptRSAES(key: key, ciphertext: ciphertext)
            } catch var error as TPMError where Self.isPaddingFailure(error) {
                error.code = .decryptionFailed
                error.message = "RSA decryption in the TPM failed: the ciphertext was not encrypted to this key (or is corrupt) [TCTI \"\(tcti)\", Esys_RSA_Decrypt returned \(error.responseCode.map { TSS2ResponseCode($0).description } ?? "?")]"
                throw error
            }
        }
    }

    /// A TPM reports bad PKCS#1 padding as TPM2_RC_VALUE; libtpms 0.9 (swtpm)
    /// answers TPM2_RC_FAILURE without entering failure mode. A TPM really in
    /// failure mode would already have refused the Load just before.
    private static func isPaddingFailure(_ error: TPMError) -> Bool {
        guard let rc = error.responseCode, let number = TSS2ResponseCode(rc).tpmErrorNumber else { return false }
        return number == enroll_TPM2_RC_VALUE || number == enroll_TPM2_RC_FAILURE
    }

    /// The key file: `-----BEGIN TSS2 PRIVATE KEY-----` (readable by tpm2-openssl).
    public func pemRepresentation() throws -> String {
        try keyFile.pemString()
    }

    private func withLoadedKey<T>(_ body: (TPMConnection, ESYS_TR) throws -> T) throws -> T {
        try TPMConnection.with(tcti: tcti) { connection in
            let parent = try TPMStorageRootKey.parent(forFileHandle: keyFile.parent, connection)
            let key = try connection.load(parent: parent, private: keyPrivate, public: keyPublic)
            // The parent's slot is not needed once the key is loaded.
            connection.flush(parent)
            return try body(connection, key)
        }
    }
}

extension DigestAlgorithm {
    /// The TPM algorithm identifier.
    var tpmAlgorithm: TPM2_ALG_ID {
        switch self {
        case .sha1: return TPM2_ALG_SHA1
        case .sha256: return TPM2_ALG_SHA256
        case .sha384: return TPM2_ALG_SHA384
        case .sha512: return TPM2_ALG_SHA512
        }
    }
}
