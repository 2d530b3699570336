import XCTest
import Foundation
import SwiftASN1
import X509
import TPMKeys
import TestSupport
@testable import SCEPClient
@testable import SCEPTestSupport

/// The SCEP exchange end to end over real HTTP (libcurl → 127.0.0.1) against
/// `TestSCEPServer`: what the real scepserver cannot show — RAs, PENDING,
/// every failInfo, BER, weak algorithms, GET-only servers, and replies that
/// are wrong on purpose and must be refused.
final class EnrollmentProtocolTests: XCTestCase {

    // MARK: - Issuance

    func testCAOnlyServerIssuesCertificateWithRequestedSubjectSANsAndPolicies() async throws {
        let ca = try TestPKI.ca()
        let server = try TestSCEPServer(ca: ca, configuration: .init(challenge: "s3cret-Challenge"))
        defer { server.stop() }
        var spec = try CertificateRequestSpec(attributes: [("2.5.4.6", "DE"), ("2.5.4.10", "Example Corp"), ("2.5.4.3", "host01.example.com")])
        spec.dnsNames = ["host01.example.com", "host01"]
        spec.emailAddresses = ["it@example.com"]
        spec.userPrincipalNames = ["host01@example.com"]
        spec.uris = ["urn:uuid:3f1d2c4e-0000-4000-8000-000000000001"]
        spec.certificatePolicies = [[1, 3, 6, 1, 4, 1, 55555, 1, 2]]
        let key = try SoftwareKey.generate(KeySpec())

        let client = try Client(server: server)
        let issued = try await client.enroll(key: key, spec: spec, challenge: "s3cret-Challenge").issuedCertificate()

        let certificate = issued.certificate
        XCTAssertEqual(certificate.publicKey, try Certificate.PublicKey(derEncoded: key.subjectPublicKeyInfo))
        XCTAssertEqual(certificate.subject, spec.subject)
        XCTAssertEqual(certificate.issuer, ca.subject)
        XCTAssertEqual(issued.chain, [ca.certificate])
        let names = try XCTUnwrap(try certificate.extensions.subjectAlternativeNames)
        XCTAssertTrue(names.contains(.dnsName("host01.example.com")))
        XCTAssertTrue(names.contains(.dnsName("host01")))
        XCTAssertTrue(names.contains(.rfc822Name("it@example.com")))
        XCTAssertTrue(names.contains(.uniformResourceIdentifier("urn:uuid:3f1d2c4e-0000-4000-8000-000000000001")))
        let upns = names.compactMap { name -> String? in
            guard case .otherName(let other) = name, other.typeID == [1, 3, 6, 1, 4, 1, 311, 20, 2, 3],
                  let value = other.value, let utf8 = try? ASN1UTF8String(asn1Any: value) else { return nil }
            return String(utf8)
        }
        XCTAssertEqual(upns, ["host01@example.com"])
        let usages = try XCTUnwrap(try certificate.extensions.extendedKeyUsage)
        XCTAssertTrue(usages.contains(.clientAuth))
        XCTAssertEqual(try Self.policyOIDs(of: certificate), [try ASN1ObjectIdentifier(dotRepresentation: "1.3.6.1.4.1.55555.1.2")])
        XCTAssertFalse(issued.certificatePEM.isEmpty)

        XCTAssertEqual(server.decodeFailures, [])
        let request = try XCTUnwrap(server.pkiOperations.first)
        XCTAssertEqual(server.pkiOperations.count, 1)
        XCTAssertEqual(request.messageType, .pkcsReq)
        XCTAssertEqual(request.httpMethod, "POST")
        XCTAssertEqual(request.cipher, .aes128CBC)
        XCTAssertEqual(request.digest, .sha256)
        XCTAssertTrue(request.recipient.matches(ca.certificate), "the envelope must be addressed to the CA when there is no RA")
        XCTAssertEqual(request.challenge, "s3cret-Challenge")
        XCTAssertEqual(request.challengeEncoding, .printableString)
        XCTAssertEqual(request.csr?.publicKey, certificate.publicKey)
        XCTAssertEqual(request.csr?.subject, certificate.subject)
        XCTAssertEqual(request.signerCertificate.publicKey, certificate.publicKey, "a PKCSReq is signed by the new key's self-signed certificate")
        XCTAssertEqual(request.transactionID, try SCEPEnrollment.transactionID(for: key))
        XCTAssertEqual(server.operations, ["GetCACaps", "GetCACert", "PKIOperation"])
    }

