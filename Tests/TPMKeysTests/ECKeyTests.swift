import Foundation
import KeyInterface
import TestSupport
import XCTest

@testable import TPMKeys

/// EC keys (P-256, P-384), in software and in swtpm, each checked with the openssl CLI:
/// it reads our SubjectPublicKeyInfo, verifies our ECDSA signatures, and (through the
/// tpm2 provider) loads and signs with our TSS2 key files.
final class ECKeyTests: XCTestCase {
    private var scratch: TPMScratch!

    override func setUpWithError() throws { scratch = try TPMScratch() }
    override func tearDown() { scratch = nil }

    /// openssl verifies `signature` over `digest` with the public key `spki`.
    private func assertVerifies(_ signature: [UInt8], digest: [UInt8], algorithm: DigestAlgorithm, spki: [UInt8],
                                file: StaticString = #filePath, line: UInt = #line) throws {
        let spkiPath = try scratch.write(spki, to: "pub-\(UUID().uuidString).der")
        let digestPath = try scratch.write(digest, to: "digest-\(UUID().uuidString).bin")
        let signaturePath = try scratch.write(signature, to: "sig-\(UUID().uuidString).bin")
        let verify = try TPMTestPeers.openssl(
            ["pkeyutl", "-verify", "-pubin", "-keyform", "DER", "-inkey", spkiPath,
             "-pkeyopt", "digest:\(algorithm.rawValue)", "-in", digestPath, "-sigfile", signaturePath])
        XCTAssertTrue(verify.output.contains("Signature Verified Successfully"), verify.output, file: file, line: line)
    }

    private func opensslCurveName(_ curve: EllipticCurve) -> String { curve == .p256 ? "prime256v1" : "secp384r1" }

    // MARK: - Software

    func testSoftwareECKeysSignAndRoundTripThroughPEM() throws {
        for curve in EllipticCurve.allCases {
            let key = try SoftwareKey.generate(KeySpec(curve: curve))
            XCTAssertEqual(key.algorithm, .ec(curve))
            XCTAssertEqual(key.storage, .software)
            let pem = try key.pemRepresentation()
            XCTAssertTrue(pem.hasPrefix("-----BEGIN PRIVATE KEY-----"), "PKCS#8 expected")
            XCTAssertEqual(try SoftwareKey(pem: pem).subjectPublicKeyInfo, key.subjectPublicKeyInfo)

            let spkiPath = try scratch.write(key.subjectPublicKeyInfo, to: "pub-\(curve.rawValue).der")
            let text = try TPMTestPeers.openssl(["pkey", "-pubin", "-inform", "DER", "-in", spkiPath, "-noout", "-text"])
            XCTAssertTrue(text.output.contains("ASN1 OID: \(opensslCurveName(curve))"), text.output)

            for algorithm in [curve.digest, .sha256] {
                let digest = randomBytes(algorithm.length)
                try assertVerifies(try key.sign(digest: digest, algorithm: algorithm), digest: digest, algorithm: algorithm,
                                   spki: key.subjectPublicKeyInfo)
            }
        }
    }

    func testAnECKeyRefusesToDecryptAndSaysWhy() throws {
        let key = try SoftwareKey.generate(KeySpec(curve: .p256))
        XCTAssertThrowsError(try key.decrypt(randomBytes(256))) { error in
            XCTAssertEqual((error as? SoftwareKeyError)?.keyFailure, .inputRejected)
            XCTAssertTrue("\(error)".contains("EC P-256 key cannot decrypt"), "\(error)")
        }
    }

    func testSoftwareKeyFromOpenSSLOnAnotherCurveIsRefused() throws {
        let path = scratch.path("k1.pem")
        _ = try TPMTestPeers.openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:secp256k1", "-out", path])
        let pem = String(decoding: try scratch.read("k1.pem"), as: UTF8.self)
        XCTAssertThrowsError(try SoftwareKey(pem: pem)) { error in
            XCTAssertTrue("\(error)".contains("secp256k1"), "\(error)")
            XCTAssertTrue("\(error)".contains("only P-256 and P-384"), "\(error)")
        }
        // An OpenSSL P-384 key (SEC1 "EC PRIVATE KEY") loads as one.
        let p384 = scratch.path("p384.pem")
        _ = try TPMTestPeers.openssl(["ecparam", "-name", "secp384r1", "-genkey", "-noout", "-out", p384])
        XCTAssertEqual(try SoftwareKey(pem: String(decoding: try scratch.read("p384.pem"), as: UTF8.self)).algorithm, .ec(.p384))
    }

    // MARK: - Pure parts

    func testECDSASignatureDERIsMinimal() throws {
        // r with leading zero bytes, s with its high bit set (needs a zero byte in DER).
        let r = [0, 0, 0x12] + [UInt8](repeating: 0x34, count: 29)
        let s = [0x80] + [UInt8](repeating: 0x01, count: 31)
        let der = try TPMECPublicKey.signatureDER(r: r, s: s)
        XCTAssertEqual(Array(der.prefix(4)), [0x30, 0x43, 0x02, 0x1e], "SEQUENCE, then r as 30 bytes (leading zeros dropped)")
        XCTAssertEqual(Array(der[4...5]), [0x12, 0x34])
        XCTAssertEqual(Array(der[34...37]), [0x02, 0x21, 0x00, 0x80], "s as 33 bytes: a zero before the high bit")
        XCTAssertEqual(try TPMECPublicKey.signatureDER(r: [0, 0], s: [1]), [0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x01])
    }

