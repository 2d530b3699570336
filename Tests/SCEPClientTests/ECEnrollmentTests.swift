import Crypto
import Foundation
import KeyInterface
import SwiftASN1
import TPMKeys
import TestSupport
import X509
import XCTest

@testable import SCEPClient
@testable import SCEPTestSupport

/// EC keys through the protocol, against our test SCEP server: the CSR carries and is
/// signed by the EC key, the pkiMessage is signed by a temporary RSA key with a
/// self-signed certificate, the reply is encrypted to that key, and the issued
/// certificate carries the EC key (RFC 8894 §2.3).
final class ECEnrollmentTests: XCTestCase {
    func testAnECKeyEnrollsWithATemporaryRSAEnvelopeKeyThroughPendingAndCertPoll() async throws {
        for curve in EllipticCurve.allCases {
            let ca = try TestPKI.ca()
            let server = try TestSCEPServer(ca: ca, plan: [.certRep(.pending), .certRep(.success)])
            defer { server.stop() }
            let client = try Client(server: server)
            let key = try SoftwareKey.generate(KeySpec(curve: curve))
            let envelope = try SoftwareKey.generate(KeySpec(rsaBits: 2048))
            let profile = try await client.enrollment.discover()
            let prepared = try await client.enrollment.prepare(server: profile, newKey: key, spec: Client.defaultSpec, challenge: "pw",
                                                               envelopeKey: envelope)
            // The transactionID is the EC key's, the signer the envelope key's self-signed certificate.
            XCTAssertEqual(prepared.transaction.transactionID, try SCEPEnrollment.transactionID(for: key))
            let signer = try Certificate(derEncoded: prepared.transaction.signerCertificateDER)
            XCTAssertEqual(signer.publicKey, try Certificate.PublicKey(derEncoded: envelope.subjectPublicKeyInfo))
            XCTAssertEqual(signer.subject, signer.issuer)

            let first = try await client.enrollment.submit(prepared, server: profile, replyKey: envelope, newKey: key)
            guard case .pending = first else { return XCTFail("expected PENDING, got \(first)") }
            let issued = try await client.enrollment.poll(prepared.transaction, server: profile, signerKey: envelope, newKey: key)
                .issuedCertificate()
            XCTAssertEqual(issued.certificate.publicKey, try Certificate.PublicKey(derEncoded: key.subjectPublicKeyInfo))
            XCTAssertEqual(KeyAlgorithm(publicKey: issued.certificate.publicKey), .ec(curve))

            let request = try XCTUnwrap(server.pkiOperations.first?.csr)
            XCTAssertEqual(request.publicKey, try Certificate.PublicKey(derEncoded: key.subjectPublicKeyInfo))
            XCTAssertEqual(request.signatureAlgorithm, curve == .p256 ? .ecdsaWithSHA256 : .ecdsaWithSHA384)
            XCTAssertTrue(request.publicKey.isValidSignature(request.signature, for: request), "the CSR is signed by the EC key")
            XCTAssertEqual(server.pkiOperations.map(\.messageType), [.pkcsReq, .certPoll])
            XCTAssertTrue(server.pkiOperations.allSatisfy { $0.signerCertificate == signer })
        }
    }

    func testAnECKeyWithoutAnEnvelopeKeyIsRefusedBeforeAnythingIsSent() async throws {
        let server = try TestSCEPServer(ca: try TestPKI.ca())
        defer { server.stop() }
        let client = try Client(server: server)
        let key = try SoftwareKey.generate(KeySpec(curve: .p256))
        let profile = try await client.enrollment.discover()
        do {
            _ = try await client.enrollment.prepare(server: profile, newKey: key, spec: Client.defaultSpec, challenge: "pw")
            XCTFail("an EC key cannot receive the reply")
        } catch let error as SCEPError {
            XCTAssertEqual(error.code, .invalidRequest)
            XCTAssertTrue("\(error)".contains("temporary RSA envelope key"), "\(error)")
        }
        XCTAssertEqual(server.pkiOperations.count, 0)
    }

    func testARenewalReqSignedByAnECCertificateIsRefused() async throws {
        let ca = try TestPKI.ca()
        let server = try TestSCEPServer(ca: ca)
        defer { server.stop() }
        let client = try Client(server: server)
        let key = try SoftwareKey.generate(KeySpec(curve: .p256))
        let envelope = try SoftwareKey.generate(KeySpec(rsaBits: 2048))
        let profile = try await client.enrollment.discover()
        let prepared = try await client.enrollment.prepare(server: profile, newKey: key, spec: Client.defaultSpec, challenge: "pw",
                                                           envelopeKey: envelope)
        let issued = try await client.enrollment.submit(prepared, server: profile, replyKey: envelope, newKey: key).issuedCertificate()
        do {
            _ = try await client.enrollment.prepare(server: profile, newKey: try SoftwareKey.generate(KeySpec(curve: .p256)),
                                                    spec: Client.defaultSpec, challenge: nil, renewWith: (issued.certificate, key))
            XCTFail("a RenewalReq signed by an EC key was built")
        } catch let error as SCEPError {
            XCTAssertTrue("\(error)".contains("renew with a PKCSReq"), "\(error)")
        }
    }

    /// The key type of a certificate's public key, as `status` shows it.
    func testKeyAlgorithmOfPublicKeys() throws {
        XCTAssertEqual(KeyAlgorithm(subjectPublicKeyInfo: try SoftwareKey.generate(KeySpec(rsaBits: 2048)).subjectPublicKeyInfo), .rsa(bits: 2048))
        XCTAssertEqual(KeyAlgorithm(subjectPublicKeyInfo: try SoftwareKey.generate(KeySpec(rsaBits: 3072)).subjectPublicKeyInfo), .rsa(bits: 3072))
        XCTAssertEqual(KeyAlgorithm(subjectPublicKeyInfo: try SoftwareKey.generate(KeySpec(curve: .p256)).subjectPublicKeyInfo), .ec(.p256))
        XCTAssertEqual(KeyAlgorithm(subjectPublicKeyInfo: try SoftwareKey.generate(KeySpec(curve: .p384)).subjectPublicKeyInfo), .ec(.p384))
        let ed25519 = try Certificate.PublicKey(Curve25519.Signing.PrivateKey().publicKey)
        XCTAssertNil(KeyAlgorithm(publicKey: ed25519))
        XCTAssertNil(KeyAlgorithm(subjectPublicKeyInfo: [0x30, 0x03, 0x02, 0x01, 0x00]))
        XCTAssertNil(KeyAlgorithm(subjectPublicKeyInfo: []))
    }
}
