import Foundation
import TestSupport
import KeyInterface
@testable import TPMKeys
import XCTest

/// TPM keys against a real (software) TPM, checked with independent tools:
/// OpenSSL for signatures and encryption, the tpm2-openssl provider for the
/// key file and storage-root-key compatibility, tpm2-tools for handles.
///
/// swtpm serves one client at a time: every check with another tool runs
/// after the code under test has closed its connection (each TPMKey
/// operation opens and closes its own).
final class TPMKeySwtpmTests: XCTestCase {
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

    // MARK: - Key file and public key

    func testCreatedKeyFileIsReadByTheTPM2OpenSSLProvider() throws {
        let key = try factory.createKey(spec: KeySpec(rsaBits: 2048))
        XCTAssertEqual(key.storage, .tpm)
        XCTAssertEqual(key.keyBits, 2048)
        XCTAssertEqual(key.parentHandle, 0x4000_0001)

        let pem = try key.pemRepresentation()
        XCTAssertTrue(pem.hasPrefix("-----BEGIN TSS2 PRIVATE KEY-----\n"))
        let keyPath = try scratch.write(pem, to: "key.pem")
        let spki = try TPMTestPeers.openssl(
            ["pkey", "-provider", "tpm2", "-provider", "default", "-in", keyPath, "-pubout", "-outform", "DER"],
            environment: swtpm.toolEnvironment)
        XCTAssertEqual(spki.standardOutput, key.subjectPublicKeyInfo)

        // The plain OpenSSL view of our SPKI: RSA-2048, e = 65537.
        let spkiPath = try scratch.write(key.subjectPublicKeyInfo, to: "pub.der")
        let text = try TPMTestPeers.openssl(["pkey", "-pubin", "-inform", "DER", "-in", spkiPath, "-noout", "-text"])
        XCTAssertTrue(text.output.contains("Public-Key: (2048 bit)"), text.output)
        XCTAssertTrue(text.output.contains("Exponent: 65537 (0x10001)"), text.output)
    }

    /// tpm2-openssl loads the key under the primary it re-creates from the
    /// SRK template; a signature it makes proves our SRK is the same key.
    func testTPM2OpenSSLProviderSignsWithOurKeyFile() throws {
        let key = try factory.createKey(spec: KeySpec())
        let keyPath = try scratch.write(try key.pemRepresentation(), to: "key.pem")
        let spkiPath = try scratch.write(key.subjectPublicKeyInfo, to: "pub.der")
        let digestPath = try scratch.write(randomBytes(32), to: "digest.bin")
        try TPMTestPeers.openssl(
            ["pkeyutl", "-provider", "tpm2", "-provider", "default", "-sign", "-inkey", keyPath,
             "-pkeyopt", "digest:sha256", "-in", digestPath, "-out", scratch.path("sig.bin")],
            environment: swtpm.toolEnvironment)
        try TPMTestPeers.openssl(
            ["pkeyutl", "-verify", "-pubin", "-keyform", "DER", "-inkey", spkiPath,
             "-pkeyopt", "digest:sha256", "-in", digestPath, "-sigfile", scratch.path("sig.bin")])
    }

    // MARK: - Sign and decrypt

    func testSignaturesVerifyWithOpenSSL() throws {
        let key = try factory.createKey(spec: KeySpec())
        let spkiPath = try scratch.write(key.subjectPublicKeyInfo, to: "pub.der")
        for algorithm in [DigestAlgorithm.sha256, .sha384, .sha1] {
            let digest = randomBytes(algorithm.length)
            let signature = try key.sign(digest: digest, algorithm: algorithm)
            XCTAssertEqual(signature.count, 256)
            let digestPath = try scratch.write(digest, to: "digest-\(algorithm).bin")
            let signaturePath = try scratch.write(signature, to: "sig-\(algorithm).bin")
            try TPMTestPeers.openssl(
                ["pkeyutl", "-verify", "-pubin", "-keyform", "DER", "-inkey", spkiPath,
                 "-pkeyopt", "digest:\(algorithm.rawValue)", "-in", digestPath, "-sigfile", signaturePath])

            // And a wrong digest must not verify: the check above can fail.
            var other = digest
            other[0] ^= 0xFF
            let otherPath = try scratch.write(other, to: "other-\(algorithm).bin")
            XCTAssertThrowsError(try TPMTestPeers.openssl(
                ["pkeyutl", "-verify", "-pubin", "-keyform", "DER", "-inkey", spkiPath,
                 "-pkeyopt", "digest:\(algorithm.rawValue)", "-in", otherPath, "-sigfile", signaturePath]))
        }
    }

    func testSignRejectsDigestOfWrongLength() throws {
        let key = try factory.createKey(spec: KeySpec())
        XCTAssertThrowsError(try key.sign(digest: randomBytes(20), algorithm: .sha256)) { error in
            XCTAssertEqual((error as? TPMError)?.code, .invalidInput)
        }
    }

