import Foundation
import TestSupport
@testable import TPMKeys
import XCTest

/// The attributes that make an enrollment key safe to hand to other
/// programs, checked on swtpm with tpm2-tools as the independent client:
/// noDA (nobody can lock the key out by failing to authorize against it),
/// and the TPM-origin attributes the loader insists on (an imported key,
/// whose private half was outside the TPM, is refused).
final class EnrollmentKeyAttributeSwtpmTests: XCTestCase {
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

    private var directory: String { scratch.directory.path }

    /// The SRK as the key-file convention re-creates it, saved as srk.ctx for tpm2-tools.
    private func createStorageRootKeyContext() throws {
        try TPMTestPeers.tpm2ToolFlushing("tpm2_createprimary",
                                          ["-C", "o", "-G", "ecc256:aes128cfb", "-c", "srk.ctx", "-a",
                                           "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda|restricted|decrypt"],
                                          tcti: swtpm.tcti, in: directory)
    }

    // MARK: - noDA

    func testFailedAuthorizationsAgainstTheEnrollmentKeyDoNotCountTowardLockout() throws {
        let key = try TPMKeyFactory(tcti: swtpm.tcti).createKey(spec: KeySpec())
        try scratch.write(key.keyFile.publicBlob, to: "key.pub")
        try scratch.write(key.keyFile.privateBlob, to: "key.priv")

        // tpm2-tools' reading of the public area, not ours.
        let printed = try TPMTestPeers.tpm2Tool("tpm2_print", ["-t", "TPM2B_PUBLIC", "key.pub"], tcti: swtpm.tcti, in: directory)
        let attributesLine = printed.output.split(whereSeparator: \.isNewline)
            .drop { !$0.hasPrefix("attributes:") }.dropFirst().first ?? ""
        XCTAssertTrue(attributesLine.contains("noda"), "attributes: \(attributesLine)\n\(printed.output)")

        // Load the key the way any other program on the host could, and fail
        // to authorize against it more often than swtpm allows before lockout.
        try createStorageRootKeyContext()
        try TPMTestPeers.tpm2ToolFlushing("tpm2_load", ["-C", "srk.ctx", "-u", "key.pub", "-r", "key.priv", "-c", "key.ctx"],
                                          tcti: swtpm.tcti, in: directory)
        try scratch.write(randomBytes(32), to: "digest.bin")
        for attempt in 1...4 {
            let refused = try TPMTestPeers.tpm2ToolExpectingFailure(
                "tpm2_sign", ["-c", "key.ctx", "-p", "wrong", "-g", "sha256", "-d", "digest.bin", "-o", "sig.bin"],
                tcti: swtpm.tcti, in: directory)
            XCTAssertTrue(refused.errorOutput.contains("0x9A2") || refused.errorOutput.contains("0x9a2"),
                          "attempt \(attempt): expected TPM_RC_BAD_AUTH without DA implications: \(refused.errorOutput)")
            XCTAssertEqual(try TPMTestPeers.lockoutCounter(tcti: swtpm.tcti), 0, "attempt \(attempt) counted toward lockout")
        }

        // And the key still works for its owner.
        let digest = randomBytes(32)
        let signature = try key.sign(digest: digest, algorithm: .sha256)
        try TPMTestPeers.openssl(
            ["pkeyutl", "-verify", "-pubin", "-keyform", "DER",
             "-inkey", try scratch.write(key.subjectPublicKeyInfo, to: "pub.der"),
             "-pkeyopt", "digest:sha256", "-in", try scratch.write(digest, to: "d.bin"),
             "-sigfile", try scratch.write(signature, to: "s.bin")])
        XCTAssertEqual(try TPMTestPeers.transientHandles(tcti: swtpm.tcti), [])
    }

    // MARK: - TPM origin

    /// A software RSA key imported with tpm2_import is a working TPM object
    /// (tpm2-tools signs with it), but its private key existed outside the
    /// TPM: the loader refuses it and says why.
    func testImportedKeyIsRefusedAsNotBornInThisTPM() throws {
        try TPMTestPeers.openssl(["genrsa", "-out", scratch.path("software.pem"), "2048"])
        try createStorageRootKeyContext()
        try TPMTestPeers.tpm2ToolFlushing("tpm2_import",
                                          ["-C", "srk.ctx", "-G", "rsa", "-i", "software.pem", "-u", "imported.pub", "-r", "imported.priv"],
                                          tcti: swtpm.tcti, in: directory)
        // Precondition: the imported blob is usable in this TPM.
        try TPMTestPeers.tpm2ToolFlushing("tpm2_load", ["-C", "srk.ctx", "-u", "imported.pub", "-r", "imported.priv", "-c", "imported.ctx"],
                                          tcti: swtpm.tcti, in: directory)
        try scratch.write(randomBytes(32), to: "digest.bin")
        try TPMTestPeers.tpm2ToolFlushing("tpm2_sign", ["-c", "imported.ctx", "-g", "sha256", "-d", "digest.bin", "-o", "sig.bin"],
                                          tcti: swtpm.tcti, in: directory)

        let keyFile = TSS2PrivateKeyFile(emptyAuth: true, parent: 0x4000_0001,
                                         publicBlob: try scratch.read("imported.pub"),
                                         privateBlob: try scratch.read("imported.priv"))
        XCTAssertThrowsError(try TPMKeyFactory.load(pem: try keyFile.pemString(), tcti: swtpm.tcti)) { error in
            guard let error = error as? TPMError else { return XCTFail("\(error)") }
            XCTAssertEqual(error.code, .keyNotCreatedInTPM, error.message)
            for expected in ["lacks fixedTPM, fixedParent, sensitiveDataOrigin", "not born in this TPM", "enroll a new key"] {
                XCTAssertTrue(error.message.contains(expected), "missing \"\(expected)\" in: \(error.message)")
            }
        }
    }
}
