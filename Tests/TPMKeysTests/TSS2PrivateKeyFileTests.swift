import Foundation
@testable import TPMKeys
import XCTest

/// The `TSS2 PRIVATE KEY` format: a fixed vector (an RSA-2048 key created
/// once by this code on a throwaway swtpm; its private blob is useless
/// outside that TPM), round trips and rejections. No TPM needed.
final class TSS2PrivateKeyFileTests: XCTestCase {
    static let vectorPEM = """
        -----BEGIN TSS2 PRIVATE KEY-----
        MIICEgYGZ4EFCgEDoAMBAf8CBEAAAAEEggEYARYAAQALAAYAcgAAABAAEAgAAAAA
        AAEA3PV6Hypd5IGBquQYWX+UW4QbshuTTHAs2p6Jg/fnPdlN5qaU9F875lVlq7v9
        hkwt7OAEIFKcEmtpOxuo/wzBShsPYWh5mMW4/3m+Jtx93pWx9vgbHfjg+OaAVKW1
        I4gdTm0w6PgBGGYwUTZGUk5Y63AnTGajwKSmkpjokPriECplKCvoA7VYZ3iyMFZY
        nbFu/RL3FHkMtVmWzM9fge9EXJ1yVlkkvg/y9P3ngec+MGoVtqvP4RX1ppJK1HgZ
        0tFbDlAfri6L6PohInQ5TjudtAbE1o809BPxp/kzXi/BTjvvQPptvfeRV012SsEq
        hHpT6qsaCtleTLwr6eItY/7unwSB4ADeACCh9oigqEo970Y0Sdm9oHWXZMzMusDa
        ibGEkLa6ph1AvAAQ/xvNkuLqunmnW+lSsjpkVvY5svHolEwosS1JBz7FBgiVmsxW
        PB+eX+I6Rbk1YpPq8IA5dsSwAvCRsYzO/7Y3vbBIsEY74INBhzM4DbFabLDy3fbS
        b+RAcIYmGyfd23T7NEvQpijPtLU/bktiMDuyVDNdnUr5xgp3sWqNXxXxoHYE8WhC
        85hudI8E/rdIAgIFQxDlLsxM5w7wp5OlETJrmPTMyHd8EbbFO80Ep04lm9BegrFb
        v0wJdF8e
        -----END TSS2 PRIVATE KEY-----

        """

    /// The vector's SubjectPublicKeyInfo (checked once with `openssl pkey -pubin -text`:
    /// RSA-2048, e = 65537, the modulus found in the vector's TPM2B_PUBLIC).
    static let vectorSPKIBase64 = """
        MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA3PV6Hypd5IGBquQYWX+UW4QbshuTTHAs2p6Jg/fnPdlN5qaU9F875lVlq7v9\
        hkwt7OAEIFKcEmtpOxuo/wzBShsPYWh5mMW4/3m+Jtx93pWx9vgbHfjg+OaAVKW1I4gdTm0w6PgBGGYwUTZGUk5Y63AnTGajwKSmkpjo\
        kPriECplKCvoA7VYZ3iyMFZYnbFu/RL3FHkMtVmWzM9fge9EXJ1yVlkkvg/y9P3ngec+MGoVtqvP4RX1ppJK1HgZ0tFbDlAfri6L6Poh\
        InQ5TjudtAbE1o809BPxp/kzXi/BTjvvQPptvfeRV012SsEqhHpT6qsaCtleTLwr6eItY/7unwIDAQAB
        """

    private var vectorDER: [UInt8] {
        let body = Self.vectorPEM.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()
        return [UInt8](Data(base64Encoded: body)!)
    }

    // MARK: - Vector and round trips

