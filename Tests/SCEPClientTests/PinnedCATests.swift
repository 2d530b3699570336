import Crypto
import Foundation
import SwiftASN1
import X509
import XCTest

@testable import SCEPClient

/// A small PKI made in the test: CAs and RAs with P-256 keys (role selection does not
/// depend on the key type), valid around `PKI.now`.
enum PKI {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)
    static let day: TimeInterval = 86_400

    struct Identity {
        let certificate: Certificate
        let key: P256.Signing.PrivateKey
        var name: DistinguishedName { certificate.subject }
    }

    static func ca(
        _ commonName: String, issuer: Identity? = nil,
        notBefore: Date = now - day, notAfter: Date = now + 365 * day
    ) throws -> Identity {
        let key = P256.Signing.PrivateKey()
        let subject = try DistinguishedName { OrganizationName("enroll-agent tests"); CommonName(commonName) }
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey),
            notValidBefore: notBefore, notValidAfter: notAfter,
            issuer: issuer?.name ?? subject, subject: subject, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
            },
            issuerPrivateKey: .init(issuer?.key ?? key))
        return Identity(certificate: certificate, key: key)
    }

    /// id-kp-cmcRA and Microsoft's Certificate Request Agent (NDES RAs).
    static let cmcRA: ASN1ObjectIdentifier = [1, 3, 6, 1, 5, 5, 7, 3, 28]
    static let certificateRequestAgent: ASN1ObjectIdentifier = [1, 3, 6, 1, 4, 1, 311, 20, 2, 1]
    static let clientAuth: ASN1ObjectIdentifier = [1, 3, 6, 1, 5, 5, 7, 3, 2]

    /// An end-entity certificate; `usage == nil` leaves keyUsage out (no restriction),
    /// `purposes` are its EKUs (an RA's purpose by default; empty leaves the extension out).
    static func ra(_ commonName: String, issuer: Identity, usage: KeyUsage?, purposes: [ASN1ObjectIdentifier] = [cmcRA],
                   notAfter: Date = now + 365 * day) throws -> Identity {
        let key = P256.Signing.PrivateKey()
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey),
            notValidBefore: now - day, notValidAfter: notAfter,
            issuer: issuer.name, subject: try DistinguishedName { CommonName(commonName) },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                if let usage { Critical(usage) }
                if !purposes.isEmpty { try ExtendedKeyUsage(purposes.map { ExtendedKeyUsage.Usage(oid: $0) }) }
            },
            issuerPrivateKey: .init(issuer.key))
        return Identity(certificate: certificate, key: key)
    }

    static func pem(_ certificates: [Certificate]) throws -> String {
        try certificates.map { try $0.serializeAsPEM().pemString }.joined(separator: "\n")
    }

    /// A degenerate certs-only PKCS#7 (GetCACert with an RA, RFC 8894 §4.2.1.2).
    static func degeneratePKCS7(_ certificates: [Certificate]) throws -> [UInt8] {
        let signedData = SignedData(
            version: 1, digestAlgorithms: [], encapsulatedContentInfo: EncapsulatedContentInfo(contentType: OID.data, content: nil),
            certificates: try certificates.map { try ASN1Any(erasing: $0) }, signerInfos: [])
        return try ASN1TestSupport.der(ContentInfo(contentType: OID.signedData, content: try ASN1Any(erasing: signedData)))
    }

    /// "AB:CD:..." as `openssl x509 -fingerprint -sha256` prints it.
    static func opensslStyleFingerprint(_ certificate: Certificate) -> String {
        let hex = PinnedCA.fingerprint(of: certificate).uppercased()
        return stride(from: 0, to: hex.count, by: 2).map { offset -> String in
            let start = hex.index(hex.startIndex, offsetBy: offset)
            return String(hex[start..<hex.index(start, offsetBy: 2)])
        }.joined(separator: ":")
    }
}

private func assertSCEPError(_ code: SCEPError.Code, file: StaticString = #filePath, line: UInt = #line, _ body: () async throws -> Void) async {
    do {
        try await body()
        XCTFail("expected SCEPError.\(code)", file: file, line: line)
    } catch let error as SCEPError {
        XCTAssertEqual(error.code, code, error.message, file: file, line: line)
    } catch {
        XCTFail("expected SCEPError.\(code), got \(error)", file: file, line: line)
    }
}

final class PinnedCATests: XCTestCase {
    // MARK: The pin itself

