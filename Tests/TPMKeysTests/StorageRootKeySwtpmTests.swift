import Foundation
import TestSupport
@testable import TPMKeys
import XCTest

/// Whatever lives at the well-known SRK handle 0x81000001 is used only when
/// it is the SRK of the key-file convention; anything else is never
/// authorized against, so it can neither break enrollment nor push the TPM
/// into dictionary-attack lockout. Checked against swtpm with tpm2-tools,
/// which plants the objects and reads the lockout counter (always after the
/// code under test has closed its connection: swtpm serves one client).
final class StorageRootKeySwtpmTests: XCTestCase {
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
    private var directory: String { scratch.directory.path }

    /// swtpm locks out after 3 failures (TPM2_PT_MAX_AUTH_FAIL): more runs
    /// than that would hit lockout if any of them tried the foreign key.
    private let runsBeyondLockoutThreshold = 4

    func testForeignStorageKeyAtTheSRKHandleIsNeitherUsedNorAuthorizedAgainst() throws {
        try TPMTestPeers.plantForeignStorageKey(at: "0x81000001", tcti: swtpm.tcti, in: directory)
        XCTAssertEqual(try TPMTestPeers.lockoutCounter(tcti: swtpm.tcti), 0, "precondition")

        for run in 1...runsBeyondLockoutThreshold {
            let key = try factory.createKey(spec: KeySpec())
            XCTAssertEqual(key.parentHandle, 0x4000_0001, "run \(run): the key must live under the re-created primary")
            XCTAssertEqual(try TPMTestPeers.lockoutCounter(tcti: swtpm.tcti), 0,
                           "run \(run): an authorization was tried against the foreign key")
        }

        // The key made next to the foreign object works, and tpm2-openssl
        // (which re-creates the primary for 0x40000001) agrees on it.
        let key = try factory.createKey(spec: KeySpec())
        try assertSignsAndVerifies(key)
        let keyPath = try scratch.write(try key.pemRepresentation(), to: "key.pem")
        let spki = try TPMTestPeers.openssl(
            ["pkey", "-provider", "tpm2", "-provider", "default", "-in", keyPath, "-pubout", "-outform", "DER"],
            environment: swtpm.toolEnvironment)
        XCTAssertEqual(spki.standardOutput, key.subjectPublicKeyInfo)

        // Not ours to remove: the foreign object stays, nothing transient is left.
        let persistent = try TPMTestPeers.tpm2Tool("tpm2_getcap", ["handles-persistent"], tcti: swtpm.tcti, in: directory)
        XCTAssertTrue(persistent.output.contains("0x81000001"), persistent.output)
        XCTAssertEqual(try TPMTestPeers.transientHandles(tcti: swtpm.tcti), [])
        XCTAssertEqual(try TPMTestPeers.lockoutCounter(tcti: swtpm.tcti), 0)
    }

    /// An SRK with the right template but a password cannot lock anything out
    /// (noDA); the agent notices the refused authorization and falls back.
    func testTemplateMatchingSRKWithAPasswordFallsBackToTheOwnerPrimary() throws {
        try TPMTestPeers.persistStorageRootKey(at: "0x81000001", password: "secret", tcti: swtpm.tcti, in: directory)

        for run in 1...runsBeyondLockoutThreshold {
            let key = try factory.createKey(spec: KeySpec())
            XCTAssertEqual(key.parentHandle, 0x4000_0001, "run \(run)")
        }
        try assertSignsAndVerifies(try factory.createKey(spec: KeySpec()))
        XCTAssertEqual(try TPMTestPeers.lockoutCounter(tcti: swtpm.tcti), 0)
        XCTAssertEqual(try TPMTestPeers.transientHandles(tcti: swtpm.tcti), [])
    }

