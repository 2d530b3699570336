import Foundation
import SwiftASN1
import X509
import TPMKeys
@testable import SCEPClient

/// A certificate with its private key (a CA, an RA or a spare identity).
struct TestIdentity: Sendable {
    let certificate: Certificate
    let key: SoftwareKey

    var der: [UInt8] { (try? SCEPEnrollment.der(certificate)) ?? [] }

    /// The key as swift-certificates' signer, through the client's own seam.
    func privateKey() throws -> Certificate.PrivateKey {
        Certificate.PrivateKey(try EnrollmentKeySigner(key))
    }
}

/// A small certificate authority for the test SCEP server: a self-signed RSA
/// CA, and RA certificates issued by it. Keys are `SoftwareKey`s; certificates
/// are built by swift-certificates through `EnrollmentKeySigner`, so the CA
/// signs exactly as a TPM-held key would.
struct TestCA: Sendable {
    let identity: TestIdentity

    var certificate: Certificate { identity.certificate }
    var key: SoftwareKey { identity.key }
    var subject: DistinguishedName { identity.certificate.subject }

    /// A fresh self-signed CA valid from an hour ago for a year.
    static func make(commonName: String, organization: String = "SCEP Test") throws -> TestCA {
        let key = try SoftwareKey.generate(KeySpec(rsaBits: 2048))
        let name = try DistinguishedName {
            OrganizationName(organization)
            CommonName(commonName)
        }
        var extensions = Certificate.Extensions()
        try extensions.append(Certificate.Extension(BasicConstraints.isCertificateAuthority(maxPathLength: nil), critical: true))
        try extensions.append(Certificate.Extension(
            KeyUsage(digitalSignature: true, keyEncipherment: true, keyCertSign: true, cRLSign: true), critical: true))
        let signer = try EnrollmentKeySigner(key)
        let now = Date()
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: signer.publicKey,
            notValidBefore: now.addingTimeInterval(-3600), notValidAfter: now.addingTimeInterval(365 * 86_400),
            issuer: name, subject: name, signatureAlgorithm: .sha256WithRSAEncryption,
            extensions: extensions, issuerPrivateKey: Certificate.PrivateKey(signer))
        return TestCA(identity: TestIdentity(certificate: certificate, key: key))
    }

    /// id-kp-cmcRA (RFC 6402) and Microsoft's Certificate Request Agent (what NDES RAs carry).
    static let cmcRA: ASN1ObjectIdentifier = [1, 3, 6, 1, 5, 5, 7, 3, 28]
    static let certificateRequestAgent: ASN1ObjectIdentifier = [1, 3, 6, 1, 4, 1, 311, 20, 2, 1]
    static let clientAuth: ASN1ObjectIdentifier = [1, 3, 6, 1, 5, 5, 7, 3, 2]

    /// An end-entity certificate (an RA, or any host's certificate) issued by this CA with
    /// the given key usages and extended key usages (`purposes`; empty leaves them out).
    func issueRA(commonName: String, digitalSignature: Bool, keyEncipherment: Bool,
                 purposes: [ASN1ObjectIdentifier] = [TestCA.cmcRA]) throws -> TestIdentity {
        let key = try SoftwareKey.generate(KeySpec(rsaBits: 2048))
        var extensions = Certificate.Extensions()
        try extensions.append(Certificate.Extension(BasicConstraints.notCertificateAuthority, critical: true))
        try extensions.append(Certificate.Extension(
            KeyUsage(digitalSignature: digitalSignature, keyEncipherment: keyEncipherment), critical: true))
        if !purposes.isEmpty {
            try extensions.append(Certificate.Extension(ExtendedKeyUsage(purposes.map { ExtendedKeyUsage.Usage(oid: $0) }), critical: false))
        }
        let subject = try DistinguishedName {
            OrganizationName("SCEP Test")
            CommonName(commonName)
        }
        let certificate = try issue(publicKey: try Certificate.PublicKey(derEncoded: key.subjectPublicKeyInfo),
                                    subject: subject, extensions: extensions)
        return TestIdentity(certificate: certificate, key: key)
    }

    /// Issues an end-entity certificate for a CSR: its subject, its public key,
    /// and the extensions it requested (as a permissive SCEP CA would).
    func issue(for csr: CertificateSigningRequest, validity: TimeInterval = 30 * 86_400) throws -> Certificate {
        let requested = try csr.attributes.extensionRequest?.extensions ?? Certificate.Extensions()
        return try issue(publicKey: csr.publicKey, subject: csr.subject, extensions: requested, validity: validity)
    }

    /// Issues a certificate for any public key (used for the "wrong key" fault too).
    func issue(publicKey: Certificate.PublicKey, subject: DistinguishedName, extensions: Certificate.Extensions,
               validity: TimeInterval = 30 * 86_400) throws -> Certificate {
        let now = Date()
        return try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: publicKey,
            notValidBefore: now.addingTimeInterval(-300), notValidAfter: now.addingTimeInterval(validity),
            issuer: self.subject, subject: subject,
            signatureAlgorithm: .sha256WithRSAEncryption, extensions: extensions,
            issuerPrivateKey: try identity.privateKey())
    }

    /// The pin a client would be configured with for this CA.
    func pin() throws -> PinnedCA {
        try PinnedCA(pinnedCertificates: [certificate], fingerprints: [])
    }
}