    func testDecryptsWhatOpenSSLEncryptedToThePublicKey() throws {
        let key = try factory.createKey(spec: KeySpec())
        let spkiPath = try scratch.write(key.subjectPublicKeyInfo, to: "pub.der")
        let plaintext = randomBytes(32) // an AES-256 content-encryption key, as in CMS
        let plaintextPath = try scratch.write(plaintext, to: "cek.bin")
        try TPMTestPeers.openssl(
            ["pkeyutl", "-encrypt", "-pubin", "-keyform", "DER", "-inkey", spkiPath,
             "-pkeyopt", "rsa_padding_mode:pkcs1", "-in", plaintextPath, "-out", scratch.path("cek.enc")])
        let ciphertext = try scratch.read("cek.enc")
        XCTAssertEqual(ciphertext.count, 256)
        XCTAssertEqual(try key.decrypt(ciphertext), plaintext)
    }

    func testKeyLoadedFromPEMInAFreshConnectionSigns() throws {
        let created = try factory.createKey(spec: KeySpec())
        let pem = try created.pemRepresentation()

        let loaded = try TPMKeyFactory.load(pem: pem, tcti: swtpm.tcti)
        XCTAssertEqual(loaded.subjectPublicKeyInfo, created.subjectPublicKeyInfo)
        XCTAssertEqual(try loaded.pemRepresentation(), pem)

        let digest = randomBytes(32)
        let signature = try loaded.sign(digest: digest, algorithm: .sha256)
        try TPMTestPeers.openssl(
            ["pkeyutl", "-verify", "-pubin", "-keyform", "DER",
             "-inkey", try scratch.write(loaded.subjectPublicKeyInfo, to: "pub.der"),
             "-pkeyopt", "digest:sha256", "-in", try scratch.write(digest, to: "d.bin"),
             "-sigfile", try scratch.write(signature, to: "s.bin")])
    }

    func testKeyFromAnotherTPMIsReportedAsNotLoadable() throws {
        let pem = try factory.createKey(spec: KeySpec()).pemRepresentation()
        let otherTPM = try TPMTestPeers.startSwtpm()
        defer { otherTPM.stop() }
        let foreign = try TPMKeyFactory.load(pem: pem, tcti: otherTPM.tcti)
        XCTAssertThrowsError(try foreign.sign(digest: randomBytes(32), algorithm: .sha256)) { error in
            XCTAssertEqual((error as? TPMError)?.code, .keyNotLoadable, "\(error)")
        }
        XCTAssertEqual(try TPMTestPeers.transientHandles(tcti: otherTPM.tcti), [])
    }

    func testRSA3072WorksOrIsClearlyUnsupported() throws {
        do {
            let key = try factory.createKey(spec: KeySpec(rsaBits: 3072))
            XCTAssertEqual(key.keyBits, 3072)
            let digest = randomBytes(32)
            let signature = try key.sign(digest: digest, algorithm: .sha256)
            XCTAssertEqual(signature.count, 384)
            try TPMTestPeers.openssl(
                ["pkeyutl", "-verify", "-pubin", "-keyform", "DER",
                 "-inkey", try scratch.write(key.subjectPublicKeyInfo, to: "pub.der"),
                 "-pkeyopt", "digest:sha256", "-in", try scratch.write(digest, to: "d.bin"),
                 "-sigfile", try scratch.write(signature, to: "s.bin")])
        } catch let error as TPMError {
            XCTAssertEqual(error.code, .unsupportedAlgorithm)
            XCTAssertTrue(error.message.contains("this TPM does not support RSA-3072; use key_bits = 2048"), error.message)
        }
    }

    /// swtpm supports RSA-3072 but not RSA-4096: the TPM2_TestParms check
    /// behind the RSA-3072 decision gives the clear error for a size it lacks.
    func testKeySizeTheTPMLacksGivesTheClearError() throws {
        XCTAssertThrowsError(try TPMConnection.with(tcti: swtpm.tcti) {
            try factory.requireSupport(forRSABits: 4096, $0)
        }) { error in
            guard let error = error as? TPMError else { return XCTFail("\(error)") }
            XCTAssertEqual(error.code, .unsupportedAlgorithm)
            XCTAssertTrue(error.message.contains("this TPM does not support RSA-4096; use key_bits = 2048"), error.message)
        }
        XCTAssertNoThrow(try TPMConnection.with(tcti: swtpm.tcti) { try factory.requireSupport(forRSABits: 3072, $0) })
    }

    func testUnsupportedKeySizeIsRefusedBeforeTouchingTheTPM() {
        XCTAssertThrowsError(try factory.createKey(spec: KeySpec(rsaBits: 1024))) { error in
            XCTAssertEqual((error as? TPMError)?.code, .invalidInput)
        }
    }

    // MARK: - Handles

