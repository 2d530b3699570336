import XCTest
import Foundation
import SwiftASN1
import X509
import TPMKeys
import TestSupport
@testable import SCEPClient
@testable import SCEPTestSupport

/// Issue 8 end to end over HTTP against `TestSCEPServer`: who is trusted as RA, what
/// the issued certificate must be, the ciphers and texts a server may send.
final class ReplyTrustTests: XCTestCase {

    // MARK: - RA trust

    /// A machine in the middle lists an ordinary enrolled host's certificate (same CA,
    /// digitalSignature + keyEncipherment, EKU clientAuth) first, as the RA, and decrypts
    /// with its key. The request (and its challenge) must never be sent.
    func testAnotherHostsCertificatePosingAsTheRAGetsNothing() async throws {
        let host = try TestPKI.enrolledHost()
        let server = try TestSCEPServer(ca: try TestPKI.ca(), configuration: .init(raCertificates: [host]))
        defer { server.stop() }
        let client = try Client(server: server)
        do {
            _ = try await client.enroll(key: try SoftwareKey.generate(KeySpec()))
            XCTFail("the request was sent to an untrusted RA")
        } catch let error as SCEPError {
            XCTAssertEqual(error.code, .untrustedCertificate, error.message)
            let fingerprint = PinnedCA.fingerprint(of: host.certificate)
            XCTAssertTrue(error.message.contains("host17.example.com"), error.message)
            XCTAssertTrue(error.message.contains(fingerprint), error.message)
            XCTAssertTrue(error.message.contains("ra_pin_sha256 = [\"\(fingerprint)\"]"), error.message)
            XCTAssertTrue(error.message.contains("not sent"), error.message)
        }
        XCTAssertEqual(server.pkiOperations.count, 0, "nothing may reach the fake RA")
        XCTAssertEqual(server.operations, ["GetCACaps", "GetCACert"])
    }

    /// The same certificate, pinned by the administrator with ra_pin_sha256, is used.
    func testAnRAWithoutAPurposeIsUsedOncePinned() async throws {
        let ca = try TestPKI.ca()
        let host = try TestPKI.enrolledHost()
        let server = try TestSCEPServer(ca: ca, configuration: .init(raCertificates: [host]))
        defer { server.stop() }
        let pin = try PinnedCA(pinnedCertificates: [ca.certificate], fingerprints: [],
                               raFingerprints: [PinnedCA.fingerprint(of: host.certificate).uppercased()])
        _ = try await Client(server: server, pin: pin).enroll(key: try SoftwareKey.generate(KeySpec())).issuedCertificate()
        XCTAssertTrue(try XCTUnwrap(server.pkiOperations.first).recipient.matches(host.certificate))
    }

    /// With a real RA present, an extra host certificate listed first is ignored (with a
    /// warning), the envelope goes to the real RA, and a PENDING or FAILURE signed by the
    /// host certificate is refused instead of believed.
    func testRepliesSignedByAnotherHostsCertificateChangeNothing() async throws {
        let host = try TestPKI.enrolledHost()
        let realRA = try TestPKI.combinedRA()
        for planned in [PlannedReply.pending, .failure(.badRequest, text: "forged refusal")] {
            let server = try TestSCEPServer(ca: try TestPKI.ca(), configuration: .init(
                raCertificates: [realRA], replySignerOverride: host, advertisedFirst: [host]), plan: [.certRep(planned)])
            defer { server.stop() }
            let events = EventLog()
            let client = try Client(server: server, events: events)
            do {
                let outcome = try await client.enroll(key: try SoftwareKey.generate(KeySpec()))
                XCTFail("a reply signed by another host was believed: \(outcome)")
            } catch let error as SCEPError {
                XCTAssertEqual(error.code, .untrustedCertificate, error.message)
                XCTAssertTrue(error.message.contains("host17.example.com"), error.message)
            }
            let request = try XCTUnwrap(server.pkiOperations.first)
            XCTAssertTrue(request.recipient.matches(realRA.certificate), "the envelope went to \(request.recipient)")
            XCTAssertTrue(events.events.contains { event in
                if case .ignoredCertificate(let subject, _, let reason) = event {
                    return subject.contains("host17.example.com") && reason.contains("NOT trusted")
                }
                return false
            }, "\(events.events)")
        }
    }