/// Key material shared by all tests: RSA key generation costs 0.1–0.7 s each,
/// so the CAs and RAs are made once per test process (a failure is rethrown
/// to every test that asks, instead of crashing the runner).
enum TestPKI {
    private static let caResult = Result { try TestCA.make(commonName: "SCEP Test CA") }
    private static let rogueResult = Result { try TestCA.make(commonName: "Rogue CA", organization: "Mallory") }
    private static let combinedRAResult = Result {
        try caResult.get().issueRA(commonName: "SCEP Test RA", digitalSignature: true, keyEncipherment: true)
    }
    private static let encryptionRAResult = Result {
        try caResult.get().issueRA(commonName: "NDES Encryption RA", digitalSignature: false, keyEncipherment: true,
                                   purposes: [TestCA.certificateRequestAgent])
    }
    private static let signingRAResult = Result {
        try caResult.get().issueRA(commonName: "NDES Signing RA", digitalSignature: true, keyEncipherment: false,
                                   purposes: [TestCA.certificateRequestAgent])
    }
    private static let enrolledHostResult = Result {
        try caResult.get().issueRA(commonName: "host17.example.com", digitalSignature: true, keyEncipherment: true,
                                   purposes: [TestCA.clientAuth])
    }
    private static let nextCAResult = Result { try TestCA.make(commonName: "SCEP Test CA G2") }
    private static let strangerKeyResult = Result { try SoftwareKey.generate(KeySpec(rsaBits: 2048)) }

    /// The CA the client pins.
    static func ca() throws -> TestCA { try caResult.get() }
    /// The CA that replaces `ca()` in a rollover (announced by GetNextCACert).
    static func nextCA() throws -> TestCA { try nextCAResult.get() }
    /// An unrelated CA, for refusal cases.
    static func rogue() throws -> TestCA { try rogueResult.get() }
    /// An RA that both decrypts requests and signs replies.
    static func combinedRA() throws -> TestIdentity { try combinedRAResult.get() }
    /// NDES-style split RAs: one only for the request envelope (keyEncipherment)…
    static func encryptionRA() throws -> TestIdentity { try encryptionRAResult.get() }
    /// …and one only for signing replies (digitalSignature).
    static func signingRA() throws -> TestIdentity { try signingRAResult.get() }
    /// An ordinary enrolled host's certificate from the same CA (digitalSignature +
    /// keyEncipherment, EKU clientAuth): what an attacker posing as the RA holds.
    static func enrolledHost() throws -> TestIdentity { try enrolledHostResult.get() }
    /// A key that is not the client's, for "certificate issued for another key".
    static func strangerKey() throws -> SoftwareKey { try strangerKeyResult.get() }
}