    func testNoTransientHandleIsLeftAfterOperationsOrErrors() throws {
        let key = try factory.createKey(spec: KeySpec())
        XCTAssertEqual(try TPMTestPeers.transientHandles(tcti: swtpm.tcti), [])
        _ = try key.sign(digest: randomBytes(32), algorithm: .sha256)
        XCTAssertEqual(try TPMTestPeers.transientHandles(tcti: swtpm.tcti), [])

        // Garbage below the modulus: the TPM rejects the padding after loading the key.
        var garbage = randomBytes(256)
        garbage[0] = 0x00
        XCTAssertThrowsError(try key.decrypt(garbage)) { error in
            XCTAssertEqual((error as? TPMError)?.code, .decryptionFailed, "\(error)")
        }
        XCTAssertEqual(try TPMTestPeers.transientHandles(tcti: swtpm.tcti), [])

        // More operations than the TPM has object slots: nothing accumulates.
        for _ in 0..<4 {
            _ = try key.sign(digest: randomBytes(32), algorithm: .sha256)
        }
        XCTAssertEqual(try TPMTestPeers.transientHandles(tcti: swtpm.tcti), [])
    }

    /// Without a resource manager, objects another client left loaded fill
    /// the TPM; the next operation flushes them first.
    func testObjectsLeftLoadedByAnotherClientAreFlushedAtOpen() throws {
        for index in 0..<3 {
            try TPMTestPeers.tpm2Tool("tpm2_createprimary", ["-C", "o", "-G", "ecc256", "-c", "primary\(index).ctx"],
                                      tcti: swtpm.tcti, in: scratch.directory.path)
        }
        XCTAssertEqual(try TPMTestPeers.transientHandles(tcti: swtpm.tcti).count, 3,
                       "precondition: tpm2-tools leaves its objects loaded on a TPM without resource manager")
        let key = try factory.createKey(spec: KeySpec())
        _ = try key.sign(digest: randomBytes(32), algorithm: .sha256)
        XCTAssertEqual(try TPMTestPeers.transientHandles(tcti: swtpm.tcti), [])
    }

    /// A persistent SRK at 0x81000001 is used (and named in the key file)
    /// instead of re-creating a primary, and is never evicted.
    func testPersistentStorageRootKeyIsUsedAndKept() throws {
        let directory = scratch.directory.path
        try TPMTestPeers.tpm2Tool("tpm2_createprimary",
                                  ["-C", "o", "-G", "ecc256:aes128cfb", "-c", "srk.ctx", "-a",
                                   "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda|restricted|decrypt"],
                                  tcti: swtpm.tcti, in: directory)
        try TPMTestPeers.tpm2Tool("tpm2_evictcontrol", ["-C", "o", "-c", "srk.ctx", "0x81000001"],
                                  tcti: swtpm.tcti, in: directory)
        try TPMTestPeers.tpm2Tool("tpm2_flushcontext", ["-t"], tcti: swtpm.tcti, in: directory)

        let key = try factory.createKey(spec: KeySpec())
        XCTAssertEqual(key.parentHandle, 0x8100_0001)
        let keyPath = try scratch.write(try key.pemRepresentation(), to: "key.pem")
        let spki = try TPMTestPeers.openssl(
            ["pkey", "-provider", "tpm2", "-provider", "default", "-in", keyPath, "-pubout", "-outform", "DER"],
            environment: swtpm.toolEnvironment)
        XCTAssertEqual(spki.standardOutput, key.subjectPublicKeyInfo)

        let digest = randomBytes(32)
        let signature = try TPMKeyFactory.load(pem: try key.pemRepresentation(), tcti: swtpm.tcti)
            .sign(digest: digest, algorithm: .sha256)
        try TPMTestPeers.openssl(
            ["pkeyutl", "-verify", "-pubin", "-keyform", "DER",
             "-inkey", try scratch.write(key.subjectPublicKeyInfo, to: "pub.der"),
             "-pkeyopt", "digest:sha256", "-in", try scratch.write(digest, to: "d.bin"),
             "-sigfile", try scratch.write(signature, to: "s.bin")])

        let persistent = try TPMTestPeers.tpm2Tool("tpm2_getcap", ["handles-persistent"], tcti: swtpm.tcti, in: directory)
        XCTAssertTrue(persistent.output.contains("0x81000001"), persistent.output)
        XCTAssertEqual(try TPMTestPeers.transientHandles(tcti: swtpm.tcti), [])
    }

    // MARK: - Probe

    func testProbeSucceedsOnARunningTPM() throws {
        XCTAssertNoThrow(try factory.probe())
    }

    func testProbeOfAStoppedSwtpmNamesTheTCTI() throws {
        swtpm.stop()
        XCTAssertThrowsError(try factory.probe()) { error in
            guard let error = error as? TPMError else { return XCTFail("\(error)") }
            XCTAssertEqual(error.code, .tpmUnavailable)
            XCTAssertTrue(error.message.contains(swtpm.tcti), error.message)
        }
    }
}