    func testNonASCIIChallengeTravelsAsUTF8String() async throws {
        let challenge = "Pässwörter-✓-42"
        let server = try TestSCEPServer(ca: try TestPKI.ca(), configuration: .init(challenge: challenge))
        defer { server.stop() }
        let client = try Client(server: server)
        _ = try await client.enroll(key: try SoftwareKey.generate(KeySpec()), challenge: challenge).issuedCertificate()
        XCTAssertEqual(server.pkiOperations.first?.challenge, challenge)
        XCTAssertEqual(server.pkiOperations.first?.challengeEncoding, .utf8String)
    }

    func testWrongChallengeIsRejectedWithBadRequest() async throws {
        let server = try TestSCEPServer(ca: try TestPKI.ca(), configuration: .init(challenge: "right"))
        defer { server.stop() }
        let client = try Client(server: server)
        let outcome = try await client.enroll(key: try SoftwareKey.generate(KeySpec()), challenge: "wrong")
        guard case .rejected(let failInfo, let text) = outcome else { return XCTFail("expected FAILURE, got \(outcome)") }
        XCTAssertEqual(failInfo, .badRequest)
        XCTAssertEqual(text, "wrong or missing challenge")
    }

    func testRenewalIsSignedWithTheCurrentCertificateAndTheReplyEncryptedToIt() async throws {
        let server = try TestSCEPServer(ca: try TestPKI.ca())
        defer { server.stop() }
        let client = try Client(server: server)
        let oldKey = try SoftwareKey.generate(KeySpec())
        let current = try await client.enroll(key: oldKey).issuedCertificate()

        let newKey = try SoftwareKey.generate(KeySpec())
        let profile = try await client.enrollment.discover()
        let prepared = try await client.enrollment.prepare(server: profile, newKey: newKey, spec: Client.defaultSpec, challenge: nil,
                                                          renewWith: (certificate: current.certificate, key: oldKey))
        let outcome = try await client.enrollment.submit(prepared, server: profile, replyKey: oldKey, newKey: newKey)
        let renewed = try outcome.issuedCertificate()
        XCTAssertEqual(renewed.certificate.publicKey, try Certificate.PublicKey(derEncoded: newKey.subjectPublicKeyInfo))

        let request = try XCTUnwrap(server.pkiOperations.last)
        XCTAssertEqual(request.messageType, .renewalReq)
        XCTAssertEqual(request.signerCertificate, current.certificate)
        XCTAssertNil(request.challenge)
        XCTAssertEqual(request.csr?.publicKey, renewed.certificate.publicKey)
        XCTAssertEqual(request.transactionID, try SCEPEnrollment.transactionID(for: newKey))
    }

    // MARK: - Registration authorities

    func testSeparateRAReceivesTheEnvelopeAndSignsTheReply() async throws {
        let ca = try TestPKI.ca()
        let ra = try TestPKI.combinedRA()
        let server = try TestSCEPServer(ca: ca, configuration: .init(raCertificates: [ra]))
        defer { server.stop() }
        let client = try Client(server: server)
        let key = try SoftwareKey.generate(KeySpec())
        let (outcome, profile, _) = try await client.enrollReturningProfile(key: key)
        let issued = try outcome.issuedCertificate()

        XCTAssertEqual(profile.certificates.issuingCA, ca.certificate)
        XCTAssertEqual(profile.certificates.encryptionRecipient, ra.certificate)
        XCTAssertTrue(profile.certificates.replySigners.contains(ra.certificate))
        XCTAssertTrue(try XCTUnwrap(server.pkiOperations.first).recipient.matches(ra.certificate), "the envelope must be addressed to the RA")
        XCTAssertEqual(server.signingIdentity.certificate, ra.certificate, "the reply was signed by the RA")
        XCTAssertEqual(issued.certificate.issuer, ca.subject)
        XCTAssertEqual(issued.chain, [ca.certificate])
        XCTAssertEqual(server.decodeFailures, [])
    }

