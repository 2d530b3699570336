import Foundation
import TestSupport
import XCTest

@testable import TPMKeys

/// Software keys: generation, PEM round trip, and the two private-key
/// operations, each checked by the openssl CLI rather than by ourselves.
final class SoftwareKeyTests: XCTestCase {
    private var directory: TemporaryDirectory!

    override func setUpWithError() throws { directory = try TemporaryDirectory(prefix: "swkey") }
    override func tearDown() { directory?.remove() }

    private func openssl(_ arguments: [String]) throws -> ChildProcessResult {
        try ChildProcess.run(executable: "/usr/bin/openssl", arguments: arguments, timeout: 30)
    }

    func testGeneratedKeyRoundTripsThroughPEMAndOpenSSLReadsIt() throws {
        let key = try SoftwareKey.generate(KeySpec(rsaBits: 2048))
        XCTAssertEqual(key.bits, 2048)
        XCTAssertEqual(key.storage, .software)
        let pem = try key.pemRepresentation()
        XCTAssertTrue(pem.hasPrefix("-----BEGIN PRIVATE KEY-----"), "PKCS#8 expected")
        // Loading it again (a fresh parse, as a later `renew` does) gives the same key.
        let reloaded = try SoftwareKey(pem: pem)
        XCTAssertEqual(reloaded.subjectPublicKeyInfo, key.subjectPublicKeyInfo)
        // openssl agrees on the public half.
        let path = directory.appending("key.pem")
        try pem.write(toFile: path, atomically: false, encoding: .utf8)
        let spki = try openssl(["pkey", "-in", path, "-pubout", "-outform", "DER"])
        XCTAssertTrue(spki.status.isSuccess, spki.errorOutput)
        XCTAssertEqual(spki.standardOutput, key.subjectPublicKeyInfo)
    }

    func testSignatureVerifiesWithOpenSSL() throws {
        let key = try SoftwareKey(pem: try SoftwareKey.generate(KeySpec()).pemRepresentation())
        let message = Array("to be signed".utf8)
        let messagePath = directory.appending("message"), signaturePath = directory.appending("sig"), publicPath = directory.appending("pub.der")
        FileManager.default.createFile(atPath: messagePath, contents: Data(message))
        FileManager.default.createFile(atPath: publicPath, contents: Data(key.subjectPublicKeyInfo))
        let digest = try sha256(messagePath)
        FileManager.default.createFile(atPath: signaturePath, contents: Data(try key.sign(digest: digest, algorithm: .sha256)))
        let verified = try openssl(["dgst", "-sha256", "-verify", publicPath, "-keyform", "DER", "-signature", signaturePath, messagePath])
        XCTAssertTrue(verified.output.contains("Verified OK"), verified.output + verified.errorOutput)
        XCTAssertThrowsError(try key.sign(digest: Array(digest.dropLast()), algorithm: .sha256), "a digest of the wrong length must be refused")
    }

    func testDecryptsWhatOpenSSLEncryptsAndRefusesGarbage() throws {
        let key = try SoftwareKey.generate(KeySpec())
        let publicPath = directory.appending("pub.der"), plainPath = directory.appending("plain"), cipherPath = directory.appending("cipher")
        FileManager.default.createFile(atPath: publicPath, contents: Data(key.subjectPublicKeyInfo))
        let secret: [UInt8] = (0..<16).map { UInt8($0 * 7) }
        FileManager.default.createFile(atPath: plainPath, contents: Data(secret))
        let encrypted = try openssl(["pkeyutl", "-encrypt", "-pubin", "-keyform", "DER", "-inkey", publicPath,
                                     "-pkeyopt", "rsa_padding_mode:pkcs1", "-in", plainPath, "-out", cipherPath])
        XCTAssertTrue(encrypted.status.isSuccess, encrypted.errorOutput)
        let ciphertext = try XCTUnwrap(FileManager.default.contents(atPath: cipherPath))
        XCTAssertEqual(try key.decrypt(Array(ciphertext)), secret)
        XCTAssertThrowsError(try key.decrypt([UInt8](repeating: 1, count: 256)))
    }

    func testMalformedPEMIsAClearError() {
        XCTAssertThrowsError(try SoftwareKey(pem: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")) { error in
            XCTAssertEqual((error as? SoftwareKeyError)?.code, .parse)
        }
        XCTAssertThrowsError(try SoftwareKey.generate(KeySpec(rsaBits: 1024)))
    }

    /// Found by fuzzing (target textinputs): an encrypted key made OpenSSL prompt on the
    /// controlling terminal ("Enter PEM pass phrase:") and wait; it is now refused at once.
    func testAnEncryptedKeyIsRefusedWithoutAPrompt() throws {
        let path = directory.appending("key.pem")
        try SoftwareKey.generate(KeySpec(rsaBits: 2048)).pemRepresentation().write(toFile: path, atomically: false, encoding: .utf8)
        for (name, arguments) in [("PKCS#8", ["pkey", "-aes-128-cbc"]), ("traditional", ["rsa", "-traditional", "-aes128"])] {
            let encrypted = try openssl(arguments + ["-in", path, "-passout", "pass:secret"])
            XCTAssertTrue(encrypted.status.isSuccess, name)
            XCTAssertTrue(encrypted.output.contains("ENCRYPTED"), name)
            XCTAssertThrowsError(try SoftwareKey(pem: encrypted.output), name) { error in
                XCTAssertEqual((error as? SoftwareKeyError)?.code, .parse, name)
                XCTAssertTrue((error as? SoftwareKeyError)?.message.contains("encrypted (passphrase-protected)") ?? false, "\(name): \(error)")
            }
        }
    }

    private func sha256(_ path: String) throws -> [UInt8] {
        let out = try openssl(["dgst", "-sha256", "-binary", path])
        return out.standardOutput
    }
}