    func testECPointCoordinatesArePaddedAndBounded() throws {
        let point = try TPMECPublicKey(curve: .p256, x: [1, 2], y: [UInt8](repeating: 9, count: 32))
        XCTAssertEqual(point.x, [UInt8](repeating: 0, count: 30) + [1, 2])
        XCTAssertThrowsError(try TPMECPublicKey(curve: .p256, x: [UInt8](repeating: 1, count: 33), y: [1]))
        XCTAssertThrowsError(try TPMECPublicKey(curve: .p384, x: [], y: [1]))
    }

    func testCurveFacts() {
        XCTAssertEqual(EllipticCurve.p256.digest, .sha256)
        XCTAssertEqual(EllipticCurve.p384.digest, .sha384)
        XCTAssertEqual(KeyAlgorithm.ec(.p384).description, "EC P-384")
        XCTAssertEqual(KeyAlgorithm.rsa(bits: 3072).description, "RSA-3072")
        XCTAssertTrue(KeyAlgorithm.rsa(bits: 2048).canDecryptEnvelopes)
        XCTAssertFalse(KeyAlgorithm.ec(.p256).canDecryptEnvelopes)
    }
}

/// EC keys born in swtpm.
final class ECKeySwtpmTests: XCTestCase {
    private var swtpm: SwtpmProcess!
    private var scratch: TPMScratch!

    override func setUpWithError() throws {
        swtpm = try TPMTestPeers.startSwtpm()
        scratch = try TPMScratch()
    }

    override func tearDown() {
        swtpm?.stop()
        swtpm = nil
        scratch = nil
    }

    private var factory: TPMKeyFactory { TPMKeyFactory(tcti: swtpm.tcti) }

    func testTPMECKeysAreSignOnlyReadByTheTPM2ProviderAndSign() throws {
        for curve in EllipticCurve.allCases {
            let key = try factory.createKey(spec: KeySpec(curve: curve))
            XCTAssertEqual(key.algorithm, .ec(curve))
            XCTAssertEqual(key.storage, .tpm)
            XCTAssertEqual(key.keyBits, curve.coordinateLength * 8)
            let attributes = try TSS2Marshalling.unmarshalPublic(key.keyFile.publicBlob).publicArea.objectAttributes
            XCTAssertEqual(TPMObjectAttributes.names(attributes),
                           ["fixedTPM", "fixedParent", "sensitiveDataOrigin", "userWithAuth", "noDA", "sign"])

            // The provider's view of the key file is our SubjectPublicKeyInfo.
            let keyPath = try scratch.write(try key.pemRepresentation(), to: "key-\(curve.rawValue).pem")
            let spki = try TPMTestPeers.openssl(
                ["pkey", "-provider", "tpm2", "-provider", "default", "-in", keyPath, "-pubout", "-outform", "DER"],
                environment: swtpm.toolEnvironment)
            XCTAssertEqual(spki.standardOutput, key.subjectPublicKeyInfo, curve.rawValue)

            // We sign in the TPM; plain openssl verifies with the public key.
            let spkiPath = try scratch.write(key.subjectPublicKeyInfo, to: "pub-\(curve.rawValue).der")
            let digest = randomBytes(curve.digest.length)
            let signaturePath = try scratch.write(try key.sign(digest: digest, algorithm: curve.digest), to: "sig-\(curve.rawValue).bin")
            let digestPath = try scratch.write(digest, to: "digest-\(curve.rawValue).bin")
            let verify = try TPMTestPeers.openssl(
                ["pkeyutl", "-verify", "-pubin", "-keyform", "DER", "-inkey", spkiPath, "-pkeyopt", "digest:\(curve.digest.rawValue)",
                 "-in", digestPath, "-sigfile", signaturePath])
            XCTAssertTrue(verify.output.contains("Signature Verified Successfully"), verify.output)

            // The provider signs with our key file; the signature verifies with our SPKI.
            _ = try TPMTestPeers.openssl(
                ["pkeyutl", "-provider", "tpm2", "-provider", "default", "-sign", "-inkey", keyPath,
                 "-pkeyopt", "digest:\(curve.digest.rawValue)", "-in", digestPath, "-out", scratch.path("provider-\(curve.rawValue).sig")],
                environment: swtpm.toolEnvironment)
            _ = try TPMTestPeers.openssl(
                ["pkeyutl", "-verify", "-pubin", "-keyform", "DER", "-inkey", spkiPath, "-pkeyopt", "digest:\(curve.digest.rawValue)",
                 "-in", digestPath, "-sigfile", scratch.path("provider-\(curve.rawValue).sig")])

            // Reloaded from its file, as a later run does, it is the same key; it never decrypts.
            let reloaded = try TPMKeyFactory.load(pem: try key.pemRepresentation(), tcti: swtpm.tcti)
            XCTAssertEqual(reloaded.subjectPublicKeyInfo, key.subjectPublicKeyInfo)
            XCTAssertThrowsError(try reloaded.decrypt(randomBytes(64))) { error in
                XCTAssertEqual((error as? TPMError)?.keyFailure, .inputRejected, "\(error)")
            }
        }
    }
}