    func testVectorParses() throws {
        let file = try TSS2PrivateKeyFile(pem: Self.vectorPEM)
        XCTAssertTrue(file.emptyAuth)
        XCTAssertEqual(file.parent, 0x4000_0001)
        XCTAssertEqual(file.publicBlob.count, 280)
        XCTAssertEqual(file.privateBlob.count, 224)
        // TPM2B_PUBLIC: size 0x116, type RSA (0x0001), nameAlg SHA-256 (0x000B),
        // attributes 0x00060072 = fixedTPM|fixedParent|sensitiveDataOrigin|userWithAuth|decrypt|sign.
        XCTAssertEqual(Array(file.publicBlob.prefix(10)), [0x01, 0x16, 0x00, 0x01, 0x00, 0x0B, 0x00, 0x06, 0x00, 0x72])
    }

    func testVectorRoundTripsByteForByte() throws {
        let file = try TSS2PrivateKeyFile(bytes: vectorDER)
        XCTAssertEqual(try file.derBytes(), vectorDER)
        XCTAssertEqual(try file.pemString(), Self.vectorPEM)
    }

    func testVectorLoadsAsAKeyWithTheProviderSubjectPublicKeyInfo() throws {
        let key = try TPMKeyFactory.load(pem: Self.vectorPEM, tcti: "swtpm:path=/unused")
        XCTAssertEqual(key.storage, .tpm)
        XCTAssertEqual(key.keyBits, 2048)
        XCTAssertEqual(key.subjectPublicKeyInfo, [UInt8](Data(base64Encoded: Self.vectorSPKIBase64)!))
        XCTAssertEqual(try key.pemRepresentation(), Self.vectorPEM)
    }

    func testBERWithIndefiniteLengthIsAccepted() throws {
        // 30 82 02 12 <content>  →  30 80 <content> 00 00
        let der = vectorDER
        XCTAssertEqual(Array(der.prefix(4)), [0x30, 0x82, 0x02, 0x12])
        let ber = [0x30, 0x80] + der.dropFirst(4) + [0x00, 0x00]
        let file = try TSS2PrivateKeyFile(bytes: Array(ber))
        XCTAssertEqual(file, try TSS2PrivateKeyFile(bytes: der))
        XCTAssertEqual(try file.derBytes(), der, "output is always DER")
    }

    func testPersistentParentIsEncodedAsAPositiveInteger() throws {
        let file = TSS2PrivateKeyFile(emptyAuth: true, parent: 0x8100_0001, publicBlob: [1], privateBlob: [2])
        let der = try file.derBytes()
        // INTEGER 0x81000001 needs a leading zero octet to stay positive.
        XCTAssertNotNil(findSubsequence([0x02, 0x05, 0x00, 0x81, 0x00, 0x00, 0x01], in: der), "\(der)")
        XCTAssertEqual(try TSS2PrivateKeyFile(bytes: der), file)
    }

    func testAbsentEmptyAuthMeansAuthRequiredAndIsRefusedAsAKey() throws {
        let needsAuth = TSS2PrivateKeyFile(emptyAuth: false, parent: 0x4000_0001,
                                           publicBlob: try TSS2PrivateKeyFile(pem: Self.vectorPEM).publicBlob,
                                           privateBlob: try TSS2PrivateKeyFile(pem: Self.vectorPEM).privateBlob)
        let der = try needsAuth.derBytes()
        XCTAssertNil(findSubsequence([0xA0, 0x03, 0x01, 0x01], in: der), "DER omits a FALSE emptyAuth")
        let reparsed = try TSS2PrivateKeyFile(bytes: der)
        XCTAssertFalse(reparsed.emptyAuth)
        XCTAssertThrowsError(try TPMKeyFactory.load(pem: try reparsed.pemString(), tcti: "device")) { error in
            XCTAssertEqual((error as? TPMError)?.code, .authorizationRequired)
        }
    }

    // MARK: - Rejections