    func testNDESSplitRAsWithTheRequestAgentPurposeKeepWorking() async throws {
        let encryptionRA = try TestPKI.encryptionRA()
        let signingRA = try TestPKI.signingRA()
        XCTAssertEqual(CACertificates.raPurpose(of: encryptionRA.certificate), .certificateRequestAgent)
        let server = try TestSCEPServer(ca: try TestPKI.ca(), configuration: .init(raCertificates: [signingRA, encryptionRA]))
        defer { server.stop() }
        _ = try await Client(server: server).enroll(key: try SoftwareKey.generate(KeySpec())).issuedCertificate()
        XCTAssertTrue(try XCTUnwrap(server.pkiOperations.first).recipient.matches(encryptionRA.certificate))
    }

    // MARK: - The issued certificate

    func testAnIssuedCACertificateIsRefused() async throws {
        try await assertIssuedRefused(.issuedAsCA, mentioning: "is a CA certificate")
    }

    func testAnAlreadyExpiredCertificateIsRefused() async throws {
        try await assertIssuedRefused(.issuedExpired, mentioning: "expired at")
    }

    /// Tolerance applies to notBefore only: a certificate valid for two more minutes is
    /// accepted (it was refused as "expired" when validation ran at now + 300 s).
    func testACertificateExpiringWithinTheSkewToleranceIsAccepted() async throws {
        let server = try TestSCEPServer(ca: try TestPKI.ca(), plan: [.certRep(.faulty(.issuedExpiringSoon))])
        defer { server.stop() }
        let issued = try await Client(server: server).enroll(key: try SoftwareKey.generate(KeySpec())).issuedCertificate()
        XCTAssertLessThan(issued.certificate.notValidAfter, Date().addingTimeInterval(300))
    }

    /// chain.pem comes from the validated path, not from GetCACert's order or extras.
    func testTheChainIsTheValidatedPath() async throws {
        let ca = try TestPKI.ca()
        let server = try TestSCEPServer(ca: ca, configuration: .init(
            raCertificates: [try TestPKI.combinedRA()], advertisedFirst: [try TestPKI.enrolledHost()]))
        defer { server.stop() }
        let issued = try await Client(server: server).enroll(key: try SoftwareKey.generate(KeySpec())).issuedCertificate()
        XCTAssertEqual(issued.chain, [ca.certificate])
    }

    func testWhatTheCADidNotGrantIsReportedByName() async throws {
        let server = try TestSCEPServer(ca: try TestPKI.ca(), plan: [.certRep(.faulty(.grantsDifferently))])
        defer { server.stop() }
        let events = EventLog()
        var spec = Client.defaultSpec
        spec.userPrincipalNames = ["host01@example.com"]
        _ = try await Client(server: server, events: events).enroll(key: try SoftwareKey.generate(KeySpec()), spec: spec).issuedCertificate()
        let differences = events.events.compactMap { event -> String? in
            if case .issuedDiffers(let text) = event { return text }
            return nil
        }
        XCTAssertTrue(differences.contains { $0.contains("added the extended key usage serverAuth") }, "\(differences)")
        XCTAssertTrue(differences.contains { $0.contains("left out the subject alternative name UPN:host01@example.com") }, "\(differences)")
        XCTAssertTrue(differences.contains { $0.contains("DNS:device-0001.example.com") }, "\(differences)")
    }

    private func assertIssuedRefused(_ fault: CertRepFault, mentioning words: String, file: StaticString = #filePath, line: UInt = #line) async throws {
        let server = try TestSCEPServer(ca: try TestPKI.ca(), plan: [.certRep(.faulty(fault))])
        defer { server.stop() }
        do {
            let outcome = try await Client(server: server).enroll(key: try SoftwareKey.generate(KeySpec()))
            XCTFail("accepted: \(outcome)", file: file, line: line)
        } catch let error as SCEPError {
            XCTAssertEqual(error.code, .wrongCertificate, error.message, file: file, line: line)
            XCTAssertTrue(error.message.contains(words), error.message, file: file, line: line)
            XCTAssertTrue(error.message.contains("nothing was installed"), error.message, file: file, line: line)
            XCTAssertFalse(error.message.contains("\n"), "one line: \(error.message)", file: file, line: line)
        }
    }

