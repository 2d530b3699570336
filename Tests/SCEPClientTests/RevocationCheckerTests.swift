import Foundation
import TestSupport
import TPMKeys
import X509
import XCTest

@testable import SCEPClient
@testable import SCEPTestSupport

/// `RevocationChecker` over libcurl against a loopback HTTP server: the verdicts, and the
/// cached CRL, which stands in for a CRL that cannot be fetched only while it is current.
final class RevocationCheckerTests: XCTestCase {
    private var crlAnswer = LockedAnswer()
    private var server: TestHTTPServer!

    override func setUpWithError() throws {
        let answer = crlAnswer
        server = try TestHTTPServer { _ in answer.get() }
    }

    override func tearDown() { server?.stop() }

    private func leaf(urls: [String]) throws -> Certificate {
        let ca = try TestPKI.ca()
        var extensions = Certificate.Extensions()
        try extensions.append(try TestCRLPublisher.distributionPoint(urls))
        return try ca.issue(publicKey: Certificate.PublicKey(derEncoded: try TestPKI.strangerKey().subjectPublicKeyInfo),
                            subject: try DistinguishedName { CommonName("host") }, extensions: extensions)
    }

    private func checker() throws -> RevocationChecker {
        var options = CurlTransport.Options()
        options.totalTimeout = 5
        options.maxResponseBytes = RevocationChecker.maximumCRLBytes
        return RevocationChecker(transport: CurlTransport(options: options), pin: try TestPKI.ca().pin())
    }

    private func crl(revoking serial: Certificate.SerialNumber? = nil, signer: SoftwareKey? = nil, now: Date = Date(),
                     validity: TimeInterval = 3600) throws -> [UInt8] {
        let ca = try TestPKI.ca()
        return try TestCRLPublisher.crl(issuer: ca.subject, signer: signer ?? ca.key,
                                        revoked: serial.map { [.init(serial: $0, at: now.addingTimeInterval(-10), reason: .affiliationChanged)] } ?? [],
                                        now: now, validity: validity)
    }

    func testVerdicts() async throws {
        let leaf = try leaf(urls: ["ldap://x/cn=CA", server.urlString + "/crl"])
        crlAnswer.set(.ok(try crl()))
        var report = await try checker().check(leaf, chain: [], now: Date())
        XCTAssertEqual(report.verdict, .good)
        XCTAssertEqual(report.url, server.urlString + "/crl")
        XCTAssertEqual(report.notFetched.map(\.uri), ["ldap://x/cn=CA"])

        crlAnswer.set(.ok(try crl(revoking: leaf.serialNumber)))
        report = await try checker().check(leaf, chain: [], now: Date())
        guard case .revoked(let entry) = report.verdict else { return XCTFail("\(report.verdict)") }
        XCTAssertEqual(entry.reason, .affiliationChanged)

        // PEM, as some CAs publish it, is read too.
        let pem = "-----BEGIN X509 CRL-----\n" + Data(try crl()).base64EncodedString(options: .lineLength64Characters) + "\n-----END X509 CRL-----\n"
        crlAnswer.set(.ok(Array(pem.utf8)))
        report = await try checker().check(leaf, chain: [], now: Date())
        XCTAssertEqual(report.verdict, .good)
    }

    func testTheCachedCRLStandsInOnlyWhileItIsCurrentAndVerifies() async throws {
        let leaf = try leaf(urls: [server.urlString + "/crl"])
        crlAnswer.set(.status(503))
        let now = Date()

        let current = try crl(revoking: leaf.serialNumber, now: now)
        var report = await try checker().check(leaf, chain: [], now: now, cachedCRL: current)
        guard case .revoked = report.verdict else { return XCTFail("\(report.verdict)") }
        XCTAssertTrue(report.cachedBecause?.contains("HTTP 503") ?? false, "\(report)")

        let outOfDate = try crl(now: now.addingTimeInterval(-7200), validity: 3600)
        report = await try checker().check(leaf, chain: [], now: now, cachedCRL: outOfDate)
        guard case .unavailable(let cause) = report.verdict else { return XCTFail("\(report.verdict)") }
        XCTAssertTrue(cause.contains("HTTP 503"), cause)
        XCTAssertNil(report.cachedBecause)

        let forged = try crl(signer: try TestPKI.rogue().key, now: now)
        report = await try checker().check(leaf, chain: [], now: now, cachedCRL: forged)
        guard case .unavailable = report.verdict else { return XCTFail("a forged cache was believed: \(report.verdict)") }

        // A CRL that can be fetched wins over the cache.
        crlAnswer.set(.ok(try crl(now: now)))
        report = await try checker().check(leaf, chain: [], now: now, cachedCRL: current)
        XCTAssertEqual(report.verdict, .good)
        XCTAssertNil(report.cachedBecause)
    }
}

/// The server's answer, changed by the test while the server runs.
final class LockedAnswer: @unchecked Sendable {
    private let lock = NSLock()
    private var answer: TestHTTPResponse = .status(404)
    func set(_ response: TestHTTPResponse) { lock.withLock { answer = response } }
    func get() -> TestHTTPResponse { lock.withLock { answer } }
}
