import COpenSSL

/// Errors from software (OpenSSL) keys.
public struct SoftwareKeyError: Error, CustomStringConvertible, Equatable {
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
    public static func generate(_ spec: KeySpec) throws -> SoftwareKey {
        guard let ctx = EVP_PKEY_CTX_new_from_name(nil, "RSA", nil) else {
            throw SoftwareKeyError(.generation, "cannot create an RSA key context: \(openSSLErrorDescription())")
        }
        defer { EVP_PKEY_CTX_free(ctx) }
        var key: OpaquePointer? = nil
        guard EVP_PKEY_keygen_init(ctx) == 1,
              EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, Int32(spec.rsaBits)) == 1,
              EVP_PKEY_generate(ctx, &key) == 1, let key
        else {
            throw SoftwareKeyError(.generation, "RSA-\(spec.rsaBits) key generation failed: \(openSSLErrorDescription())")
        }
        return try SoftwareKey(pkey: key)
    }

    /// Loads a PEM private key (PKCS#8 or traditional RSA).
    public convenience init(pem: String) throws {
        let bytes = Array(pem.utf8)
        let bio = bytes.withUnsafeBytes { BIO_new_mem_buf($0.baseAddress, Int32($0.count)) }
        guard let bio else { throw SoftwareKeyError(.parse, "cannot read the key PEM: out of memory") }
        defer { BIO_free(bio) }
        guard let key = PEM_read_bio_PrivateKey(bio, nil, nil, nil) else {
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
