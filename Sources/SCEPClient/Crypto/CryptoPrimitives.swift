import COpenSSL
import SwiftASN1
import KeyInterface

/// The symmetric ciphers SCEP envelopes use (RFC 8894 §3.5.2, RFC 5652 §6).
/// We send AES only; we accept 3DES and single DES in replies, whose content is public.
public enum ContentCipher: String, Sendable, CaseIterable {
    case aes128CBC = "AES-128-CBC"
    case aes192CBC = "AES-192-CBC"
    case aes256CBC = "AES-256-CBC"
    case desEDE3CBC = "DES-EDE3-CBC"
    case desCBC = "DES-CBC"

    /// Weak ciphers are accepted only in replies, with a warning.
    public var isWeak: Bool { self == .desCBC || self == .desEDE3CBC }

    var keyLength: Int {
        switch self {
        case .aes128CBC: return 16
        case .aes192CBC: return 24
        case .aes256CBC: return 32
        case .desEDE3CBC: return 24
        case .desCBC: return 8
        }
    }

    var ivLength: Int { self == .desCBC || self == .desEDE3CBC ? 8 : 16 }
}

/// AES-GCM (RFC 5084), which step-ca uses for its replies when its provisioner says so,
/// in EnvelopedData (the tag appended to the ciphertext) or AuthEnvelopedData (RFC 5083).
/// Accepted in replies only; we send CBC, which every SCEP server reads.
public enum AuthenticatedCipher: String, Sendable, CaseIterable {
    case aes128GCM = "AES-128-GCM"
    case aes192GCM = "AES-192-GCM"
    case aes256GCM = "AES-256-GCM"

    var keyLength: Int {
        switch self {
        case .aes128GCM: return 16
        case .aes192GCM: return 24
        case .aes256GCM: return 32
        }
    }

    var objectIdentifier: ASN1ObjectIdentifier {
        switch self {
        case .aes128GCM: return OID.aes128GCM
        case .aes192GCM: return OID.aes192GCM
        case .aes256GCM: return OID.aes256GCM
        }
    }

    init?(objectIdentifier: ASN1ObjectIdentifier) {
        guard let match = Self.allCases.first(where: { $0.objectIdentifier == objectIdentifier }) else { return nil }
        self = match
    }
}

/// Crypto that is not a private-key operation, done with the system's libcrypto.
/// (Private-key operations go through `EnrollmentKey`, which may be a TPM.)
enum CryptoPrimitives {
    static func randomBytes(_ count: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        guard RAND_bytes(&bytes, Int32(count)) == 1 else {
            throw SCEPError(.crypto, "the random number generator failed: \(drainOpenSSLErrors())")
        }
        return bytes
    }

    static func digest(_ algorithm: DigestAlgorithm, _ data: [UInt8]) throws -> [UInt8] {
        guard let md = EVP_get_digestbyname(algorithm.openSSLName) else {
            throw SCEPError(.crypto, "digest \(algorithm.rawValue) unavailable: \(drainOpenSSLErrors())")
        }
        var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        guard EVP_Digest(data, data.count, &out, &length, md, nil) == 1 else {
            throw SCEPError(.crypto, "digest \(algorithm.rawValue) failed: \(drainOpenSSLErrors())")
        }
        return Array(out.prefix(Int(length)))
    }

    /// RSAES-PKCS1-v1_5 encryption to a SubjectPublicKeyInfo (CMS key transport).
    static func rsaEncrypt(_ plaintext: [UInt8], to subjectPublicKeyInfo: [UInt8]) throws -> [UInt8] {
        let key = try publicKey(subjectPublicKeyInfo)
        defer { EVP_PKEY_free(key) }
        guard let ctx = EVP_PKEY_CTX_new_from_pkey(nil, key, nil) else {
            throw SCEPError(.crypto, "cannot create an encryption context: \(drainOpenSSLErrors())")
        }
        defer { EVP_PKEY_CTX_free(ctx) }
        var length = 0
        guard EVP_PKEY_encrypt_init(ctx) == 1,
              EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1,
              EVP_PKEY_encrypt(ctx, nil, &length, plaintext, plaintext.count) == 1
        else {
            throw SCEPError(.crypto, "RSA key transport failed (is the recipient key RSA?): \(drainOpenSSLErrors())")
        }
        var out = [UInt8](repeating: 0, count: length)
        guard EVP_PKEY_encrypt(ctx, &out, &length, plaintext, plaintext.count) == 1 else {
            throw SCEPError(.crypto, "RSA key transport failed: \(drainOpenSSLErrors())")
        }
        return Array(out.prefix(length))
    }