    func testNDESStyleSplitRAs() async throws {
        let ca = try TestPKI.ca()
        let encryptionRA = try TestPKI.encryptionRA()
        let signingRA = try TestPKI.signingRA()
        let server = try TestSCEPServer(ca: ca, configuration: .init(raCertificates: [signingRA, encryptionRA]))
        defer { server.stop() }
        let client = try Client(server: server)
        let (outcome, profile, _) = try await client.enrollReturningProfile(key: try SoftwareKey.generate(KeySpec()))
        _ = try outcome.issuedCertificate()

        XCTAssertEqual(profile.certificates.encryptionRecipient, encryptionRA.certificate)
        XCTAssertTrue(profile.certificates.replySigners.contains(signingRA.certificate))
        XCTAssertFalse(profile.certificates.replySigners.contains(encryptionRA.certificate),
                       "an RA without digitalSignature must not be accepted as a reply signer")
        XCTAssertTrue(try XCTUnwrap(server.pkiOperations.first).recipient.matches(encryptionRA.certificate))
        XCTAssertEqual(server.decryptionIdentity.certificate, encryptionRA.certificate)
        XCTAssertEqual(server.signingIdentity.certificate, signingRA.certificate)
    }

    func testReplySignedByTheEncryptionOnlyRAIsRefused() async throws {
        let encryptionRA = try TestPKI.encryptionRA()
        let server = try TestSCEPServer(ca: try TestPKI.ca(), configuration: .init(
            raCertificates: [try TestPKI.signingRA(), encryptionRA], replySignerOverride: encryptionRA))
        defer { server.stop() }
        let client = try Client(server: server)
        await assertThrowsSCEPError(.untrustedCertificate, mentioning: "nothing was installed") {
            _ = try await client.enroll(key: try SoftwareKey.generate(KeySpec()))
        }
        XCTAssertEqual(server.pkiOperations.count, 1)
    }

    func testReplySignedByTheCAItselfIsAcceptedWhenThereIsAnRA() async throws {
        let ca = try TestPKI.ca()
        let server = try TestSCEPServer(ca: ca, configuration: .init(raCertificates: [try TestPKI.combinedRA()], replySignerOverride: ca.identity))
        defer { server.stop() }
        _ = try await Client(server: server).enroll(key: try SoftwareKey.generate(KeySpec())).issuedCertificate()
    }

    // MARK: - PENDING and CertPoll

