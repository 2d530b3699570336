import XCTest

@testable import SCEPClient

/// GetCACaps parsing (RFC 8894 §3.5.2) and what we choose to send from it.
final class CACapabilitiesTests: XCTestCase {
    // MARK: Parsing

    func testRealScepserverAnswer() {
        let caps = CACapabilities(text: ScepServerCapture.getCACapsReply)
        XCTAssertEqual(caps.advertised, ["Renewal", "SHA-1", "SHA-256", "AES", "DES3", "SCEPStandard", "POSTPKIOperation"])
        for keyword: CACapabilities.Keyword in [.renewal, .sha1, .sha256, .aes, .des3, .scepStandard, .postPKIOperation] {
            XCTAssertTrue(caps.contains(keyword), "\(keyword)")
        }
        XCTAssertFalse(caps.contains(.sha512))
        XCTAssertFalse(caps.contains(.getNextCACert))
        XCTAssertTrue(caps.supportsPOST)
        XCTAssertTrue(caps.supportsRenewal)
    }

    func testKeywordsAreCaseInsensitive() {
        let caps = CACapabilities(text: "aes\nPostPkiOperation\nsha-256\nRENEWAL\nGetNextCACert")
        XCTAssertTrue(caps.contains(.aes))
        XCTAssertTrue(caps.supportsPOST)
        XCTAssertTrue(caps.contains(.sha256))
        XCTAssertTrue(caps.supportsRenewal)
        XCTAssertTrue(caps.contains(.getNextCACert))
        XCTAssertEqual(caps.advertised, ["aes", "PostPkiOperation", "sha-256", "RENEWAL", "GetNextCACert"], "kept as spelled, for display")
    }

    func testLFTerminatedLines() {
        let caps = CACapabilities(text: "AES\nSHA-256\n")
        XCTAssertEqual(caps.advertised, ["AES", "SHA-256"])
        XCTAssertTrue(caps.contains(.aes))
        XCTAssertTrue(caps.contains(.sha256))
    }

    /// NDES and other Windows-hosted servers answer with CRLF line ends.
    func testCRLFLines() {
        let caps = CACapabilities(text: "AES\r\nPOSTPKIOperation\r\nSHA-256\r\n")
        XCTAssertEqual(caps.advertised, ["AES", "POSTPKIOperation", "SHA-256"])
        XCTAssertTrue(caps.contains(.aes))
        XCTAssertTrue(caps.supportsPOST)
        XCTAssertTrue(caps.contains(.sha256))
    }

    func testBlankLinesAndSurroundingSpacesAreIgnored() {
        let caps = CACapabilities(text: "\n\n  AES  \n\n\tSHA-512\t\n \n")
        XCTAssertEqual(caps.advertised, ["AES", "SHA-512"])
        XCTAssertTrue(caps.contains(.aes))
        XCTAssertTrue(caps.contains(.sha512))
    }

    func testUnknownKeywordsAreIgnored() {
        let caps = CACapabilities(text: "Update\nSHA-384\nX-Vendor-Thing\nAES\nMD5")
        XCTAssertTrue(caps.contains(.aes))
        let known = CACapabilities.Keyword.allCases.filter { caps.contains($0) }
        XCTAssertEqual(known, [.aes])
        XCTAssertEqual(caps.advertised.count, 5, "unknown keywords are still shown")
    }

    func testEmptyAnswerMeansNoCapabilities() {
        for text in ["", "\n", "\r\n\r\n", "   "] {
            let caps = CACapabilities(text: text)
            XCTAssertTrue(caps.advertised.isEmpty, "\(text.debugDescription)")
            XCTAssertTrue(CACapabilities.Keyword.allCases.allSatisfy { !caps.contains($0) }, "\(text.debugDescription)")
            XCTAssertEqual(caps, .none)
        }
        XCTAssertFalse(CACapabilities.none.supportsPOST)
        XCTAssertFalse(CACapabilities.none.supportsRenewal)
    }

    /// Found by fuzzing (target textinputs): the keywords went into the refusal and into
    /// `ca-info` unescaped, so a server could put terminal escapes or a bidi override there,
    /// and a long answer made a message of megabytes.
    func testServerTextIsEscapedAndTheRefusalStaysShort() throws {
        let caps = CACapabilities(text: "POSTPKIOperation\r\nSHA-512\r\ng\u{0}S\r\n\u{1B}[31mred\u{202E}gnp.exe\n")
        XCTAssertEqual(caps.advertised, ["POSTPKIOperation", "SHA-512", "g\\u{0}S", "\\u{1b}[31mred\\u{202e}gnp.exe"])
        XCTAssertTrue(caps.contains(.sha512) && caps.supportsPOST, "known keywords still count")
        XCTAssertThrowsError(try caps.negotiate(preferredCipher: .aes128CBC, allowWeakAlgorithms: false)) { error in
            let message = (error as? SCEPError)?.message ?? ""
            XCTAssertTrue(message.contains("g\\u{0}S \\u{1b}[31mred\\u{202e}gnp.exe"), message)
            XCTAssertFalse(message.unicodeScalars.contains(where: ServerText.needsEscaping), message.debugDescription)
        }
        let long = CACapabilities(text: String(repeating: "SHA-1\n", count: 100_000))
        XCTAssertThrowsError(try long.negotiate(preferredCipher: .aes128CBC, allowWeakAlgorithms: false)) { error in
            XCTAssertLessThan((error as? SCEPError)?.message.count ?? .max, 600)
        }
    }