    func testFingerprintAgreesWithOpenSSL() throws {
        let ca = try Certificate(derEncoded: ScepServerCapture.caCertificate)
        XCTAssertEqual(PinnedCA.fingerprint(of: ca), PinnedCA.normalizeFingerprint(ScepServerCapture.caFingerprintOpenSSL))
        XCTAssertEqual(PinnedCA.fingerprint(of: ca), "8d54dd409cc59723b14223b0b10ccab81f2edecb394f9bfcd5c9dfc459bd58c5")
    }

    func testFingerprintsAreNormalized() throws {
        let ca = try PKI.ca("Issuing CA")
        let pin = try PinnedCA(pinnedCertificates: [], fingerprints: [PKI.opensslStyleFingerprint(ca.certificate)])
        XCTAssertEqual(pin.fingerprints, [PinnedCA.fingerprint(of: ca.certificate)])
        XCTAssertEqual(PinnedCA.normalizeFingerprint(" AB:cd:0F "), "abcd0f")
    }

    func testNoPinIsRefused() async {
        await assertSCEPError(.untrustedCertificate) { _ = try PinnedCA(pinnedCertificates: [], fingerprints: []) }
        await assertSCEPError(.untrustedCertificate) { _ = try PinnedCA(pemText: nil, fingerprints: []) }
    }

    func testPinFileThatIsNotACertificateIsRefused() async {
        await assertSCEPError(.untrustedCertificate) { _ = try PinnedCA(pemText: "not a PEM file", fingerprints: []) }
        await assertSCEPError(.untrustedCertificate) { _ = try PinnedCA(pemText: OpenSSLVectors.recipientKeyPEM, fingerprints: []) }
    }

    /// Found by fuzzing (target textinputs): the refusal quoted swift-asn1's error, which
    /// holds the whole file, control characters and bidi overrides included.
    func testARefusedPinFileIsQuotedShortAndEscaped() {
        let text = "-----BEGIN CERTIFICATE-----\n\u{1B}[31m\u{202E}" + String(repeating: "A", count: 100_000) + "\n"
        XCTAssertThrowsError(try PinnedCA(pemText: text, fingerprints: [])) { error in
            let message = (error as? SCEPError)?.message ?? ""
            XCTAssertTrue(message.hasPrefix("the pinned CA file is not a PEM certificate: "), message)
            XCTAssertLessThan(message.count, 300)
            XCTAssertFalse(message.unicodeScalars.contains(where: ServerText.needsEscaping), message.debugDescription)
        }
    }

    func testPinFileAndFingerprintMustAgree() async throws {
        let ca = try PKI.ca("Issuing CA")
        let other = try PKI.ca("Other CA")
        let pem = try PKI.pem([ca.certificate])
        XCTAssertNoThrow(try PinnedCA(pemText: pem, fingerprints: [PKI.opensslStyleFingerprint(ca.certificate)]))
        await assertSCEPError(.untrustedCertificate) {
            _ = try PinnedCA(pemText: pem, fingerprints: [PKI.opensslStyleFingerprint(other.certificate)])
        }
    }

    // MARK: CA only (GetCACert: one DER certificate)

    func testCAOnlyPinnedByFileIsRecipientAndSigner() async throws {
        let ca = try PKI.ca("Issuing CA")
        let pin = try PinnedCA(pemText: try PKI.pem([ca.certificate]), fingerprints: [])
        let served = try CACertificates.parseReply(try ASN1TestSupport.der(ca.certificate))
        let result = try await CACertificates.validated(served, pin: pin, window: ValidityWindow(now: PKI.now))
        XCTAssertEqual(result.issuingCA, ca.certificate)
        XCTAssertEqual(result.encryptionRecipient, ca.certificate)
        XCTAssertEqual(result.replySigners, [ca.certificate])
        XCTAssertEqual(result.chain, [ca.certificate])
        XCTAssertEqual(result.all, [ca.certificate])
    }

    func testCAOnlyPinnedBySHA256WithColonsAndUppercase() async throws {
        let ca = try PKI.ca("Issuing CA")
        let pin = try PinnedCA(pemText: nil, fingerprints: [PKI.opensslStyleFingerprint(ca.certificate)])
        let result = try await CACertificates.validated([ca.certificate], pin: pin, window: ValidityWindow(now: PKI.now))
        XCTAssertEqual(result.issuingCA, ca.certificate)
        XCTAssertEqual(result.encryptionRecipient, ca.certificate)
        XCTAssertEqual(result.replySigners, [ca.certificate])
    }

