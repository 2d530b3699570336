import Crypto
import CertStore
import Foundation
import Renewal
import SCEPClient
import SwiftASN1
import X509

/// The certificate currently installed for a profile, as read from `live/`.
struct LiveCertificate {
    let certificate: Certificate
    let chain: [Certificate]
    let generation: InstalledGeneration
    let keyKind: KeyFileKind

    static func load(from store: ProfileStore) throws -> LiveCertificate? {
        guard let generation = try store.liveGeneration() else { return nil }
        let bundle = try store.readBundle(of: generation)
        let certificates = try parsePEMCertificates(bundle.certificatePEM)
        guard let certificate = certificates.first else {
            throw AgentError(.store, "\(generation.certificatePath) holds no certificate")
        }
        let chain = (try? parsePEMCertificates(bundle.chainPEM)) ?? []
        return LiveCertificate(certificate: certificate, chain: chain, generation: generation, keyKind: KeyFileKind(pem: bundle.keyPEM))
    }

    var lifetime: CertificateLifetime {
        CertificateLifetime(notBefore: certificate.notValidBefore, notAfter: certificate.notValidAfter)
    }

    func isValid(at time: Date) -> Bool { lifetime.isValid(at: time) }

    var sha256Fingerprint: String {
        var serializer = DER.Serializer()
        try? serializer.serialize(certificate)
        return (try? Fingerprint.sha256(serializer.serializedBytes)) ?? ""
    }
}

func parsePEMCertificates(_ text: String) throws -> [Certificate] {
    try PEMDocument.parseMultiple(pemString: text)
        .filter { $0.discriminator == "CERTIFICATE" }
        .map { try Certificate(derEncoded: $0.derBytes) }
}

enum Fingerprint {
    static func sha256(_ bytes: [UInt8]) throws -> String {
        var hasher = Crypto.SHA256()
        hasher.update(data: bytes)
        return Hex.encode(hasher.finalize())
    }
}