    func testPendingTwiceThenSuccessOnCertPoll() async throws {
        let ca = try TestPKI.ca()
        let server = try TestSCEPServer(ca: ca, plan: [.certRep(.pending), .certRep(.pending), .certRep(.success)])
        defer { server.stop() }
        let client = try Client(server: server)
        let key = try SoftwareKey.generate(KeySpec())
        let spec = Client.defaultSpec
        let profile = try await client.enrollment.discover()
        let prepared = try await client.enrollment.prepare(server: profile, newKey: key, spec: spec, challenge: "pw")

        let first = try await client.enrollment.submit(prepared, server: profile, replyKey: key, newKey: key)
        guard case .pending = first else { return XCTFail("expected PENDING, got \(first)") }
        let second = try await client.enrollment.poll(prepared.transaction, server: profile, signerKey: key, newKey: key)
        guard case .pending = second else { return XCTFail("expected PENDING, got \(second)") }
        let third = try await client.enrollment.poll(prepared.transaction, server: profile, signerKey: key, newKey: key)
        let issued = try third.issuedCertificate()
        XCTAssertEqual(issued.certificate.publicKey, try Certificate.PublicKey(derEncoded: key.subjectPublicKeyInfo))

        let operations = server.pkiOperations
        XCTAssertEqual(operations.map(\.messageType), [.pkcsReq, .certPoll, .certPoll])
        XCTAssertEqual(Set(operations.map(\.transactionID)), [prepared.transaction.transactionID])
        XCTAssertEqual(Set(operations.map(\.senderNonce)).count, 3, "every message needs a fresh senderNonce")
        XCTAssertTrue(operations.allSatisfy { $0.senderNonce.count >= 16 })
        for poll in operations.dropFirst() {
            let issuerAndSubject = try XCTUnwrap(poll.issuerAndSubject, "CertPoll content must be IssuerAndSubject")
            XCTAssertEqual(try CACertificates.bytes(of: issuerAndSubject.issuer), try SCEPEnrollment.der(ca.subject))
            XCTAssertEqual(try CACertificates.bytes(of: issuerAndSubject.subject), try SCEPEnrollment.der(spec.subject))
            XCTAssertNil(poll.csr)
            XCTAssertEqual(poll.signerCertificate, operations[0].signerCertificate, "CertPoll is signed like the original request")
        }
        XCTAssertEqual(server.decodeFailures, [])
    }

    // MARK: - Encodings and algorithms in replies

    func testBEREncodedReplyIsAccepted() async throws {
        var reply = PlannedReply.success
        reply.encoding = .ber
        let server = try TestSCEPServer(ca: try TestPKI.ca(), plan: [.certRep(reply)])
        defer { server.stop() }
        let client = try Client(server: server)
        let key = try SoftwareKey.generate(KeySpec())
        let issued = try await client.enroll(key: key).issuedCertificate()
        XCTAssertEqual(issued.certificate.publicKey, try Certificate.PublicKey(derEncoded: key.subjectPublicKeyInfo))
        // The reply really was BER.
        let body = try XCTUnwrap(server.sentCertReps.first)
        XCTAssertEqual(Array(body.prefix(2)), [0x30, 0x80])
        XCTAssertThrowsError(try DER.parse(body))
    }

    func testBERConverterProducesIndefiniteLengthsAndChunkedOctetStrings() throws {
        let ca = try TestPKI.ca()
        let der = try CMSBuilder.envelope(Array(repeating: 0x41, count: 500), to: ca.certificate, cipher: .aes128CBC)
        let ber = try BERConverter.convert(der, keepingDER: [])
        XCTAssertNotEqual(ber, der)
        XCTAssertEqual(Array(ber.prefix(2)), [0x30, 0x80], "outer SEQUENCE with indefinite length")
        XCTAssertThrowsError(try DER.parse(ber), "BER with indefinite lengths must not pass as DER")
        // The client's BER parsing sees the same structure.
        let fromBER = try EnvelopedData(berEncoded: CACertificates.bytes(of: ContentInfo(berEncoded: ber).content))
        let fromDER = try EnvelopedData(derEncoded: CACertificates.bytes(of: ContentInfo(derEncoded: der).content))
        XCTAssertEqual(fromBER.encryptedContentInfo.encryptedContent?.bytes, fromDER.encryptedContentInfo.encryptedContent?.bytes)
        XCTAssertEqual(fromBER.recipientInfos, fromDER.recipientInfos)
    }

    func testScepserverStyleDESAndSHA1ReplyIsAcceptedWithWarnings() async throws {
        for cipher in [ContentCipher.desCBC, .desEDE3CBC] {
            var reply = PlannedReply.scepserverStyle
            reply.cipher = cipher
            let server = try TestSCEPServer(ca: try TestPKI.ca(), plan: [.certRep(reply)])
            defer { server.stop() }
            let events = EventLog()
            let client = try Client(server: server, events: events)
            _ = try await client.enroll(key: try SoftwareKey.generate(KeySpec())).issuedCertificate()

            let warnings = events.events.compactMap { event -> String? in
                if case .weakReplyAlgorithm(let text) = event { return text }
                return nil
            }
            XCTAssertTrue(warnings.contains { $0.contains("SHA-1") }, "SHA-1 signature not reported: \(warnings)")
            XCTAssertTrue(warnings.contains { $0.contains(cipher.rawValue) }, "\(cipher.rawValue) not reported: \(warnings)")
            // What we send stays strong.
            XCTAssertEqual(server.pkiOperations.first?.cipher, .aes128CBC)
            XCTAssertEqual(server.pkiOperations.first?.digest, .sha256)
        }
    }