    func testOtherKeyTypesAreRejected() throws {
        // id-importablekey 2.23.133.10.1.4: last OID octet 0x03 → 0x04.
        var der = vectorDER
        XCTAssertEqual(Array(der[4..<12]), [0x06, 0x06, 0x67, 0x81, 0x05, 0x0A, 0x01, 0x03])
        der[11] = 0x04
        XCTAssertThrowsError(try TSS2PrivateKeyFile(bytes: der)) { error in
            guard let error = error as? TPMError else { return XCTFail("\(error)") }
            XCTAssertEqual(error.code, .invalidKeyFile)
            XCTAssertTrue(error.message.contains("not a loadable key"), error.message)
        }
    }

    func testTrailingBytesAreRejected() {
        XCTAssertThrowsError(try TSS2PrivateKeyFile(bytes: vectorDER + [0x00])) { error in
            XCTAssertEqual((error as? TPMError)?.code, .invalidKeyFile)
        }
    }

    func testEveryTruncationIsRejected() {
        let der = vectorDER
        for length in 0..<der.count {
            XCTAssertThrowsError(try TSS2PrivateKeyFile(bytes: Array(der.prefix(length))), "prefix of \(length) bytes") { error in
                XCTAssertEqual((error as? TPMError)?.code, .invalidKeyFile)
            }
        }
    }

    func testMissingFieldIsRejected() throws {
        // SEQUENCE { OID, [0] TRUE, INTEGER, OCTET STRING } — no private blob.
        // The vector's fields up to the public blob end at offset 307.
        let fields = Array(vectorDER[4..<307])
        XCTAssertEqual(fields.count, 0x12F)
        let der = [0x30, 0x82, 0x01, 0x2F] + fields
        XCTAssertThrowsError(try TSS2PrivateKeyFile(bytes: der)) { error in
            XCTAssertEqual((error as? TPMError)?.code, .invalidKeyFile)
        }
    }

    func testOtherPEMLabelsAreRejected() {
        let relabelled = Self.vectorPEM.replacingOccurrences(of: "TSS2 PRIVATE KEY", with: "PRIVATE KEY")
        XCTAssertThrowsError(try TSS2PrivateKeyFile(pem: relabelled)) { error in
            guard let error = error as? TPMError else { return XCTFail("\(error)") }
            XCTAssertEqual(error.code, .invalidKeyFile)
            XCTAssertTrue(error.message.contains("expected \"TSS2 PRIVATE KEY\""), error.message)
        }
        XCTAssertThrowsError(try TSS2PrivateKeyFile(pem: "not a PEM")) { error in
            XCTAssertEqual((error as? TPMError)?.code, .invalidKeyFile)
        }
    }

    func testMalformedTPMBlobsAreRejectedWhenLoading() throws {
        let file = try TSS2PrivateKeyFile(pem: Self.vectorPEM)
        let cases: [(String, TSS2PrivateKeyFile)] = [
            ("trailing byte in TPM2B_PUBLIC",
             TSS2PrivateKeyFile(emptyAuth: true, parent: file.parent, publicBlob: file.publicBlob + [0], privateBlob: file.privateBlob)),
            ("truncated TPM2B_PUBLIC",
             TSS2PrivateKeyFile(emptyAuth: true, parent: file.parent, publicBlob: Array(file.publicBlob.dropLast()), privateBlob: file.privateBlob)),
            ("truncated TPM2B_PRIVATE",
             TSS2PrivateKeyFile(emptyAuth: true, parent: file.parent, publicBlob: file.publicBlob, privateBlob: Array(file.privateBlob.dropLast(5)))),
            ("empty TPM2B_PUBLIC",
             TSS2PrivateKeyFile(emptyAuth: true, parent: file.parent, publicBlob: [], privateBlob: file.privateBlob)),
        ]
        for (name, bad) in cases {
            XCTAssertThrowsError(try TPMKey(keyFile: bad, tcti: "device"), name) { error in
                XCTAssertEqual((error as? TPMError)?.code, .invalidKeyFile, name)
            }
        }
    }

    private func findSubsequence(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard needle.count <= haystack.count else { return nil }
        return (0...(haystack.count - needle.count)).first { Array(haystack[$0..<($0 + needle.count)]) == needle }
    }
}
