import Foundation
import SwiftASN1
import KeyInterface
import X509

/// Lets swift-certificates sign CSRs and certificates with an `EnrollmentKey`
/// (software or TPM) through its public `CustomPrivateKey` seam.
struct EnrollmentKeySigner: CustomPrivateKey {
    let key: any EnrollmentKey
    let publicKey: Certificate.PublicKey

    init(_ key: any EnrollmentKey) throws {
        self.key = key
        do {
            publicKey = try Certificate.PublicKey(derEncoded: key.subjectPublicKeyInfo)
        } catch {
            throw SCEPError(.invalidRequest, "the key's public half is not a usable SubjectPublicKeyInfo: \(error)")
        }
    }

    /// RSA keys sign with SHA-256; EC keys with the hash that matches the curve.
    var defaultSignatureAlgorithm: Certificate.SignatureAlgorithm {
        switch key.algorithm {
        case .rsa: return .sha256WithRSAEncryption
        case .ec(.p256): return .ecdsaWithSHA256
        case .ec(.p384): return .ecdsaWithSHA384
        }
    }
    var supportedSignatureAlgorithms: [Certificate.SignatureAlgorithm] {
        switch key.algorithm {
        case .rsa: return [.sha256WithRSAEncryption, .sha384WithRSAEncryption, .sha512WithRSAEncryption]
        case .ec: return [.ecdsaWithSHA256, .ecdsaWithSHA384, .ecdsaWithSHA512]
        }
    }

    func signSynchronously(bytes: some DataProtocol, signatureAlgorithm: Certificate.SignatureAlgorithm) throws -> Certificate.Signature {
        guard supportedSignatureAlgorithms.contains(signatureAlgorithm) else {
            throw SCEPError(.unsupportedAlgorithm, "an \(key.algorithm) key cannot sign with \(signatureAlgorithm)")
        }
        let digestAlgorithm: DigestAlgorithm
        switch signatureAlgorithm {
        case .sha256WithRSAEncryption, .ecdsaWithSHA256: digestAlgorithm = .sha256
        case .sha384WithRSAEncryption, .ecdsaWithSHA384: digestAlgorithm = .sha384
        case .sha512WithRSAEncryption, .ecdsaWithSHA512: digestAlgorithm = .sha512
        default: throw SCEPError(.unsupportedAlgorithm, "cannot sign with \(signatureAlgorithm)")
        }
        let digest = try CryptoPrimitives.digest(digestAlgorithm, Array(bytes))
        let signature = try key.sign(digest: digest, algorithm: digestAlgorithm)
        return try Certificate.Signature(signatureAlgorithm: signatureAlgorithm, signatureBytes: ASN1BitString(bytes: signature[...]))
    }

    // The private half never leaves the key's home; there is nothing to serialize.
    func serialize(into coder: inout DER.Serializer) throws {
        throw SCEPError(.invalidRequest, "an enrollment key cannot be serialized through X509")
    }
    static var defaultPEMDiscriminator: String { "PRIVATE KEY" }

    static func == (lhs: Self, rhs: Self) -> Bool { lhs.key.subjectPublicKeyInfo == rhs.key.subjectPublicKeyInfo }
    func hash(into hasher: inout Hasher) { hasher.combine(key.subjectPublicKeyInfo) }
}