    // MARK: - GET-only servers

    func testGETOnlyServerGetsPercentEncodedMessage() async throws {
        let server = try TestSCEPServer(
            ca: try TestPKI.ca(),
            configuration: .init(capabilities: "SHA-256\nAES\n", acceptsPOST: false))
        defer { server.stop() }
        // The server really refuses POST.
        let post = try await CurlTransport().perform(HTTPRequest(method: .post, url: server.url + "?operation=PKIOperation",
                                                                 headers: ["Content-Type": "application/x-pki-message"], body: [0x30, 0x00]))
        XCTAssertEqual(post.status, 405)

        let client = try Client(server: server)
        let key = try SoftwareKey.generate(KeySpec())
        _ = try await client.enroll(key: key).issuedCertificate()

        XCTAssertEqual(server.decodeFailures, [])
        let request = try XCTUnwrap(server.pkiOperations.first)
        XCTAssertEqual(request.httpMethod, "GET")
        let raw = try XCTUnwrap(request.rawMessageParameter)
        let allowed = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~%")
        XCTAssertTrue(raw.unicodeScalars.allSatisfy(allowed.contains), "base64 + / = must be percent-encoded")
        XCTAssertTrue(raw.contains("%"), "a 2 KB base64 message has + or / or =: they must appear as %XX")
        XCTAssertEqual(server.httpRequests.filter { $0.query("operation") == "PKIOperation" }.map(\.method), ["POST", "GET"],
                       "only our own probe POSTs; the client uses GET")
    }

    // MARK: - FAILURE

    func testEveryFailInfoIsReportedAsRejection() async throws {
        let plan = FailInfo.allCases.map { PlannedAnswer.certRep(.failure($0, text: "policy says no to \($0.name)")) }
        let server = try TestSCEPServer(ca: try TestPKI.ca(), plan: plan)
        defer { server.stop() }
        let client = try Client(server: server)
        let key = try SoftwareKey.generate(KeySpec())
        let profile = try await client.enrollment.discover()
        for failInfo in FailInfo.allCases {
            let prepared = try await client.enrollment.prepare(server: profile, newKey: key, spec: Client.defaultSpec, challenge: "pw")
            let outcome = try await client.enrollment.submit(prepared, server: profile, replyKey: key, newKey: key)
            guard case .rejected(let reported, let text) = outcome else {
                XCTFail("\(failInfo.name): expected FAILURE, got \(outcome)")
                continue
            }
            XCTAssertEqual(reported, failInfo)
            XCTAssertEqual(text, "policy says no to \(failInfo.name)")
            let message = EnrollmentOutcome.rejectionMessage(reported, text)
            XCTAssertTrue(message.contains(failInfo.name), message)
            XCTAssertTrue(message.contains("policy says no to \(failInfo.name)"), message)
        }
        XCTAssertEqual(server.pkiOperations.count, FailInfo.allCases.count)
    }

    func testFailureWithoutFailInfoTextStillNamesTheFailInfo() async throws {
        let server = try TestSCEPServer(ca: try TestPKI.ca(), plan: [.certRep(.failure(.badTime, text: nil))])
        defer { server.stop() }
        let outcome = try await Client(server: server).enroll(key: try SoftwareKey.generate(KeySpec()))
        guard case .rejected(let failInfo, let text) = outcome else { return XCTFail("expected FAILURE, got \(outcome)") }
        XCTAssertEqual(failInfo, .badTime)
        XCTAssertNil(text)
        XCTAssertTrue(EnrollmentOutcome.rejectionMessage(failInfo, text).contains("badTime"))
    }

