import Foundation
import SwiftASN1
import TPMKeys
import TestSupport
import X509
import XCTest

@testable import SCEPClient

/// AES-GCM content encryption (RFC 5084) in EnvelopedData and AuthEnvelopedData
/// (RFC 5083): the structures, and real AuthEnvelopedData written by OpenSSL's `cms`.
final class GCMEnvelopeTests: XCTestCase {
    func testGCMParametersRoundTripDefaultAndRejections() throws {
        let nonce = Array(0..<12).map(UInt8.init)
        for icv in [12, 16] {
            let value = GCMParameters(nonce: nonce, icvLength: icv)
            let der = try ASN1TestSupport.der(value)
            XCTAssertEqual(try GCMParameters(derEncoded: der), value)
            XCTAssertEqual(try ASN1TestSupport.der(GCMParameters(derEncoded: der)), der)
            for length in 0..<der.count {
                XCTAssertThrowsError(try GCMParameters(berEncoded: Array(der.prefix(length))), "prefix \(length)")
            }
        }
        // The default (12) is left out: SEQUENCE { OCTET STRING }.
        XCTAssertEqual(try ASN1TestSupport.der(GCMParameters(nonce: [1, 2, 3])), [0x30, 0x05, 0x04, 0x03, 1, 2, 3])
        // aes-ICVlen outside 12…16 is refused.
        XCTAssertThrowsError(try GCMParameters(berEncoded: [0x30, 0x08, 0x04, 0x03, 1, 2, 3, 0x02, 0x01, 0x08]))
        XCTAssertThrowsError(try GCMParameters(berEncoded: [0x30, 0x02, 0x04, 0x00]), "an empty nonce")
    }

    func testGCMPrimitivesRoundTripAndCheckTheTag() throws {
        let key = try CryptoPrimitives.randomBytes(16)
        let nonce = try CryptoPrimitives.randomBytes(12)
        let sealed = try CryptoPrimitives.encryptGCM(Array("certs".utf8), cipher: .aes128GCM, key: key, nonce: nonce, additionalData: [9], tagLength: 12)
        XCTAssertEqual(sealed.tag.count, 12)
        XCTAssertEqual(try CryptoPrimitives.decryptGCM(sealed.ciphertext, tag: sealed.tag, cipher: .aes128GCM, key: key, nonce: nonce, additionalData: [9]),
                       Array("certs".utf8))
        var badTag = sealed.tag
        badTag[11] ^= 1
        for (tag, aad) in [(badTag, [UInt8(9)]), (sealed.tag, [8])] {
            XCTAssertThrowsError(try CryptoPrimitives.decryptGCM(sealed.ciphertext, tag: tag, cipher: .aes128GCM, key: key, nonce: nonce, additionalData: aad)) {
                XCTAssertEqual(($0 as? SCEPError)?.code, .decryptionFailed)
            }
        }
    }

    /// OpenSSL 3's `cms -encrypt -aes-*-gcm` writes AuthEnvelopedData: an independent
    /// implementation of RFC 5083, so our parser and AAD handling meet a real peer.
    func testAuthEnvelopedDataFromOpenSSLOpensWithTheRecipientKey() throws {
        try PeerRequirementXCT.require("openssl")
        let directory = try TemporaryDirectory(prefix: "gcm-openssl")
        let key = try SoftwareKey.generate(KeySpec())
        let name = try DistinguishedName { CommonName("GCM recipient") }
        let signer = try EnrollmentKeySigner(key)
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: signer.publicKey, notValidBefore: Date() - 60, notValidAfter: Date() + 3600,
            issuer: name, subject: name, signatureAlgorithm: .sha256WithRSAEncryption,
            extensions: Certificate.Extensions(), issuerPrivateKey: .init(signer))
        try (try certificate.serializeAsPEM().pemString + "\n").write(toFile: directory.appending("cert.pem"), atomically: true, encoding: .utf8)

        for cipher in ["aes-128-gcm", "aes-256-gcm"] {
            try openssl(["crl2pkcs7", "-nocrl", "-certfile", directory.appending("cert.pem"), "-outform", "DER", "-out", directory.appending("p7.der")])
            try openssl(["cms", "-encrypt", "-binary", "-\(cipher)", "-in", directory.appending("p7.der"), "-outform", "DER",
                         "-out", directory.appending("env.der"), "-recip", directory.appending("cert.pem"),
                         "-keyopt", "rsa_padding_mode:pkcs1"])
            let envelope = Array(try Data(contentsOf: URL(fileURLWithPath: directory.appending("env.der"))))
            XCTAssertEqual(try ContentInfo(berEncoded: envelope).contentType, OID.authEnvelopedData, "OpenSSL wrote no AuthEnvelopedData for \(cipher)")
            let opened = try CertRepEnvelope.openCertificates(envelope, key: key, events: { _ in })
            XCTAssertEqual(opened, [certificate], cipher)

            // A flipped byte in the ciphertext fails the tag check.
            var tampered = envelope
            tampered[tampered.count - 20] ^= 0x01
            XCTAssertThrowsError(try CertRepEnvelope.openCertificates(tampered, key: key, events: { _ in }), cipher)
        }
    }

    private func openssl(_ arguments: [String]) throws {
        let result = try ChildProcess.run(executable: "openssl", arguments: arguments)
        guard case .exited(0) = result.status else {
            throw SCEPError(.crypto, "openssl \(arguments.joined(separator: " ")) failed: \(result.errorOutput)")
        }
    }
}

/// The peer rule for XCTest: skip outside CI, fail in CI (see PeerRequirement).
enum PeerRequirementXCT {
    static func require(_ binary: String) throws {
        do {
            try PeerRequirement.require(binary: binary)
        } catch let missing as PeerUnavailable where missing.maySkip {
            throw XCTSkip(missing.description)
        }
    }
}