    // MARK: - Ciphers

    func testAESGCMRepliesAreDecryptedInEnvelopedAndAuthEnvelopedData() async throws {
        for cipher in AuthenticatedCipher.allCases {
            for authEnveloped in [false, true] {
                var reply = PlannedReply.success
                reply.gcm = cipher
                reply.authEnveloped = authEnveloped
                let server = try TestSCEPServer(ca: try TestPKI.ca(), plan: [.certRep(reply)])
                defer { server.stop() }
                let key = try SoftwareKey.generate(KeySpec())
                let issued = try await Client(server: server).enroll(key: key).issuedCertificate()
                XCTAssertEqual(issued.certificate.publicKey, try Certificate.PublicKey(derEncoded: key.subjectPublicKeyInfo),
                               "\(cipher) authEnveloped=\(authEnveloped)")
            }
        }
    }

    func testAnAESGCMReplyWithABrokenTagIsRefused() async throws {
        for authEnveloped in [false, true] {
            var reply = PlannedReply.faulty(.brokenGCMTag)
            reply.gcm = .aes128GCM
            reply.authEnveloped = authEnveloped
            let server = try TestSCEPServer(ca: try TestPKI.ca(), plan: [.certRep(reply)])
            defer { server.stop() }
            do {
                _ = try await Client(server: server).enroll(key: try SoftwareKey.generate(KeySpec()))
                XCTFail("a tampered GCM reply was accepted")
            } catch let error as SCEPError {
                XCTAssertEqual(error.code, .decryptionFailed, error.message)
                XCTAssertTrue(error.message.contains("authentication tag"), error.message)
            }
        }
    }

    // MARK: - Server text

    func testFailInfoTextIsShownWhateverStringTypeCarriesIt() async throws {
        for type in [PlannedReply.TextType.utf8, .printable, .ia5, .bmp] {
            var reply = PlannedReply.failure(.badRequest, text: "wrong password provided")
            reply.failInfoTextType = type
            let server = try TestSCEPServer(ca: try TestPKI.ca(), plan: [.certRep(reply)])
            defer { server.stop() }
            let outcome = try await Client(server: server).enroll(key: try SoftwareKey.generate(KeySpec()))
            guard case .rejected(let failInfo, let text) = outcome else { return XCTFail("\(type): \(outcome)") }
            XCTAssertEqual(failInfo, .badRequest)
            XCTAssertEqual(text, "wrong password provided", "\(type)")
        }
    }

    func testControlCharactersInFailInfoTextCannotForgeALine() async throws {
        let reply = PlannedReply.failure(.badRequest, text: "denied\ninfo: certificate installed\r\u{1b}[2J")
        let server = try TestSCEPServer(ca: try TestPKI.ca(), plan: [.certRep(reply)])
        defer { server.stop() }
        let outcome = try await Client(server: server).enroll(key: try SoftwareKey.generate(KeySpec()))
        guard case .rejected(let failInfo, let text) = outcome else { return XCTFail("\(outcome)") }
        let message = EnrollmentOutcome.rejectionMessage(failInfo, text)
        XCTAssertFalse(message.contains("\n") || message.contains("\r") || message.contains("\u{1b}"), message)
        XCTAssertTrue(message.contains("denied\\ninfo: certificate installed\\r\\u{1b}[2J"), message)
    }

    func testAnHTTPErrorBodyIsShownEscapedAndShort() async throws {
        let body = "oops\nerror: forged line\u{1b}[31m" + String(repeating: "x", count: 500)
        let server = try TestSCEPServer(ca: try TestPKI.ca(), plan: [.http(.text(body, status: 500))])
        defer { server.stop() }
        do {
            _ = try await Client(server: server).enroll(key: try SoftwareKey.generate(KeySpec()))
            XCTFail("HTTP 500 was accepted")
        } catch let error as SCEPError {
            XCTAssertEqual(error.code, .httpStatus, error.message)
            XCTAssertTrue(error.message.contains("oops\\nerror: forged line\\u{1b}[31m"), error.message)
            XCTAssertFalse(error.message.contains("\n"), error.message)
            XCTAssertLessThan(error.message.count, 400, error.message)
        }
    }
}
