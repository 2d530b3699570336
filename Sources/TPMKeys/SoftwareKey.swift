import COpenSSL
import KeyInterface
import _CryptoExtras

/// Errors from software (OpenSSL) keys.
public struct SoftwareKeyError: EnrollmentKeyError, Equatable {
    public enum Code: String, Sendable { case generation, parse, sign, decrypt, encode }
    public let code: Code
    public let message: String
    public var description: String { message }
    init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
}

/// An RSA private key held in process memory by OpenSSL, stored as PKCS#8 PEM.
///
/// Only used where the profile's `key_storage` allows it (`software`, or
/// `tpm-preferred` on a host without a TPM).
public final class SoftwareKey: EnrollmentKey, @unchecked Sendable {
    // EVP_PKEY is reference counted and safe for concurrent read-only use
    // (sign/decrypt create their own contexts), hence @unchecked Sendable.
    private let pkey: OpaquePointer
    public let subjectPublicKeyInfo: [UInt8]
    public var storage: KeyStorageKind { .software }

    private init(pkey: OpaquePointer) throws {
        self.pkey = pkey
        var out: UnsafeMutablePointer<UInt8>? = nil
        let length = i2d_PUBKEY(pkey, &out)
        guard length > 0, let out else {
            EVP_PKEY_free(pkey)
            throw SoftwareKeyError(.encode, "cannot encode the public key: \(openSSLErrorDescription())")
        }
        subjectPublicKeyInfo = Array(UnsafeBufferPointer(start: out, count: Int(length)))
        enroll_OPENSSL_free(out)
    }

    deinit { EVP_PKEY_free(pkey) }

    /// Generates a fresh RSA key of `spec.rsaBits` bits (e = 65537).
    ///
    /// The prime search runs in BoringSSL (swift-crypto): Debian 12's OpenSSL 3.0
    /// spends ~150 ms per 2048-bit key in constant-time GCDs, BoringSSL ~65 ms
    /// (benchmarks/results/diagnosis.txt). The key then lives in OpenSSL like any other.
    public static func generate(_ spec: KeySpec) throws -> SoftwareKey {
        let size: _RSA.Signing.KeySize
        switch spec.rsaBits {
        case 2048: size = .bits2048
        case 3072: size = .bits3072
        case 4096: size = .bits4096
        default: throw SoftwareKeyError(.generation, "RSA-\(spec.rsaBits) is not a supported key size; use 2048 or 3072")
        }
        let der: [UInt8]
        do {
            der = Array(try _RSA.Signing.PrivateKey(keySize: size).derRepresentation)
        } catch {
            throw SoftwareKeyError(.generation, "RSA-\(spec.rsaBits) key generation failed: \(error)")
        }
        return try SoftwareKey(der: der)
    }

    /// Loads a DER private key (PKCS#1 RSAPrivateKey or PKCS#8).
    convenience init(der: [UInt8]) throws {
        let key: OpaquePointer? = der.withUnsafeBufferPointer { buffer in
            var pointer = buffer.baseAddress
            return d2i_AutoPrivateKey(nil, &pointer, buffer.count)
        }
        guard let key else {
            throw SoftwareKeyError(.parse, "cannot read the generated key: \(openSSLErrorDescription())")
        }
        try self.init(pkey: key)
    }

    /// Loads a PEM private key (PKCS#8 or traditional RSA).
    public convenience init(pem: String) throws {
        let bytes = Array(pem.utf8)
        // A passphrase-protected key is refused, never asked for: without a callback OpenSSL
        // reads the passphrase from the controlling terminal, so `enroll-agent renew` run in a
        // shell would hang at "Enter PEM pass phrase:" (found by fuzzing, target textinputs).
        var passphraseAsked = false
        // BIO_new_mem_buf does not copy: the buffer must outlive every read, so
        // parse inside the closure that keeps it alive.
        let parsed: OpaquePointer? = bytes.withUnsafeBytes { buffer in
            guard let bio = BIO_new_mem_buf(buffer.baseAddress, Int32(buffer.count)) else { return nil }
            defer { BIO_free(bio) }
            return withUnsafeMutablePointer(to: &passphraseAsked) { asked in
                PEM_read_bio_PrivateKey(bio, nil, { _, _, _, asked in
                    asked?.assumingMemoryBound(to: Bool.self).pointee = true
                    return -1  // no passphrase
                }, asked)
            }
        }
        guard let key = parsed else {
            if passphraseAsked {
                _ = openSSLErrorDescription()  // drain OpenSSL's error queue
                throw SoftwareKeyError(.parse, "the key file is encrypted (passphrase-protected); the agent stores its software keys unencrypted, readable by root only: replace it with an unencrypted key")
            }
            throw SoftwareKeyError(.parse, "the key file is not a readable PEM private key: \(openSSLErrorDescription())")
        }
        guard EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA else {
            EVP_PKEY_free(key)
            throw SoftwareKeyError(.parse, "the key file holds a non-RSA key; only RSA keys are supported")
        }
        try self.init(pkey: key)
    }