    /// A key file naming 0x81000001 as parent, after the SRK there was
    /// replaced by a foreign key: refused before Esys_Load, with a message
    /// that names the handle and what to do, and no lockout count.
    func testKeyWhosePersistentParentWasReplacedIsRefusedWithoutAnAuthorizationAttempt() throws {
        try TPMTestPeers.persistStorageRootKey(at: "0x81000001", tcti: swtpm.tcti, in: directory)
        let pem = try factory.createKey(spec: KeySpec()).pemRepresentation()
        let key = try TPMKeyFactory.load(pem: pem, tcti: swtpm.tcti)
        XCTAssertEqual(key.parentHandle, 0x8100_0001, "precondition: the key lives under the persistent SRK")
        try assertSignsAndVerifies(key)

        try TPMTestPeers.evict("0x81000001", tcti: swtpm.tcti, in: directory)
        try TPMTestPeers.plantForeignStorageKey(at: "0x81000001", tcti: swtpm.tcti, in: directory)

        for _ in 1...runsBeyondLockoutThreshold {
            XCTAssertThrowsError(try key.sign(digest: randomBytes(32), algorithm: .sha256)) { error in
                guard let error = error as? TPMError else { return XCTFail("\(error)") }
                XCTAssertEqual(error.code, .keyNotLoadable, error.message)
                XCTAssertEqual(error.tcti, swtpm.tcti)
                for expected in ["persistent key 0x81000001", swtpm.tcti, "is not a storage key the agent can load under",
                                 "lacks noDA", "restore the original SRK at 0x81000001, or enroll a new key"] {
                    XCTAssertTrue(error.message.contains(expected), "missing \"\(expected)\" in: \(error.message)")
                }
            }
        }
        XCTAssertEqual(try TPMTestPeers.lockoutCounter(tcti: swtpm.tcti), 0)
        XCTAssertEqual(try TPMTestPeers.transientHandles(tcti: swtpm.tcti), [])
    }

    /// A persistent SRK of the right kind is still used (and checked, not
    /// merely present) for both creating and loading.
    func testMatchingPersistentSRKIsStillUsed() throws {
        try TPMTestPeers.persistStorageRootKey(at: "0x81000001", tcti: swtpm.tcti, in: directory)
        let key = try factory.createKey(spec: KeySpec())
        XCTAssertEqual(key.parentHandle, 0x8100_0001)
        try assertSignsAndVerifies(try TPMKeyFactory.load(pem: try key.pemRepresentation(), tcti: swtpm.tcti))
        XCTAssertEqual(try TPMTestPeers.lockoutCounter(tcti: swtpm.tcti), 0)
    }

    /// An RSA SRK at 0x81000001 (as Windows provisions it) is not the agent's SRK, so new
    /// keys go under the owner primary; but a key file made under it by another tool (here
    /// tpm2-openssl) still loads: the SRK has noDA, so trying it cannot count toward lockout.
    func testKeysUnderAnRSAStorageRootKeyStillLoad() throws {
        try TPMTestPeers.persistStorageRootKey(at: "0x81000001", algorithm: "rsa2048:aes128cfb", tcti: swtpm.tcti, in: directory)
        XCTAssertEqual(try factory.createKey(spec: KeySpec()).parentHandle, 0x4000_0001)
        let keyPath = directory + "/rsa-srk-child.pem"
        try TPMTestPeers.openssl(["genpkey", "-provider", "tpm2", "-provider", "default", "-algorithm", "RSA",
                                  "-pkeyopt", "parent:0x81000001", "-out", keyPath], environment: swtpm.toolEnvironment)
        let key = try TPMKeyFactory.load(pem: try String(contentsOfFile: keyPath, encoding: .utf8), tcti: swtpm.tcti)
        XCTAssertEqual(key.parentHandle, 0x8100_0001)
        try assertSignsAndVerifies(key)
        XCTAssertEqual(try TPMTestPeers.lockoutCounter(tcti: swtpm.tcti), 0)
    }

    private func assertSignsAndVerifies(_ key: TPMKey, file: StaticString = #filePath, line: UInt = #line) throws {
        let digest = randomBytes(32)
        let signature = try key.sign(digest: digest, algorithm: .sha256)
        try TPMTestPeers.openssl(
            ["pkeyutl", "-verify", "-pubin", "-keyform", "DER",
             "-inkey", try scratch.write(key.subjectPublicKeyInfo, to: "pub.der"),
             "-pkeyopt", "digest:sha256", "-in", try scratch.write(digest, to: "d.bin"),
             "-sigfile", try scratch.write(signature, to: "s.bin")],
            file: file, line: line)
    }
}
