import KeyInterface
import SwiftASN1
import X509

/// RFC 5652 §5.4 checks of one SignerInfo, shared by the CertRep and the GetNextCACert
/// answer: who signed (only certificates the pin vouches for count), and whether the
/// RSA PKCS#1 v1.5 signature and the messageDigest hold.
extension SignerInfo {
    /// Whether `certificate` is the one the signer identifier names.
    func identifies(_ certificate: Certificate) -> Bool {
        switch signerIdentifier {
        case .issuerAndSerialNumber(let ias): return ias.matches(certificate)
        case .subjectKeyIdentifier(let ski): return (try? certificate.extensions.subjectKeyIdentifier)?.keyIdentifier == ski
        }
    }

    /// The signer among `allowed`; otherwise an `.untrustedCertificate` error that names the
    /// signer when it is among `embedded` (the message's own certificates).
    /// - Parameters:
    ///   - message: how errors name the message ("the reply", "GetNextCACert reply").
    ///   - consequence: appended to errors ("; nothing was installed").
    func signer(among allowed: [Certificate], embedded: [Certificate], message: String, consequence: String = "") throws -> Certificate {
        if let signer = allowed.first(where: identifies) { return signer }
        if let stranger = embedded.first(where: identifies) {
            throw SCEPError(.untrustedCertificate,
                            "\(message) is signed by \(CertificatePathBuilder.name(stranger)) (issuer \(ServerText.escaped("\(stranger.issuer)"))), which is not the pinned CA, a CA on its path or a trusted RA\(consequence)")
        }
        throw SCEPError(.untrustedCertificate, "\(message) is signed by a certificate that is not one of the server's pinned CA/RA certificates\(consequence)")
    }

    /// Verifies the signature with `signer`'s key: over the signed attributes, whose
    /// messageDigest must then match `content`, or (no signed attributes, where the caller
    /// allows that) over `content` itself. Returns the digest algorithm used.
    func verifyRSASignature(content: [UInt8], signer: Certificate, requireSignedAttributes: Bool,
                            message: String, consequence: String = "") throws -> DigestAlgorithm {
        guard let digest = DigestAlgorithm(objectIdentifier: digestAlgorithm.algorithm) else {
            throw SCEPError(.unsupportedAlgorithm, "\(message) is signed with an unknown digest \(digestAlgorithm.algorithm)")
        }
        let acceptable: [ASN1ObjectIdentifier] = [OID.rsaEncryption, OID.sha1WithRSA, OID.sha256WithRSA, OID.sha384WithRSA, OID.sha512WithRSA]
        guard acceptable.contains(signatureAlgorithm.algorithm) else {
            throw SCEPError(.unsupportedAlgorithm, "\(message)'s signature algorithm \(signatureAlgorithm.algorithm) is not RSA PKCS#1 v1.5")
        }
        let signedBytes: [UInt8]
        if let attributes = signedAttributes, let bytes = signedAttributesSignedBytes {
            signedBytes = bytes
            try verifySignature(over: signedBytes, digest: digest, signer: signer, message: message, consequence: consequence)
            guard let value = try attributes.singleValue(OID.messageDigest), let messageDigest = try? ASN1OctetString(asn1Any: value) else {
                throw SCEPError(.malformedReply, "\(message) has no messageDigest attribute")
            }
            guard Array(messageDigest.bytes) == (try CryptoPrimitives.digest(digest, content)) else {
                throw SCEPError(.badSignature, "\(message)'s content does not match its signed messageDigest\(consequence)")
            }
        } else {
            guard !requireSignedAttributes else { throw SCEPError(.malformedReply, "\(message) has no signed attributes") }
            signedBytes = content
            try verifySignature(over: signedBytes, digest: digest, signer: signer, message: message, consequence: consequence)
        }
        return digest
    }

    private func verifySignature(over bytes: [UInt8], digest: DigestAlgorithm, signer: Certificate,
                                 message: String, consequence: String) throws {
        let spki = try signer.publicKey.subjectPublicKeyInfoDER()
        guard try CryptoPrimitives.verifyRSASignature(Array(signature.bytes), over: bytes, digest: digest, subjectPublicKeyInfo: spki) else {
            throw SCEPError(.badSignature, "\(message)'s signature does not verify with the certificate of \(CertificatePathBuilder.name(signer))\(consequence)")
        }
    }
}