    func testSCEPStandardImpliesAESPOSTAndSHA256() {
        let caps = CACapabilities(text: "SCEPStandard")
        XCTAssertTrue(caps.contains(.aes))
        XCTAssertTrue(caps.supportsPOST)
        XCTAssertTrue(caps.contains(.sha256))
        XCTAssertFalse(caps.contains(.sha512))
        XCTAssertFalse(caps.contains(.des3))
        XCTAssertFalse(caps.supportsRenewal)
        XCTAssertEqual(caps.advertised, ["SCEPStandard"])
    }

    // MARK: Negotiation

    private func negotiate(_ text: String, preferred: ContentCipher = .aes128CBC, allowWeak: Bool = false) throws -> NegotiatedAlgorithms {
        try CACapabilities(text: text).negotiate(preferredCipher: preferred, allowWeakAlgorithms: allowWeak)
    }

    func testSHA256IsPreferred() throws {
        XCTAssertEqual(try negotiate("SHA-1\nSHA-256\nSHA-512\nAES").digest, .sha256)
        XCTAssertEqual(try negotiate("SHA-512\nSHA-256\nAES").digest, .sha256)
        XCTAssertEqual(try negotiate(ScepServerCapture.getCACapsReply),
                       NegotiatedAlgorithms(digest: .sha256, cipher: .aes128CBC, usePOST: true))
    }

    func testSHA512WhenItIsTheOnlyStrongDigest() throws {
        XCTAssertEqual(try negotiate("SHA-512\nAES").digest, .sha512)
        XCTAssertEqual(try negotiate("SHA-1\nSHA-512\nAES").digest, .sha512)
    }

    func testSHA1OnlyServerIsRefusedNamingTheMissingDigest() {
        XCTAssertThrowsError(try negotiate("SHA-1\nAES\nPOSTPKIOperation")) { error in
            guard let scep = error as? SCEPError else { return XCTFail("\(error)") }
            XCTAssertEqual(scep.code, .weakAlgorithmsRefused)
            XCTAssertTrue(scep.message.contains("SHA-256"), scep.message)
            XCTAssertTrue(scep.message.contains("allow_weak_algorithms"), scep.message)
            XCTAssertTrue(scep.message.contains("SHA-1 AES POSTPKIOperation"), "names what the server offered: \(scep.message)")
        }
    }

    func testDES3OnlyServerIsRefusedNamingTheMissingCipher() {
        XCTAssertThrowsError(try negotiate("SHA-256\nDES3")) { error in
            guard let scep = error as? SCEPError else { return XCTFail("\(error)") }
            XCTAssertEqual(scep.code, .weakAlgorithmsRefused)
            XCTAssertTrue(scep.message.contains("AES"), scep.message)
            XCTAssertTrue(scep.message.contains("3DES"), scep.message)
        }
    }

    func testServerWithoutCapabilitiesIsRefusedUnlessWeakAllowed() throws {
        XCTAssertThrowsError(try negotiate("")) { error in
            XCTAssertEqual((error as? SCEPError)?.code, .weakAlgorithmsRefused)
            XCTAssertTrue("\(error)".contains("nothing"), "\(error)")
        }
        XCTAssertEqual(try negotiate("", allowWeak: true), NegotiatedAlgorithms(digest: .sha1, cipher: .desEDE3CBC, usePOST: false))
    }

    func testWeakServerAcceptedWithAllowWeakAlgorithms() throws {
        XCTAssertEqual(try negotiate("SHA-1\nDES3\nPOSTPKIOperation", allowWeak: true),
                       NegotiatedAlgorithms(digest: .sha1, cipher: .desEDE3CBC, usePOST: true))
        // allowWeak does not downgrade a server that offers strong algorithms.
        XCTAssertEqual(try negotiate("SHA-1\nSHA-256\nDES3\nAES", allowWeak: true),
                       NegotiatedAlgorithms(digest: .sha256, cipher: .aes128CBC, usePOST: false))
    }

    func testAES256WhenPreferred() throws {
        XCTAssertEqual(try negotiate("AES\nSHA-256", preferred: .aes256CBC).cipher, .aes256CBC)
        XCTAssertEqual(try negotiate("AES\nSHA-256", preferred: .aes192CBC).cipher, .aes192CBC)
        XCTAssertEqual(try negotiate("SCEPStandard", preferred: .aes256CBC).cipher, .aes256CBC)
    }

    func testNeverSendsSingleDES() throws {
        let servers = ["AES\nSHA-256", "DES3\nSHA-1", "", "SHA-256\nDES3\nAES", "SCEPStandard"]
        for server in servers {
            for preferred in ContentCipher.allCases {
                for allowWeak in [false, true] {
                    guard let chosen = try? negotiate(server, preferred: preferred, allowWeak: allowWeak) else { continue }
                    XCTAssertNotEqual(chosen.cipher, .desCBC, "server \(server.debugDescription), preferred \(preferred), allowWeak \(allowWeak)")
                    if CACapabilities(text: server).contains(.aes) {
                        XCTAssertFalse(chosen.cipher.isWeak, "AES is offered, a weak preference must not win")
                    }
                }
            }
        }
        XCTAssertEqual(try negotiate("AES\nSHA-256", preferred: .desCBC, allowWeak: true).cipher, .aes128CBC)
        XCTAssertEqual(try negotiate("AES\nSHA-256", preferred: .desEDE3CBC).cipher, .aes128CBC)
    }

    func testPOSTOnlyWhenAdvertised() throws {
        XCTAssertFalse(try negotiate("AES\nSHA-256").usePOST)
        XCTAssertTrue(try negotiate("AES\nSHA-256\nPOSTPKIOperation").usePOST)
    }
}