    func testRealScepserverCAPinnedByItsOpenSSLFingerprint() async throws {
        let served = try CACertificates.parseReply(ScepServerCapture.caCertificate)
        XCTAssertEqual(served.count, 1)
        let pin = try PinnedCA(pemText: nil, fingerprints: [ScepServerCapture.caFingerprintOpenSSL])
        let captureDay = Date(timeIntervalSince1970: 1_795_478_400)  // 2026-11-24, inside the CA's year
        let result = try await CACertificates.validated(served, pin: pin, window: ValidityWindow(now: captureDay))
        XCTAssertEqual(result.encryptionRecipient, served[0])
        XCTAssertEqual(result.replySigners, served)
    }

    func testServerCANotMatchingThePinIsRefused() async throws {
        let ca = try PKI.ca("Issuing CA")
        let pinned = try PKI.ca("Pinned CA")
        let byFingerprint = try PinnedCA(pemText: nil, fingerprints: [PinnedCA.fingerprint(of: pinned.certificate)])
        await assertSCEPError(.untrustedCertificate) {
            _ = try await CACertificates.validated([ca.certificate], pin: byFingerprint, window: ValidityWindow(now: PKI.now))
        }
        // Pinned by file: nothing the server sent (its CA, its RA) chains to the pin.
        let ra = try PKI.ra("RA", issuer: ca, usage: KeyUsage(digitalSignature: true, keyEncipherment: true))
        let byFile = try PinnedCA(pemText: try PKI.pem([pinned.certificate]), fingerprints: [])
        await assertSCEPError(.untrustedCertificate) {
            _ = try await CACertificates.validated([ra.certificate, ca.certificate], pin: byFile, window: ValidityWindow(now: PKI.now))
        }
    }

    func testExpiredCAIsRefused() async throws {
        let expired = try PKI.ca("Expired CA", notBefore: PKI.now - 400 * PKI.day, notAfter: PKI.now - 35 * PKI.day)
        let byFile = try PinnedCA(pemText: try PKI.pem([expired.certificate]), fingerprints: [])
        await assertSCEPError(.untrustedCertificate) {
            _ = try await CACertificates.validated([expired.certificate], pin: byFile, window: ValidityWindow(now: PKI.now))
        }
        let byFingerprint = try PinnedCA(pemText: nil, fingerprints: [PinnedCA.fingerprint(of: expired.certificate)])
        await assertSCEPError(.untrustedCertificate) {
            _ = try await CACertificates.validated([expired.certificate], pin: byFingerprint, window: ValidityWindow(now: PKI.now))
        }
    }

    // MARK: RA + CA (GetCACert: degenerate PKCS#7)

    func testRAWithKeyEnciphermentIsTheRecipientAndMaySign() async throws {
        let ca = try PKI.ca("Issuing CA")
        let ra = try PKI.ra("SCEP RA", issuer: ca, usage: KeyUsage(digitalSignature: true, keyEncipherment: true))
        let served = try CACertificates.parseReply(try PKI.degeneratePKCS7([ra.certificate, ca.certificate]))
        XCTAssertEqual(Set(served), [ra.certificate, ca.certificate])
        let pin = try PinnedCA(pemText: nil, fingerprints: [PinnedCA.fingerprint(of: ca.certificate)])
        let result = try await CACertificates.validated(served, pin: pin, window: ValidityWindow(now: PKI.now))
        XCTAssertEqual(result.issuingCA, ca.certificate)
        XCTAssertEqual(result.encryptionRecipient, ra.certificate)
        XCTAssertEqual(Set(result.replySigners), [ra.certificate, ca.certificate])
        XCTAssertEqual(result.chain, [ca.certificate])
    }

    func testRAWithoutKeyUsageIsUnrestricted() async throws {
        let ca = try PKI.ca("Issuing CA")
        let ra = try PKI.ra("SCEP RA", issuer: ca, usage: nil)
        let pin = try PinnedCA(pemText: try PKI.pem([ca.certificate]), fingerprints: [])
        let result = try await CACertificates.validated([ra.certificate, ca.certificate], pin: pin, window: ValidityWindow(now: PKI.now))
        XCTAssertEqual(result.encryptionRecipient, ra.certificate)
        XCTAssertTrue(result.replySigners.contains(ra.certificate))
    }