    // MARK: - Replies that must be refused

    func testForgedAndMismatchedRepliesAreRefused() async throws {
        let expectations: [(CertRepFault, SCEPError.Code)] = [
            (.signedByRogueCA, .untrustedCertificate),
            (.brokenSignature, .badSignature),
            (.wrongRecipientNonce, .replyMismatch),
            (.wrongTransactionID, .replyMismatch),
            (.certificateForAnotherKey, .wrongCertificate),
            (.issuedByRogueCA, .wrongCertificate),
            (.messageDigestMismatch, .badSignature),
            (.issuedAsCA, .wrongCertificate),
            (.issuedExpired, .wrongCertificate),
        ]
        // Faults that are accepted (with a warning) or need a GCM reply: ReplyTrustTests.
        let elsewhere: Set<CertRepFault> = [.issuedExpiringSoon, .grantsDifferently, .brokenGCMTag, .unsupportedCipher]
        XCTAssertEqual(Set(expectations.map(\.0)), Set(CertRepFault.allCases).subtracting(elsewhere), "every fault is covered")
        let server = try TestSCEPServer(ca: try TestPKI.ca(), plan: expectations.map { .certRep(.faulty($0.0)) })
        defer { server.stop() }
        let client = try Client(server: server)
        let key = try SoftwareKey.generate(KeySpec())
        let profile = try await client.enrollment.discover()
        for (fault, code) in expectations {
            let prepared = try await client.enrollment.prepare(server: profile, newKey: key, spec: Client.defaultSpec, challenge: "pw")
            do {
                let outcome = try await client.enrollment.submit(prepared, server: profile, replyKey: key, newKey: key)
                XCTFail("\(fault): a faulty reply was accepted: \(outcome)")
            } catch let error as SCEPError {
                XCTAssertEqual(error.code, code, "\(fault): \(error.message)")
                XCTAssertTrue(error.message.contains("nothing was installed"), "\(fault): \(error.message)")
            }
        }
        XCTAssertEqual(server.decodeFailures, [])
        XCTAssertEqual(server.pkiOperations.count, expectations.count)
    }

    func testServerWithUnpinnedCAIsRefusedAtDiscoveryWithFingerprintPin() async throws {
        let server = try TestSCEPServer(ca: try TestPKI.rogue())
        defer { server.stop() }
        let pin = try PinnedCA(pinnedCertificates: [], fingerprints: [PinnedCA.fingerprint(of: try TestPKI.ca().certificate)])
        let client = try Client(server: server, pin: pin)
        await assertThrowsSCEPError(.untrustedCertificate, mentioning: "pinned CA") { _ = try await client.enrollment.discover() }
        XCTAssertFalse(server.operations.contains("PKIOperation"))
    }

    /// With a pin *file*, the pinned certificate is an anchor whether or not the
    /// server sent anything that chains to it; discovery must still refuse a
    /// server whose certificates are all unrelated to the pin.
    func testServerWithUnpinnedCAIsRefusedAtDiscoveryWithPinFile() async throws {
        let server = try TestSCEPServer(ca: try TestPKI.rogue())
        defer { server.stop() }
        let client = try Client(server: server, pin: try TestPKI.ca().pin())
        await assertThrowsSCEPError(.untrustedCertificate, mentioning: "pinned CA") { _ = try await client.enrollment.discover() }
        XCTAssertFalse(server.operations.contains("PKIOperation"))
    }

    // MARK: - Weak algorithms

    func testServerOfferingOnlyDES3AndSHA1IsRefusedBeforeAnyPKIOperation() async throws {
        let server = try TestSCEPServer(ca: try TestPKI.ca(), configuration: .init(capabilities: "DES3\nSHA-1\nPOSTPKIOperation\n"))
        defer { server.stop() }
        let client = try Client(server: server)
        await assertThrowsSCEPError(.weakAlgorithmsRefused, mentioning: "allow_weak_algorithms") {
            _ = try await client.enroll(key: try SoftwareKey.generate(KeySpec()))
        }
        XCTAssertFalse(server.operations.contains("PKIOperation"), "operations seen: \(server.operations)")
        XCTAssertTrue(server.pkiOperations.isEmpty)
    }