    /// Verifies an RSASSA-PKCS1-v1_5 signature over `data`.
    static func verifyRSASignature(
        _ signature: [UInt8], over data: [UInt8], digest: DigestAlgorithm, subjectPublicKeyInfo: [UInt8]
    ) throws -> Bool {
        let key = try publicKey(subjectPublicKeyInfo)
        defer { EVP_PKEY_free(key) }
        guard EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA else {
            throw SCEPError(.unsupportedAlgorithm, "the reply signer's key is not RSA; only RSA signers are supported")
        }
        guard let ctx = EVP_MD_CTX_new() else { throw SCEPError(.crypto, "out of memory") }
        defer { EVP_MD_CTX_free(ctx) }
        guard EVP_DigestVerifyInit_ex(ctx, nil, digest.openSSLName, nil, nil, key, nil) == 1 else {
            throw SCEPError(.crypto, "cannot set up signature verification: \(drainOpenSSLErrors())")
        }
        let result = EVP_DigestVerify(ctx, signature, signature.count, data, data.count)
        _ = drainOpenSSLErrors()  // a bad signature leaves an error on the queue
        return result == 1
    }

    static func encrypt(_ plaintext: [UInt8], cipher: ContentCipher, key: [UInt8], iv: [UInt8]) throws -> [UInt8] {
        try run(cipher: cipher, key: key, iv: iv, input: plaintext, encrypt: true)
    }

    static func decrypt(_ ciphertext: [UInt8], cipher: ContentCipher, key: [UInt8], iv: [UInt8]) throws -> [UInt8] {
        try run(cipher: cipher, key: key, iv: iv, input: ciphertext, encrypt: false)
    }

    private static func run(cipher: ContentCipher, key: [UInt8], iv: [UInt8], input: [UInt8], encrypt: Bool) throws -> [UInt8] {
        guard key.count == cipher.keyLength, iv.count == cipher.ivLength else {
            throw SCEPError(.malformedReply, "\(cipher.rawValue): wrong key or IV length (\(key.count)/\(iv.count) bytes)")
        }
        if cipher == .desCBC, enroll_load_providers() != 1 {
            throw SCEPError(.unsupportedAlgorithm, "the reply uses single DES, which needs OpenSSL's legacy provider (ossl-modules/legacy.so), and it could not be loaded")
        }
        guard let evpCipher = EVP_CIPHER_fetch(nil, cipher.rawValue, nil) else {
            throw SCEPError(.unsupportedAlgorithm, "cipher \(cipher.rawValue) is unavailable in this OpenSSL: \(drainOpenSSLErrors())")
        }
        defer { EVP_CIPHER_free(evpCipher) }
        guard let ctx = EVP_CIPHER_CTX_new() else { throw SCEPError(.crypto, "out of memory") }
        defer { EVP_CIPHER_CTX_free(ctx) }
        guard EVP_CipherInit_ex2(ctx, evpCipher, key, iv, encrypt ? 1 : 0, nil) == 1 else {
            throw SCEPError(.crypto, "\(cipher.rawValue) init failed: \(drainOpenSSLErrors())")
        }
        var out = [UInt8](repeating: 0, count: input.count + 32)
        var written: Int32 = 0
        var total = 0
        let ok = out.withUnsafeMutableBufferPointer { buffer -> Bool in
            guard EVP_CipherUpdate(ctx, buffer.baseAddress, &written, input, Int32(input.count)) == 1 else { return false }
            total = Int(written)
            guard EVP_CipherFinal_ex(ctx, buffer.baseAddress! + total, &written) == 1 else { return false }
            total += Int(written)
            return true
        }
        guard ok else {
            let detail = drainOpenSSLErrors()
            throw SCEPError(encrypt ? .crypto : .decryptionFailed,
                            "\(cipher.rawValue) \(encrypt ? "encryption" : "decryption") failed (wrong key or corrupt content): \(detail)")
        }
        return Array(out.prefix(total))
    }

    /// AES-GCM decryption; throws `.decryptionFailed` unless the tag verifies.
    static func decryptGCM(_ ciphertext: [UInt8], tag: [UInt8], cipher: AuthenticatedCipher, key: [UInt8], nonce: [UInt8],
                           additionalData: [UInt8] = []) throws -> [UInt8] {
        try runGCM(cipher: cipher, key: key, nonce: nonce, input: ciphertext, additionalData: additionalData, tag: tag).output
    }

