import XCTest
import Foundation
import SwiftASN1
import X509
import TPMKeys
import TestSupport
@testable import SCEPClient
@testable import SCEPTestSupport

/// Issue 12 §3: GetNextCACert (RFC 8894 §4.7) verified against today's trusted signers,
/// candidate pins, and the several-CA pin during a planned change.
final class NextCATests: XCTestCase {
    private func window() -> ValidityWindow { ValidityWindow(now: Date()) }

    private func announcement(_ certificates: [Certificate], signedBy signer: TestIdentity) throws -> [UInt8] {
        try CMSBuilder.signedCertificates(certificates, signer: signer)
    }

    // MARK: - NextCAAnnouncement.verified: a scenario table

    func testAnnouncementScenarios() throws {
        let ca = try TestPKI.ca(), next = try TestPKI.nextCA(), rogue = try TestPKI.rogue()
        let ra = try TestPKI.combinedRA()
        enum Expected: Equatable { case success([Certificate]); case failure(SCEPError.Code) }
        struct Case { let name: String; let body: [UInt8]; let signers: [Certificate]; let expected: Expected }
        let cases: [Case] = [
            Case(name: "signed by the pinned CA", body: try announcement([next.certificate], signedBy: ca.identity),
                 signers: [ca.certificate], expected: .success([next.certificate])),
            Case(name: "signed by the trusted RA", body: try announcement([next.certificate], signedBy: ra),
                 signers: [ra.certificate, ca.certificate], expected: .success([next.certificate])),
            Case(name: "the current CA again: no change", body: try announcement([ca.certificate], signedBy: ca.identity),
                 signers: [ca.certificate], expected: .success([])),
            Case(name: "forged: signed by another CA that embeds itself", body: try announcement([next.certificate], signedBy: rogue.identity),
                 signers: [ca.certificate], expected: .failure(.untrustedCertificate)),
            Case(name: "an RA that is not trusted", body: try announcement([next.certificate], signedBy: ra),
                 signers: [ca.certificate], expected: .failure(.untrustedCertificate)),
            Case(name: "degenerate, no signer", body: try CMSBuilder.degenerate([next.certificate]),
                 signers: [ca.certificate], expected: .failure(.untrustedCertificate)),
            Case(name: "a bare certificate", body: next.identity.der, signers: [ca.certificate], expected: .failure(.malformedReply)),
            Case(name: "empty", body: [], signers: [ca.certificate], expected: .failure(.malformedReply)),
        ]
        for test in cases {
            do {
                let verified = try NextCAAnnouncement.verified(test.body, signers: test.signers, current: [ca.certificate])
                XCTAssertEqual(Expected.success(verified.nextCAs), test.expected, test.name)
            } catch let error as SCEPError {
                XCTAssertEqual(Expected.failure(error.code), test.expected, "\(test.name): \(error.message)")
            }
        }
    }

    func testABrokenSignatureIsRefused() throws {
        let ca = try TestPKI.ca()
        var body = try announcement([try TestPKI.nextCA().certificate], signedBy: ca.identity)
        // The signature is the last OCTET STRING of the message: flip a byte near the end.
        body[body.count - 10] ^= 0x01
        XCTAssertThrowsError(try NextCAAnnouncement.verified(body, signers: [ca.certificate], current: [ca.certificate])) { error in
            XCTAssertEqual((error as? SCEPError)?.code, .badSignature, "\(error)")
        }
    }

    /// Untrusted input: every truncation is an error, never a crash; trailing bytes are refused.
    func testTruncatedAndTrailingBytesAreRefused() throws {
        let ca = try TestPKI.ca()
        let body = try announcement([try TestPKI.nextCA().certificate], signedBy: ca.identity)
        for length in stride(from: 0, to: body.count, by: 7) {
            XCTAssertThrowsError(try NextCAAnnouncement.verified(Array(body.prefix(length)), signers: [ca.certificate], current: [ca.certificate]),
                                 "prefix of \(length) bytes")
        }
        XCTAssertThrowsError(try NextCAAnnouncement.verified(body + [0x00], signers: [ca.certificate], current: [ca.certificate]))
    }

    func testTooManyCertificatesAreRefusedBeforeAnySignatureCheck() throws {
        let ca = try TestPKI.ca()
        let body = try announcement(Array(repeating: try TestPKI.nextCA().certificate, count: 40), signedBy: ca.identity)
        XCTAssertThrowsError(try NextCAAnnouncement.verified(body, signers: [ca.certificate], current: [ca.certificate])) { error in
            XCTAssertEqual((error as? SCEPError)?.code, .resourceLimit, "\(error)")
        }
    }

    // MARK: - Candidates in the pin

