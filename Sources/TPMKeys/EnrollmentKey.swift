/// Where a private key lives. Shown in `status` so an administrator can see a
/// software fallback at a glance.
public enum KeyStorageKind: String, Sendable, Codable, Equatable {
    case tpm
    case software
}

/// Digest algorithms a key may be asked to sign with (RSASSA-PKCS1-v1_5).
public enum DigestAlgorithm: String, Sendable, Equatable, CaseIterable {
    case sha1, sha256, sha384, sha512

    /// Length of the digest in bytes.
    public var length: Int {
        switch self {
        case .sha1: return 20
        case .sha256: return 32
        case .sha384: return 48
        case .sha512: return 64
        }
    }
}

/// What kind of key to create.
public struct KeySpec: Sendable, Equatable {
    /// RSA modulus size in bits (2048 or 3072).
    public var rsaBits: Int
    public init(rsaBits: Int = 2048) { self.rsaBits = rsaBits }
}

/// A private key the agent can use: the seam between the SCEP protocol code
/// and where the key actually lives (OpenSSL memory or inside a TPM).
///
/// Signing takes a precomputed digest so that a TPM can sign without ever
/// seeing (or hashing) the message; the caller hashes.
public protocol EnrollmentKey: Sendable {
    /// DER-encoded SubjectPublicKeyInfo.
    var subjectPublicKeyInfo: [UInt8] { get }
    /// Where the private half lives.
    var storage: KeyStorageKind { get }
    /// RSASSA-PKCS1-v1_5 signature over `digest`, computed with `algorithm`.
    func sign(digest: [UInt8], algorithm: DigestAlgorithm) throws -> [UInt8]
    /// RSAES-PKCS1-v1_5 decryption (CMS key transport, RFC 5652 §6.2.1).
    func decrypt(_ ciphertext: [UInt8]) throws -> [UInt8]
    /// The file form of the key for the store's `key.pem`: PKCS#8 for
    /// software keys, `TSS2 PRIVATE KEY` for TPM keys.
    func pemRepresentation() throws -> String
}