    func testNDESStyleRAsWithOneUsageEach() async throws {
        let ca = try PKI.ca("Issuing CA")
        let encryption = try PKI.ra("NDES-Exchange", issuer: ca, usage: KeyUsage(keyEncipherment: true), purposes: [PKI.certificateRequestAgent])
        let signing = try PKI.ra("NDES-Signature", issuer: ca, usage: KeyUsage(digitalSignature: true), purposes: [PKI.certificateRequestAgent])
        let served = try CACertificates.parseReply(try PKI.degeneratePKCS7([signing.certificate, encryption.certificate, ca.certificate]))
        let pin = try PinnedCA(pemText: try PKI.pem([ca.certificate]), fingerprints: [])
        let result = try await CACertificates.validated(served, pin: pin, window: ValidityWindow(now: PKI.now))
        XCTAssertEqual(result.encryptionRecipient, encryption.certificate)
        XCTAssertTrue(result.replySigners.contains(signing.certificate))
        XCTAssertTrue(result.replySigners.contains(ca.certificate))
        XCTAssertFalse(result.replySigners.contains(encryption.certificate), "keyEncipherment only: not a reply signer")
    }

    func testRAsWithoutKeyEnciphermentLeaveNoRecipient() async throws {
        let ca = try PKI.ca("Issuing CA")
        let signing = try PKI.ra("NDES-Signature", issuer: ca, usage: KeyUsage(digitalSignature: true))
        let pin = try PinnedCA(pemText: try PKI.pem([ca.certificate]), fingerprints: [])
        await assertSCEPError(.untrustedCertificate) {
            _ = try await CACertificates.validated([signing.certificate, ca.certificate], pin: pin, window: ValidityWindow(now: PKI.now))
        }
    }

    func testCertificateNotChainingToThePinIsNotUsed() async throws {
        let ca = try PKI.ca("Issuing CA")
        let impostorCA = try PKI.ca("Issuing CA")  // same name, different key
        let impostorRA = try PKI.ra("SCEP RA", issuer: impostorCA, usage: KeyUsage(digitalSignature: true, keyEncipherment: true))
        let pin = try PinnedCA(pemText: try PKI.pem([ca.certificate]), fingerprints: [])
        let served = [impostorRA.certificate, impostorCA.certificate, ca.certificate]
        let result = try await CACertificates.validated(served, pin: pin, window: ValidityWindow(now: PKI.now))
        XCTAssertEqual(result.encryptionRecipient, ca.certificate)
        XCTAssertEqual(result.replySigners, [ca.certificate])
        XCTAssertEqual(result.chain, [ca.certificate])
        XCTAssertEqual(result.all, served)
    }

    func testPinnedIntermediateWithRA() async throws {
        let root = try PKI.ca("Root CA")
        let intermediate = try PKI.ca("Issuing CA", issuer: root)
        let ra = try PKI.ra("SCEP RA", issuer: intermediate, usage: KeyUsage(digitalSignature: true, keyEncipherment: true))
        let pin = try PinnedCA(pemText: nil, fingerprints: [PinnedCA.fingerprint(of: intermediate.certificate)])
        let served = [ra.certificate, intermediate.certificate, root.certificate]
        let result = try await CACertificates.validated(served, pin: pin, window: ValidityWindow(now: PKI.now))
        XCTAssertEqual(result.issuingCA, intermediate.certificate)
        XCTAssertEqual(result.encryptionRecipient, ra.certificate)
        XCTAssertFalse(result.replySigners.contains(root.certificate), "the root is above the pin, not trusted for replies")
        XCTAssertTrue(result.replySigners.contains(ra.certificate))
    }

    // MARK: GetCACert reply parsing

    func testParseReplyRejectsWhatIsNotACertificateOrPKCS7() async throws {
        await assertSCEPError(.malformedReply) { _ = try CACertificates.parseReply([]) }
        await assertSCEPError(.malformedReply) { _ = try CACertificates.parseReply(Array("<html>Not Found</html>".utf8)) }
        await assertSCEPError(.malformedReply) { _ = try CACertificates.parseReply(OpenSSLVectors.envelopedDataContentInfo) }
        await assertSCEPError(.malformedReply) { _ = try CACertificates.parseReply(try PKI.degeneratePKCS7([])) }
        let certificate = ScepServerCapture.caCertificate
        for length in 1..<certificate.count {
            XCTAssertThrowsError(try CACertificates.parseReply(Array(certificate.prefix(length))), "prefix \(length)")
        }
    }

    func testParseReplyAcceptsBER() throws {
        let ca = try PKI.ca("Issuing CA")
        let ra = try PKI.ra("SCEP RA", issuer: ca, usage: nil)
        let der = try PKI.degeneratePKCS7([ra.certificate, ca.certificate])
        // ContentInfo, [0], SignedData, its SETs and [0] certificates with indefinite lengths.
        let ber = try ASN1TestSupport.ber(der, indefiniteDepth: 4)
        XCTAssertNotEqual(ber, der)
        XCTAssertEqual(Set(try CACertificates.parseReply(ber)), [ra.certificate, ca.certificate])
    }
}