    /// A candidate is an anchor only where the server presents it.
    func testACandidateIsTrustedOnlyOncePresented() async throws {
        let ca = try TestPKI.ca(), next = try TestPKI.nextCA()
        let pin = try ca.pin().addingCandidates([next.certificate])
        XCTAssertEqual(pin.anchors(among: [ca.certificate]), [ca.certificate])
        XCTAssertEqual(pin.anchors(among: [next.certificate]), [ca.certificate, next.certificate])
        XCTAssertTrue(pin.isCandidateOnly(next.certificate))
        XCTAssertFalse(pin.isCandidateOnly(ca.certificate))

        let server = try await CACertificates.validated([next.certificate], pin: pin, window: window())
        XCTAssertEqual(server.issuingCA, next.certificate)
        // Without the candidate the same answer is refused.
        do {
            _ = try await CACertificates.validated([next.certificate], pin: try ca.pin(), window: window())
            XCTFail("a CA nobody pinned or announced was trusted")
        } catch let error as SCEPError {
            XCTAssertEqual(error.code, .untrustedCertificate)
        }
    }

    /// The rollover rule's other half: the live chain's CA is one the pin trusts.
    func testPinsOneOfAChain() throws {
        let ca = try TestPKI.ca(), next = try TestPKI.nextCA(), rogue = try TestPKI.rogue()
        let filePin = try ca.pin()
        XCTAssertTrue(filePin.pinsOne(of: [ca.certificate]))
        XCTAssertFalse(filePin.pinsOne(of: [next.certificate]))
        XCTAssertFalse(filePin.pinsOne(of: []))
        XCTAssertTrue(filePin.addingCandidates([next.certificate]).pinsOne(of: [next.certificate]))
        let fingerprintPin = try PinnedCA(pinnedCertificates: [], fingerprints: [PinnedCA.fingerprint(of: ca.certificate)])
        XCTAssertTrue(fingerprintPin.pinsOne(of: [rogue.certificate, ca.certificate]))
        XCTAssertFalse(fingerprintPin.pinsOne(of: [rogue.certificate]))
    }

    /// Old and new CA pinned at once (ca_pin_sha256 with two values): while the server
    /// presents both, a certificate from either verifies.
    func testTwoPinnedCAsPresentedTogetherBothIssue() async throws {
        let ca = try TestPKI.ca(), next = try TestPKI.nextCA()
        let pin = try PinnedCA(pinnedCertificates: [], fingerprints: [PinnedCA.fingerprint(of: ca.certificate), PinnedCA.fingerprint(of: next.certificate)])
        let server = try await CACertificates.validated([ca.certificate, next.certificate], pin: pin, window: window())
        XCTAssertEqual(server.issuingAnchors, [ca.certificate, next.certificate])
        let host = try next.issueRA(commonName: "host01", digitalSignature: true, keyEncipherment: true, purposes: [TestCA.clientAuth])
        XCTAssertTrue(server.isIssuedByTrustedCA(host.certificate))
        let onlyOld = try await CACertificates.validated([ca.certificate], pin: pin, window: window())
        XCTAssertFalse(onlyOld.isIssuedByTrustedCA(host.certificate), "a certificate of a CA the server no longer presents")
    }

    // MARK: - Over HTTP against the test server

    func testGetNextCACertFromTheTestServerVerifies() async throws {
        let next = try TestPKI.nextCA()
        let server = try TestSCEPServer(ca: try TestPKI.ca(), configuration: .init(nextCA: next))
        defer { server.stop() }
        let client = try Client(server: server)
        let profile = try await client.enrollment.discover()
        XCTAssertTrue(profile.capabilities.contains(.getNextCACert))
        let announcement = try await client.enrollment.nextCA(server: profile)
        XCTAssertEqual(announcement.nextCAs, [next.certificate])
        XCTAssertEqual(announcement.signer, server.ca.certificate)
        XCTAssertEqual(server.operations, ["GetCACaps", "GetCACert", "GetNextCACert"])

        // After the switch the old pin alone no longer trusts the server; with the candidate it does.
        server.switchToNextCA()
        do {
            _ = try await client.enrollment.discover()
            XCTFail("the new CA was trusted without the candidate")
        } catch let error as SCEPError {
            XCTAssertEqual(error.code, .untrustedCertificate)
        }
        let withCandidate = try Client(server: server, pin: try server.ca.pin().addingCandidates(announcement.nextCAs))
        let after = try await withCandidate.enrollment.discover()
        XCTAssertEqual(after.certificates.issuingCA, next.certificate)
        XCTAssertFalse(after.capabilities.contains(.getNextCACert))
        let outcome = try await withCandidate.enroll(key: try SoftwareKey.generate(KeySpec()))
        guard case .issued(let issued) = outcome else { return XCTFail("not issued: \(outcome)") }
        XCTAssertEqual(issued.certificate.issuer, next.subject)
    }
}
