// The seam between the SCEP protocol code and where a private key lives (OpenSSL memory
// or inside a TPM). SCEPClient sees only this module; TPMKeys conforms to it. So the
// protocol code, its tests and its fuzzers build and link without tpm2-tss.

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

/// The NIST curves the agent creates EC keys on (`ec_curve`).
public enum EllipticCurve: String, Sendable, Equatable, CaseIterable, Codable {
    case p256 = "P-256"
    case p384 = "P-384"

    /// The digest ECDSA signs with on this curve: one as strong as the curve (FIPS 186-5).
    public var digest: DigestAlgorithm { self == .p256 ? .sha256 : .sha384 }
    /// Bytes per coordinate and per signature half (r, s).
    public var coordinateLength: Int { self == .p256 ? 32 : 48 }
}

/// What a key is, for the request's signature algorithm and for `status`.
public enum KeyAlgorithm: Sendable, Equatable, CustomStringConvertible {
    case rsa(bits: Int)
    case ec(EllipticCurve)

    /// "RSA-2048", "EC P-256".
    public var description: String {
        switch self {
        case .rsa(let bits): return "RSA-\(bits)"
        case .ec(let curve): return "EC \(curve.rawValue)"
        }
    }

    /// Whether the key can receive an RSA key-transport envelope (a SCEP reply).
    public var canDecryptEnvelopes: Bool {
        if case .rsa = self { return true }
        return false
    }
}

/// A private key the agent can use.
///
/// Signing takes a precomputed digest so that a TPM can sign without ever
/// seeing (or hashing) the message; the caller hashes.
public protocol EnrollmentKey: Sendable {
    /// DER-encoded SubjectPublicKeyInfo.
    var subjectPublicKeyInfo: [UInt8] { get }
    /// Where the private half lives.
    var storage: KeyStorageKind { get }
    /// RSA and its size, or EC and its curve.
    var algorithm: KeyAlgorithm { get }
    /// A signature over `digest`, computed with `algorithm`: RSASSA-PKCS1-v1_5 for an RSA
    /// key, ECDSA as the DER `Ecdsa-Sig-Value` (RFC 5480 §2.2.3) for an EC key.
    func sign(digest: [UInt8], algorithm: DigestAlgorithm) throws -> [UInt8]
    /// RSAES-PKCS1-v1_5 decryption (CMS key transport, RFC 5652 §6.2.1). An EC key
    /// throws (`inputRejected`): SCEP replies to it go to a temporary RSA key instead.
    func decrypt(_ ciphertext: [UInt8]) throws -> [UInt8]
    /// The file form of the key for the store's `key.pem`: PKCS#8 for
    /// software keys, `TSS2 PRIVATE KEY` for TPM keys.
    func pemRepresentation() throws -> String
}

/// What a failed key operation says about the key.
public enum KeyFailure: Sendable, Equatable {
    /// The key cannot be used at all now (the TPM is gone, locked out, refuses the key):
    /// whatever the input, trying again with other input fails the same way.
    case keyUnusable
    /// The key works, but not on this input (a ciphertext encrypted to another key, a
    /// digest of the wrong length): the input is at fault.
    case inputRejected
}

/// The errors an `EnrollmentKey` throws, classified so the protocol code can tell a key
/// failure from a reply that was not for this key without knowing the key's module.
public protocol EnrollmentKeyError: Error, CustomStringConvertible {
    var keyFailure: KeyFailure { get }
}
