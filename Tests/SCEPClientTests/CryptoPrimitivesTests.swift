import Crypto
import SwiftASN1
import KeyInterface
import TPMKeys
import X509
import XCTest

@testable import SCEPClient

/// The libcrypto primitives, against vectors from `openssl enc` / `openssl cms`
/// (Fixtures.swift) and against a software key.
final class CryptoPrimitivesTests: XCTestCase {
    // One RSA key for the whole class: generation takes up to a second here.
    private static let key: SoftwareKey? = try? SoftwareKey.generate(KeySpec(rsaBits: 2048))

    private func softwareKey() throws -> SoftwareKey {
        try XCTUnwrap(Self.key, "RSA-2048 key generation failed")
    }

    private func assertCode(_ code: SCEPError.Code, file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Void) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            XCTAssertEqual((error as? SCEPError)?.code, code, "\(error)", file: file, line: line)
        }
    }

    // MARK: Symmetric ciphers

    func testAES128CBCMatchesOpenSSL() throws {
        let v = CipherVectors.self
        XCTAssertEqual(try CryptoPrimitives.encrypt(v.plaintext, cipher: .aes128CBC, key: v.aes128Key, iv: v.aesIV), v.aes128Ciphertext)
        XCTAssertEqual(try CryptoPrimitives.decrypt(v.aes128Ciphertext, cipher: .aes128CBC, key: v.aes128Key, iv: v.aesIV), v.plaintext)
    }

    func testAES256CBCMatchesOpenSSL() throws {
        let v = CipherVectors.self
        XCTAssertEqual(try CryptoPrimitives.encrypt(v.plaintext, cipher: .aes256CBC, key: v.aes256Key, iv: v.aesIV), v.aes256Ciphertext)
        XCTAssertEqual(try CryptoPrimitives.decrypt(v.aes256Ciphertext, cipher: .aes256CBC, key: v.aes256Key, iv: v.aesIV), v.plaintext)
    }

    func testAESRoundTripsOfEveryLength() throws {
        for cipher in [ContentCipher.aes128CBC, .aes192CBC, .aes256CBC] {
            let key = try CryptoPrimitives.randomBytes(cipher.keyLength)
            let iv = try CryptoPrimitives.randomBytes(cipher.ivLength)
            for length in [0, 1, 15, 16, 17, 1000] {
                let plaintext = try CryptoPrimitives.randomBytes(length)
                let ciphertext = try CryptoPrimitives.encrypt(plaintext, cipher: cipher, key: key, iv: iv)
                XCTAssertEqual(ciphertext.count, (length / 16 + 1) * 16, "PKCS#7 padding always adds a block or part of one")
                XCTAssertEqual(try CryptoPrimitives.decrypt(ciphertext, cipher: cipher, key: key, iv: iv), plaintext, "\(cipher) \(length)")
            }
        }
    }

    func testDES3CBCDecryptsOpenSSLVector() throws {
        let v = CipherVectors.self
        XCTAssertEqual(try CryptoPrimitives.decrypt(v.des3Ciphertext, cipher: .desEDE3CBC, key: v.des3Key, iv: v.desIV), v.plaintext)
    }

    /// scepserver and step-ca encrypt every CertRep with single DES (legacy provider).
    func testDESCBCDecryptsOpenSSLVector() throws {
        let v = CipherVectors.self
        XCTAssertEqual(try CryptoPrimitives.decrypt(v.desCiphertext, cipher: .desCBC, key: v.desKey, iv: v.desIV), v.plaintext)
        // Loading the legacy provider must keep the default one: AES still works afterwards.
        XCTAssertEqual(try CryptoPrimitives.decrypt(v.aes128Ciphertext, cipher: .aes128CBC, key: v.aes128Key, iv: v.aesIV), v.plaintext)
    }

    func testWrongKeyIsAnErrorNotACrash() {
        let v = CipherVectors.self
        var wrong = v.aes128Key
        wrong[0] ^= 0xFF
        assertCode(.decryptionFailed) { _ = try CryptoPrimitives.decrypt(v.aes128Ciphertext, cipher: .aes128CBC, key: wrong, iv: v.aesIV) }
        var wrongDES = v.desKey
        wrongDES[7] ^= 0xF0
        assertCode(.decryptionFailed) { _ = try CryptoPrimitives.decrypt(v.desCiphertext, cipher: .desCBC, key: wrongDES, iv: v.desIV) }
        // A key of the wrong cipher's length.
        assertCode(.malformedReply) { _ = try CryptoPrimitives.decrypt(v.aes128Ciphertext, cipher: .aes256CBC, key: v.aes128Key, iv: v.aesIV) }
        assertCode(.malformedReply) { _ = try CryptoPrimitives.decrypt(v.desCiphertext, cipher: .desCBC, key: v.desKey, iv: v.aesIV) }
        assertCode(.malformedReply) { _ = try CryptoPrimitives.encrypt(v.plaintext, cipher: .aes128CBC, key: [], iv: v.aesIV) }
    }

    func testCorruptCiphertextIsAnError() {
        let v = CipherVectors.self
        assertCode(.decryptionFailed) { _ = try CryptoPrimitives.decrypt(Array(v.aes128Ciphertext.dropLast()), cipher: .aes128CBC, key: v.aes128Key, iv: v.aesIV) }
        assertCode(.decryptionFailed) { _ = try CryptoPrimitives.decrypt([], cipher: .aes128CBC, key: v.aes128Key, iv: v.aesIV) }
        assertCode(.decryptionFailed) { _ = try CryptoPrimitives.decrypt(Array(v.desCiphertext.prefix(12)), cipher: .desCBC, key: v.desKey, iv: v.desIV) }
    }

    // MARK: RSA key transport

    func testRSAEncryptToSoftwareKeyAndDecryptWithIt() throws {
        let key = try softwareKey()
        let contentKey = try CryptoPrimitives.randomBytes(16)
        let encrypted = try CryptoPrimitives.rsaEncrypt(contentKey, to: key.subjectPublicKeyInfo)
        XCTAssertEqual(encrypted.count, 256)
        XCTAssertEqual(try key.decrypt(encrypted), contentKey)
        // PKCS#1 v1.5 encryption is randomized.
        XCTAssertNotEqual(try CryptoPrimitives.rsaEncrypt(contentKey, to: key.subjectPublicKeyInfo), encrypted)
    }

    func testOpenSSLEnvelopeOpensWithTheRecipientKey() throws {
        let enveloped = try EnvelopedData(derEncoded: OpenSSLVectors.envelopedData)
        guard case .keyTransport(let recipient) = enveloped.recipientInfos.first else { return XCTFail("expected ktri") }
        let key = try SoftwareKey(pem: OpenSSLVectors.recipientKeyPEM)
        let contentKey = try key.decrypt(Array(recipient.encryptedKey.bytes))
        XCTAssertEqual(contentKey.count, 16)
        let algorithm = enveloped.encryptedContentInfo.contentEncryptionAlgorithm
        let iv = try ASN1OctetString(asn1Any: try XCTUnwrap(algorithm.parameters))
        let plaintext = try CryptoPrimitives.decrypt(
            Array(try XCTUnwrap(enveloped.encryptedContentInfo.encryptedContent).bytes), cipher: .aes128CBC, key: contentKey, iv: Array(iv.bytes))
        XCTAssertEqual(plaintext, Array("hello SCEP".utf8))
    }

    func testRSAEncryptToANonRSAOrGarbageKeyIsAnError() throws {
        let ecSPKI = try Certificate.PublicKey(P256.Signing.PrivateKey().publicKey).subjectPublicKeyInfoDER()
        XCTAssertThrowsError(try CryptoPrimitives.rsaEncrypt([1, 2, 3], to: ecSPKI))
        assertCode(.malformedReply) { _ = try CryptoPrimitives.rsaEncrypt([1, 2, 3], to: [0x30, 0x03, 0x02, 0x01, 0x00]) }
        assertCode(.malformedReply) { _ = try CryptoPrimitives.rsaEncrypt([1, 2, 3], to: []) }
    }

    // MARK: Signatures

    func testSignatureVerifiesTrueAndFalse() throws {
        let key = try softwareKey()
        let data = Array("signed attributes".utf8)
        for digest in DigestAlgorithm.allCases {
            let signature = try key.sign(digest: try CryptoPrimitives.digest(digest, data), algorithm: digest)
            XCTAssertTrue(try CryptoPrimitives.verifyRSASignature(signature, over: data, digest: digest, subjectPublicKeyInfo: key.subjectPublicKeyInfo), "\(digest)")
            XCTAssertFalse(try CryptoPrimitives.verifyRSASignature(signature, over: data + [0], digest: digest, subjectPublicKeyInfo: key.subjectPublicKeyInfo), "\(digest)")
            var flipped = signature
            flipped[flipped.count / 2] ^= 0x01
            XCTAssertFalse(try CryptoPrimitives.verifyRSASignature(flipped, over: data, digest: digest, subjectPublicKeyInfo: key.subjectPublicKeyInfo), "\(digest)")
            XCTAssertFalse(try CryptoPrimitives.verifyRSASignature([], over: data, digest: digest, subjectPublicKeyInfo: key.subjectPublicKeyInfo), "\(digest)")
        }
        // The right signature checked with the wrong digest, or with another key.
        let signature = try key.sign(digest: try CryptoPrimitives.digest(.sha256, data), algorithm: .sha256)
        XCTAssertFalse(try CryptoPrimitives.verifyRSASignature(signature, over: data, digest: .sha512, subjectPublicKeyInfo: key.subjectPublicKeyInfo))
        let other = try SoftwareKey(pem: OpenSSLVectors.recipientKeyPEM)
        XCTAssertFalse(try CryptoPrimitives.verifyRSASignature(signature, over: data, digest: .sha256, subjectPublicKeyInfo: other.subjectPublicKeyInfo))
    }

    func testNonRSASignerIsUnsupported() throws {
        let ecKey = P256.Signing.PrivateKey()
        let spki = try Certificate.PublicKey(ecKey.publicKey).subjectPublicKeyInfoDER()
        assertCode(.unsupportedAlgorithm) {
            _ = try CryptoPrimitives.verifyRSASignature([1], over: [2], digest: .sha256, subjectPublicKeyInfo: spki)
        }
    }

    // MARK: Digests and randomness

    func testDigestsMatchKnownAnswers() throws {
        let abc = Array("abc".utf8)
        XCTAssertEqual(try CryptoPrimitives.digest(.sha1, abc), Fixtures.hex("a9993e364706816aba3e25717850c26c9cd0d89d"))
        XCTAssertEqual(try CryptoPrimitives.digest(.sha256, abc), Fixtures.hex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"))
        XCTAssertEqual(try CryptoPrimitives.digest(.sha384, abc).count, 48)
        XCTAssertEqual(try CryptoPrimitives.digest(.sha512, abc), Array(SHA512.hash(data: abc)))
        for algorithm in DigestAlgorithm.allCases {
            XCTAssertEqual(try CryptoPrimitives.digest(algorithm, []).count, algorithm.length)
        }
    }

    func testRandomBytes() throws {
        let a = try CryptoPrimitives.randomBytes(32)
        let b = try CryptoPrimitives.randomBytes(32)
        XCTAssertEqual(a.count, 32)
        XCTAssertNotEqual(a, b)
        XCTAssertEqual(try CryptoPrimitives.randomBytes(0), [])
    }
}
