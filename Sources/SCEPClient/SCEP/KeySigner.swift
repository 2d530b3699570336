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

    var defaultSignatureAlgorithm: Certificate.SignatureAlgorithm { .sha256WithRSAEncryption }
    var supportedSignatureAlgorithms: [Certificate.SignatureAlgorithm] {
        [.sha256WithRSAEncryption, .sha384WithRSAEncryption, .sha512WithRSAEncryption]
    }

    func signSynchronously(bytes: some DataProtocol, signatureAlgorithm: Certificate.SignatureAlgorithm) throws -> Certificate.Signature {
        let digestAlgorithm: DigestAlgorithm
        switch signatureAlgorithm {
        case .sha256WithRSAEncryption: digestAlgorithm = .sha256
        case .sha384WithRSAEncryption: digestAlgorithm = .sha384
        case .sha512WithRSAEncryption: digestAlgorithm = .sha512
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