    func testServerOfferingOnlyDES3AndSHA1WorksWhenWeakAlgorithmsAreAllowed() async throws {
        let server = try TestSCEPServer(ca: try TestPKI.ca(), configuration: .init(capabilities: "DES3\nSHA-1\nPOSTPKIOperation\n"),
                                        plan: [.certRep(.scepserverStyle)])
        defer { server.stop() }
        let client = try Client(server: server, allowWeakAlgorithms: true)
        _ = try await client.enroll(key: try SoftwareKey.generate(KeySpec())).issuedCertificate()
        let request = try XCTUnwrap(server.pkiOperations.first)
        XCTAssertEqual(request.cipher, .desEDE3CBC)
        XCTAssertEqual(request.digest, .sha1)
        XCTAssertEqual(request.httpMethod, "POST")
    }

    // MARK: - Malformed replies

    func testMalformedRepliesGiveClearErrors() async throws {
        var truncated = PlannedReply.success
        truncated.truncated = true
        let garbage = (0..<300).map { UInt8(truncatingIfNeeded: $0 &* 73 &+ 11) }
        let cases: [(String, PlannedAnswer, SCEPError.Code, String)] = [
            ("garbage bytes", .http(.ok(garbage, contentType: "application/x-pki-message")), .malformedReply, "not a CMS SignedData"),
            ("truncated CertRep", .certRep(truncated), .malformedReply, "not a CMS SignedData"),
            ("empty 200 body", .http(.ok([], contentType: "application/x-pki-message")), .malformedReply, "reply"),
            ("HTML error page", .http(.text("<html>oops</html>")), .malformedReply, "reply"),
            ("HTTP 500", .http(.text("internal error", status: 500)), .httpStatus, "HTTP 500"),
        ]
        let server = try TestSCEPServer(ca: try TestPKI.ca(), plan: cases.map(\.1))
        defer { server.stop() }
        let client = try Client(server: server)
        let key = try SoftwareKey.generate(KeySpec())
        let profile = try await client.enrollment.discover()
        for (name, _, code, words) in cases {
            let prepared = try await client.enrollment.prepare(server: profile, newKey: key, spec: Client.defaultSpec, challenge: "pw")
            do {
                let outcome = try await client.enrollment.submit(prepared, server: profile, replyKey: key, newKey: key)
                XCTFail("\(name): accepted: \(outcome)")
            } catch let error as SCEPError {
                XCTAssertEqual(error.code, code, "\(name): \(error.message)")
                XCTAssertTrue(error.message.contains(words), "\(name): \(error.message)")
            }
        }
    }

    // MARK: - Helpers

    /// The policy OIDs of a certificatePolicies extension (RFC 5280 §4.2.1.4).
    static func policyOIDs(of certificate: Certificate) throws -> [ASN1ObjectIdentifier] {
        let policies = try XCTUnwrap(certificate.extensions[oid: [2, 5, 29, 32]], "no certificatePolicies extension")
        return try DER.sequence(of: PolicyIdentifierOnly.self, identifier: .sequence, rootNode: DER.parse(policies.value)).map(\.oid)
    }

    func assertThrowsSCEPError(
        _ code: SCEPError.Code, mentioning words: String? = nil, file: StaticString = #filePath, line: UInt = #line,
        _ body: () async throws -> Void
    ) async {
        do {
            try await body()
            XCTFail("expected SCEPError \(code), nothing thrown", file: file, line: line)
        } catch let error as SCEPError {
            XCTAssertEqual(error.code, code, error.message, file: file, line: line)
            if let words { XCTAssertTrue(error.message.contains(words), error.message, file: file, line: line) }
        } catch {
            XCTFail("expected SCEPError \(code), got \(error)", file: file, line: line)
        }
    }
}

