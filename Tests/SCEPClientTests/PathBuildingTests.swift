import Crypto
import Foundation
import SwiftASN1
import X509
import XCTest

@testable import SCEPClient

/// Bounded path building and the validity window (issue 8 §2 and §3).
final class PathBuildingTests: XCTestCase {
    /// `layers` layers of `width` CA certificates; all certificates of a layer share one
    /// name and one key, and each is issued by the layer above's name and key, so every
    /// certificate of a layer verifies under every certificate of the next: width^layers
    /// paths. The top layer claims the pinned CA's name but is signed by another key, so
    /// no path reaches the pin. The old code (swift-certificates' Verifier on everything)
    /// took 10.5 s for 4×7 and 168 s for 4×9.
    static func ladder(width: Int, layers: Int, pinned: PKI.Identity) throws -> [Certificate] {
        let impostorKey = P256.Signing.PrivateKey()
        var certificates: [Certificate] = []
        var issuerName = pinned.name
        var issuerKey = impostorKey
        for layer in (0..<layers).reversed() {
            let key = P256.Signing.PrivateKey()
            let name = try DistinguishedName { CommonName("Ladder \(layer)") }
            for copy in 0..<width {
                certificates.append(try Certificate(
                    version: .v3, serialNumber: .init(bytes: [UInt8(layer + 1), UInt8(copy + 1)]), publicKey: .init(key.publicKey),
                    notValidBefore: PKI.now - PKI.day, notValidAfter: PKI.now + PKI.day,
                    issuer: issuerName, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
                    extensions: try Certificate.Extensions { Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil)) },
                    issuerPrivateKey: .init(issuerKey)))
            }
            issuerName = name
            issuerKey = key
        }
        return certificates
    }

    func testALadderOfCertificatesCostsLinearWorkAndIsRefused() async throws {
        let pinned = try PKI.ca("Issuing CA")
        let ladder = try Self.ladder(width: 4, layers: 7, pinned: pinned)
        let builder = try CertificatePathBuilder(anchors: [pinned.certificate], candidates: ladder + [pinned.certificate],
                                                 window: ValidityWindow(now: PKI.now))
        let started = ContinuousClock.now
        for certificate in ladder.suffix(4) {  // the bottom layer
            do {
                _ = try await builder.path(from: certificate, role: "CA")
                XCTFail("a ladder reached the pin")
            } catch let error as SCEPError {
                XCTAssertEqual(error.code, .untrustedCertificate, error.message)
                XCTAssertTrue(error.message.contains("does not chain to the pinned CA"), error.message)
            }
        }
        // width² edges per layer at most, each verified once: 4 × 4 × 7 = 112.
        XCTAssertLessThanOrEqual(builder.signatureChecksUsed, 4 * 4 * 7)
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(5))
    }

    func testTheGetCACertAnswerOfALadderIsRefusedQuickly() async throws {
        let pinned = try PKI.ca("Issuing CA")
        let served = try Self.ladder(width: 4, layers: 7, pinned: pinned) + [pinned.certificate]
        let pin = try PinnedCA(pinnedCertificates: [pinned.certificate], fingerprints: [])
        let started = ContinuousClock.now
        let result = try await CACertificates.validated(served, pin: pin, window: ValidityWindow(now: PKI.now))
        XCTAssertEqual(result.encryptionRecipient, pinned.certificate)
        XCTAssertEqual(result.untrusted.count, 28)
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(5))
    }

    func testEveryLimitIsNamedWhenHit() async throws {
        let pinned = try PKI.ca("Issuing CA")
        let pin = try PinnedCA(pinnedCertificates: [pinned.certificate], fingerprints: [])
        // 4×9 (the 168 s case) has more certificates than any GetCACert answer needs.
        let tall = try Self.ladder(width: 4, layers: 9, pinned: pinned)
        await assertLimit("the server sent 36 certificates; at most 32 are considered") {
            _ = try await CACertificates.validated(tall, pin: pin, window: ValidityWindow(now: PKI.now))
        }
        let ladder = try Self.ladder(width: 4, layers: 7, pinned: pinned)
        var checks = PathBuildingLimits()
        checks.maxSignatureChecks = 20
        await assertLimit("maxSignatureChecks") {
            _ = try await CACertificates.validated(ladder, pin: pin, window: ValidityWindow(now: PKI.now), limits: checks)
        }
        var time = PathBuildingLimits()
        time.timeBudget = .zero
        await assertLimit("timeBudget") {
            _ = try await CACertificates.validated(ladder, pin: pin, window: ValidityWindow(now: PKI.now), limits: time)
        }
    }

    func testPathsLongerThanTheLimitAreNotFollowed() async throws {
        var chain = [try PKI.ca("Root")]
        for level in 1...4 { chain.append(try PKI.ca("Level \(level)", issuer: chain.last)) }
        var limits = PathBuildingLimits()
        limits.maxPathLength = 4
        let builder = try CertificatePathBuilder(anchors: [chain[0].certificate], candidates: chain.map(\.certificate),
                                                 window: ValidityWindow(now: PKI.now), limits: limits)
        let long = try await assertThrows { _ = try await builder.path(from: chain[4].certificate, role: "CA") }
        XCTAssertTrue(long.message.contains("maxPathLength"), long.message)
        let path = try await builder.path(from: chain[3].certificate, role: "CA")
        XCTAssertEqual(path, chain[0...3].reversed().map(\.certificate))
    }

    // MARK: - Validity window

    func testValidityWindowScenarios() throws {
        let now = PKI.now
        let cases: [(name: String, notBefore: TimeInterval, notAfter: TimeInterval, problem: String?)] = [
            ("valid", -3600, 3600, nil),
            ("notBefore 4 min ahead: CA clock runs ahead", 240, 3600, nil),
            ("notBefore 10 min ahead", 600, 3600, "is not valid before"),
            ("expires in 2 min", -3600, 120, nil),
            ("expires exactly now (inclusive)", -3600, 0, nil),
            ("expired 1 s ago: no tolerance on notAfter", -3600, -1, "expired at"),
        ]
        for item in cases {
            let certificate = try PKI.ca("Window", notBefore: now + item.notBefore, notAfter: now + item.notAfter).certificate
            let problem = ValidityWindow(now: now).problem(with: certificate)
            if let expected = item.problem {
                XCTAssertTrue(problem?.contains(expected) ?? false, "\(item.name): \(problem ?? "nil")")
            } else {
                XCTAssertNil(problem, item.name)
            }
        }
    }

    func testAnExpiredCAIsReportedInOneLineWithItsDate() async throws {
        let pinned = try PKI.ca("Issuing CA")
        let expiredSub = try PKI.ca("Sub CA", issuer: pinned, notBefore: PKI.now - 30 * PKI.day, notAfter: PKI.now - PKI.day)
        let ra = try PKI.ra("RA", issuer: expiredSub, usage: nil)
        let builder = try CertificatePathBuilder(anchors: [pinned.certificate], candidates: [expiredSub.certificate, ra.certificate],
                                                 window: ValidityWindow(now: PKI.now))
        let error = try await assertThrows { _ = try await builder.path(from: ra.certificate, role: "RA") }
        XCTAssertTrue(error.message.contains("its issuer \"CN=Sub CA,O=enroll-agent tests\" expired at"), error.message)
        XCTAssertFalse(error.message.contains("\n"), error.message)
    }

    // MARK: - Helpers

    private func assertLimit(_ words: String, file: StaticString = #filePath, line: UInt = #line, _ body: () async throws -> Void) async {
        do {
            try await body()
            XCTFail("no limit was hit", file: file, line: line)
        } catch let error as SCEPError {
            XCTAssertEqual(error.code, .resourceLimit, error.message, file: file, line: line)
            XCTAssertTrue(error.message.contains(words), error.message, file: file, line: line)
        } catch {
            XCTFail("\(error)", file: file, line: line)
        }
    }

    private func assertThrows(_ body: () async throws -> Void) async throws -> SCEPError {
        do {
            try await body()
        } catch let error as SCEPError {
            return error
        }
        throw NothingThrown()  // fails the calling test
    }

    private struct NothingThrown: Error {}
}