    /// Key size in bits.
    public var bits: Int { Int(EVP_PKEY_get_bits(pkey)) }

    public func sign(digest: [UInt8], algorithm: DigestAlgorithm) throws -> [UInt8] {
        guard digest.count == algorithm.length else {
            throw SoftwareKeyError(.sign, "digest length \(digest.count) does not match \(algorithm.rawValue)")
        }
        guard let ctx = EVP_PKEY_CTX_new_from_pkey(nil, pkey, nil) else {
            throw SoftwareKeyError(.sign, "cannot create a signing context: \(openSSLErrorDescription())")
        }
        defer { EVP_PKEY_CTX_free(ctx) }
        guard EVP_PKEY_sign_init(ctx) == 1,
              EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1,
              EVP_PKEY_CTX_set_signature_md(ctx, EVP_get_digestbyname(algorithm.openSSLName)) == 1
        else {
            throw SoftwareKeyError(.sign, "cannot set up RSA PKCS#1 v1.5 signing: \(openSSLErrorDescription())")
        }
        var length = 0
        guard EVP_PKEY_sign(ctx, nil, &length, digest, digest.count) == 1 else {
            throw SoftwareKeyError(.sign, "RSA signing failed: \(openSSLErrorDescription())")
        }
        var signature = [UInt8](repeating: 0, count: length)
        guard EVP_PKEY_sign(ctx, &signature, &length, digest, digest.count) == 1 else {
            throw SoftwareKeyError(.sign, "RSA signing failed: \(openSSLErrorDescription())")
        }
        return Array(signature.prefix(length))
    }

    public func decrypt(_ ciphertext: [UInt8]) throws -> [UInt8] {
        guard let ctx = EVP_PKEY_CTX_new_from_pkey(nil, pkey, nil) else {
            throw SoftwareKeyError(.decrypt, "cannot create a decryption context: \(openSSLErrorDescription())")
        }
        defer { EVP_PKEY_CTX_free(ctx) }
        guard EVP_PKEY_decrypt_init(ctx) == 1,
              EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1
        else {
            throw SoftwareKeyError(.decrypt, "cannot set up RSA decryption: \(openSSLErrorDescription())")
        }
        var length = 0
        guard EVP_PKEY_decrypt(ctx, nil, &length, ciphertext, ciphertext.count) == 1 else {
            throw SoftwareKeyError(.decrypt, "RSA decryption failed: \(openSSLErrorDescription())")
        }
        var plaintext = [UInt8](repeating: 0, count: length)
        guard EVP_PKEY_decrypt(ctx, &plaintext, &length, ciphertext, ciphertext.count) == 1 else {
            throw SoftwareKeyError(.decrypt, "RSA decryption failed (the envelope was not encrypted to this key?): \(openSSLErrorDescription())")
        }
        return Array(plaintext.prefix(length))
    }

    public func pemRepresentation() throws -> String {
        guard let bio = BIO_new(BIO_s_mem()) else { throw SoftwareKeyError(.encode, "out of memory") }
        defer { BIO_free(bio) }
        guard PEM_write_bio_PrivateKey(bio, pkey, nil, nil, 0, nil, nil) == 1 else {
            throw SoftwareKeyError(.encode, "cannot encode the private key: \(openSSLErrorDescription())")
        }
        var data: UnsafePointer<UInt8>? = nil
        let length = enroll_BIO_get_mem_data(bio, &data)
        guard length > 0, let data else { throw SoftwareKeyError(.encode, "cannot encode the private key") }
        return String(decoding: UnsafeBufferPointer(start: data, count: Int(length)), as: UTF8.self)
    }
}

extension SoftwareKeyError {
    /// A key in memory never goes away: a failed operation is the input's fault
    /// (or the key file's, which is found when the key is read, not used).
    public var keyFailure: KeyFailure { .inputRejected }
}