/// PolicyInformation with only its identifier read.
private struct PolicyIdentifierOnly: DERImplicitlyTaggable {
    static var defaultIdentifier: ASN1Identifier { .sequence }
    let oid: ASN1ObjectIdentifier

    init(derEncoded node: ASN1Node, withIdentifier identifier: ASN1Identifier) throws {
        oid = try DER.sequence(node, identifier: identifier) { nodes in
            let oid = try ASN1ObjectIdentifier(derEncoded: &nodes)
            while nodes.next() != nil {}  // qualifiers, if any, are not our business here
            return oid
        }
    }

    func serialize(into coder: inout DER.Serializer, withIdentifier identifier: ASN1Identifier) throws {
        try coder.appendConstructedNode(identifier: identifier) { try $0.serialize(oid) }
    }
}

/// Events reported by the library, collected for assertions.
final class EventLog: @unchecked Sendable {
    private let lock = NSLock()
    private var recorded: [SCEPEvent] = []

    func record(_ event: SCEPEvent) {
        lock.lock()
        recorded.append(event)
        lock.unlock()
    }

    var events: [SCEPEvent] {
        lock.lock()
        defer { lock.unlock() }
        return recorded
    }
}

/// The client side as the agent uses it: `SCEPEnrollment` over `CurlTransport`.
struct Client {
    let enrollment: SCEPEnrollment

    static let defaultSpec: CertificateRequestSpec = {
        // A fixed, valid subject: `try!` cannot fail here.
        var spec = try! CertificateRequestSpec(attributes: [("2.5.4.10", "Example Corp"), ("2.5.4.3", "device-0001")])
        spec.dnsNames = ["device-0001.example.com"]
        return spec
    }()

    init(server: TestSCEPServer, pin: PinnedCA? = nil, allowWeakAlgorithms: Bool = false, events: EventLog? = nil) throws {
        enrollment = SCEPEnrollment(
            service: SCEPService(url: server.url, transport: CurlTransport()),
            pin: try pin ?? server.ca.pin(),
            allowWeakAlgorithms: allowWeakAlgorithms,
            events: { event in events?.record(event) })
    }

    /// discover → prepare → submit.
    func enroll(key: SoftwareKey, spec: CertificateRequestSpec = Client.defaultSpec, challenge: String? = "pw") async throws -> EnrollmentOutcome {
        try await enrollReturningProfile(key: key, spec: spec, challenge: challenge).outcome
    }

    func enrollReturningProfile(
        key: SoftwareKey, spec: CertificateRequestSpec = Client.defaultSpec, challenge: String? = "pw"
    ) async throws -> (outcome: EnrollmentOutcome, profile: ServerProfile, prepared: PreparedEnrollment) {
        let profile = try await enrollment.discover()
        let prepared = try await enrollment.prepare(server: profile, newKey: key, spec: spec, challenge: challenge)
        let outcome = try await enrollment.submit(prepared, server: profile, replyKey: key, newKey: key)
        return (outcome, profile, prepared)
    }
}

extension EnrollmentOutcome {
    /// The issued certificate, or a thrown description of what came instead.
    func issuedCertificate() throws -> IssuedCertificate {
        switch self {
        case .issued(let issued): return issued
        case .pending: throw TestSCEPServerError("expected a certificate, got PENDING")
        case .rejected(let failInfo, let text):
            throw TestSCEPServerError("expected a certificate, got \(EnrollmentOutcome.rejectionMessage(failInfo, text))")
        }
    }
}

extension CertificateRequestSpec {
    /// A request for the subject `attributes`, (dotted OID, value) in encoding order.
    init(attributes: [(String, String)]) throws {
        self.init(subject: try DistinguishedName(subjectAttributes: attributes.map {
            (type: try ASN1ObjectIdentifier(dotRepresentation: $0.0), value: $0.1)
        }))
    }
}