    /// AES-GCM encryption (for tests that play the server): ciphertext and a tag of `tagLength` bytes.
    static func encryptGCM(_ plaintext: [UInt8], cipher: AuthenticatedCipher, key: [UInt8], nonce: [UInt8],
                           additionalData: [UInt8] = [], tagLength: Int = 16) throws -> (ciphertext: [UInt8], tag: [UInt8]) {
        let result = try runGCM(cipher: cipher, key: key, nonce: nonce, input: plaintext, additionalData: additionalData,
                                tag: nil, tagLength: tagLength)
        return (result.output, result.tag)
    }

    private static func runGCM(cipher: AuthenticatedCipher, key: [UInt8], nonce: [UInt8], input: [UInt8], additionalData: [UInt8],
                               tag: [UInt8]?, tagLength: Int = 16) throws -> (output: [UInt8], tag: [UInt8]) {
        let encrypt = tag == nil
        let expectedTagLength = tag?.count ?? tagLength
        guard key.count == cipher.keyLength, !nonce.isEmpty, nonce.count <= 128, (12...16).contains(expectedTagLength) else {
            throw SCEPError(.malformedReply, "\(cipher.rawValue): wrong key, nonce or tag length (\(key.count)/\(nonce.count)/\(expectedTagLength) bytes)")
        }
        guard let evpCipher = EVP_CIPHER_fetch(nil, cipher.rawValue, nil) else {
            throw SCEPError(.unsupportedAlgorithm, "cipher \(cipher.rawValue) is unavailable in this OpenSSL: \(drainOpenSSLErrors())")
        }
        defer { EVP_CIPHER_free(evpCipher) }
        guard let ctx = EVP_CIPHER_CTX_new() else { throw SCEPError(.crypto, "out of memory") }
        defer { EVP_CIPHER_CTX_free(ctx) }
        // The nonce length first (GCM's default is 12), then key and nonce.
        guard EVP_CipherInit_ex2(ctx, evpCipher, nil, nil, encrypt ? 1 : 0, nil) == 1,
              EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, Int32(nonce.count), nil) == 1,
              EVP_CipherInit_ex2(ctx, nil, key, nonce, encrypt ? 1 : 0, nil) == 1 else {
            throw SCEPError(.crypto, "\(cipher.rawValue) init failed: \(drainOpenSSLErrors())")
        }
        var out = [UInt8](repeating: 0, count: input.count + 32)
        var tagBytes = tag ?? [UInt8](repeating: 0, count: tagLength)
        var written: Int32 = 0
        var total = 0
        let ok = out.withUnsafeMutableBufferPointer { buffer -> Bool in
            if !additionalData.isEmpty {
                guard EVP_CipherUpdate(ctx, nil, &written, additionalData, Int32(additionalData.count)) == 1 else { return false }
            }
            guard EVP_CipherUpdate(ctx, buffer.baseAddress, &written, input, Int32(input.count)) == 1 else { return false }
            total = Int(written)
            if !encrypt {
                let set = tagBytes.withUnsafeMutableBytes { EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, Int32($0.count), $0.baseAddress) }
                guard set == 1 else { return false }
            }
            // For decryption this is where the tag is checked.
            guard EVP_CipherFinal_ex(ctx, buffer.baseAddress! + total, &written) == 1 else { return false }
            total += Int(written)
            if encrypt {
                let get = tagBytes.withUnsafeMutableBytes { EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, Int32($0.count), $0.baseAddress) }
                guard get == 1 else { return false }
            }
            return true
        }
        guard ok else {
            let detail = drainOpenSSLErrors()
            throw SCEPError(encrypt ? .crypto : .decryptionFailed,
                            "\(cipher.rawValue) \(encrypt ? "encryption" : "decryption") failed"
                            + (encrypt ? "" : " (the authentication tag does not verify: wrong key or tampered content)")
                            + (detail.isEmpty ? "" : ": \(detail)"))
        }
        return (Array(out.prefix(total)), tagBytes)
    }

    private static func publicKey(_ spki: [UInt8]) throws -> OpaquePointer {
        var pointer: UnsafePointer<UInt8>? = nil
        let key: OpaquePointer? = spki.withUnsafeBufferPointer { buffer in
            pointer = buffer.baseAddress
            return d2i_PUBKEY(nil, &pointer, buffer.count)
        }
        guard let key else {
            throw SCEPError(.malformedReply, "cannot read a public key: \(drainOpenSSLErrors())")
        }
        return key
    }
}

/// Reads and clears libcrypto's error queue (TPMKeys owns the formatting).
func drainOpenSSLErrors() -> String { openSSLErrorDescription() }
