import CertStore
import EnrollmentPlan
import Foundation
import Logging
@testable import SCEPClient
import TestSupport
import TPMKeys
import X509
import XCTest

@testable import EnrollAgent

/// A clock the test moves by hand.
final class ManualClock: AgentClock, @unchecked Sendable {
    private let lock = NSLock()
    private var current: Date
    init(_ start: Date = Date()) { current = start }
    func now() -> Date { lock.lock(); defer { lock.unlock() }; return current }
    func advance(by seconds: TimeInterval) { lock.lock(); current += seconds; lock.unlock() }
}

/// A sleeper that returns at once and remembers what it was asked.
final class ImmediateSleeper: Sleeper, @unchecked Sendable {
    private let lock = NSLock()
    private var recorded: [Double] = []
    var sleeps: [Double] { lock.lock(); defer { lock.unlock() }; return recorded }
    func sleep(seconds: Double) async throws {
        lock.withLock { recorded.append(seconds) }
        try Task.checkCancellation()
    }
}

/// `renew` against the real scepserver with the clock moved instead of waited for.
final class RenewalIntegrationTests: XCTestCase {
    private var server: SCEPServerProcess!
    private var workspace: TemporaryDirectory!
    private var clock = ManualClock()

    override func setUpWithError() throws {
        workspace = try TemporaryDirectory(prefix: "renew-it")
        clock = ManualClock()  // XCTest creates every test's instance up front: start the clock now
    }

    override func tearDown() {
        _ = server?.stop()
        workspace?.remove()
    }

    private func startServer(validityDays: Int? = nil) throws {
        var options = SCEPServerProcess.Options()
        options.certificateValidityDays = validityDays
        do { server = try SCEPServerProcess.start(options: options) } catch let missing as PeerUnavailable where missing.maySkip {
            throw XCTSkip(missing.description)
        }
    }

    private func config(_ extra: String = "") throws -> AgentConfig {
        let challengePath = workspace.appending("challenge")
        try server.challenge.write(toFile: challengePath, atomically: false, encoding: .utf8)
        chmod(challengePath, 0o600)
        return try AgentConfig.parse("""
        state_dir = "\(workspace.appending("state"))"
        [[profile]]
        name = "device"
        scep_url = "\(server.urlString)"
        ca_pin_file = "\(server.caCertificatePath)"
        subject = "CN=renewal-test,O=Example"
        key_storage = "software"
        \(extra)
        [profile.challenge]
        source = "file"
        file = "\(challengePath)"
        """)
    }

    private func enroller(_ config: AgentConfig, log: LogCapture = LogCapture()) -> ProfileEnroller {
        var environment = AgentEnvironment()
        environment.clock = clock
        environment.sleeper = ImmediateSleeper()
        return ProfileEnroller(config: config, profile: config.profiles[0], environment: environment,
                               logger: Logger(label: "test", factory: { _ in log.handler }))
    }

    private var store: ProfileStore { get throws { try ProfileStore(directory: workspace.appending("state/device")) } }

    func testRenewIsANoOpUntilDueThenRenewsWithRenewalReqAndKeepsThePreviousGeneration() async throws {
        try startServer()
        let config = try config()
        guard case .installed(let first, let original) = try await enroller(config).enroll(force: false) else { return XCTFail() }

        // Not due: no network at all (the server is stopped to prove it).
        _ = server.stop()
        guard case .notDue(let renewAt) = try await enroller(config).renew(force: false) else { return XCTFail("expected notDue") }
        let lifetime = original.notValidAfter.timeIntervalSince(original.notValidBefore)
        // Default: two thirds through the lifetime, minus at most the jitter bound (≤ 6 h).
        let nominal = original.notValidBefore.addingTimeInterval(lifetime * 2 / 3)
        XCTAssertLessThanOrEqual(renewAt, nominal)
        XCTAssertGreaterThanOrEqual(renewAt, nominal.addingTimeInterval(-6 * 3600 - 1))

        // The jitter was picked once and persisted: asking again gives the same time.
        guard case .notDue(let again) = try await enroller(config).renew(force: false) else { return XCTFail() }
        XCTAssertEqual(again, renewAt)

        // Move past the due time: it renews, via RenewalReq since scepserver offers Renewal.
        try server.restart()
        clock.advance(by: renewAt.timeIntervalSince(clock.now()) + 60)
        guard case .renewed(let second, let renewed, let messageType) = try await enroller(config).renew(force: false) else {
            return XCTFail("expected a renewal")
        }
        XCTAssertEqual(messageType, .renewalReq)
        XCTAssertNotEqual(renewed.serialNumber, original.serialNumber)
        XCTAssertNotEqual(renewed.publicKey, original.publicKey, "renewal re-keys by default")
        XCTAssertEqual(try store.previousGeneration()?.id, first.id)
        XCTAssertEqual(try store.liveGeneration()?.id, second.id)
    }

    func testRenewalModePKCSReqSendsAFreshPKCSReq() async throws {
        try startServer()
        let config = try config("renewal_mode = \"pkcsreq\"")
        _ = try await enroller(config).enroll(force: false)
        guard case .renewed(_, _, let messageType) = try await enroller(config).renew(force: true) else { return XCTFail() }
        XCTAssertEqual(messageType, .pkcsReq)
    }

    func testReuseKeyKeepsThePublicKey() async throws {
        try startServer()
        let config = try config("reuse_key = true")
        guard case .installed(_, let original) = try await enroller(config).enroll(force: false) else { return XCTFail() }
        guard case .renewed(_, let renewed, _) = try await enroller(config).renew(force: true) else { return XCTFail() }
        XCTAssertEqual(renewed.publicKey, original.publicKey)
    }

    func testReuseKeyAlsoHoldsForPKCSReqRenewals() async throws {
        try startServer()
        let config = try config("reuse_key = true\nrenewal_mode = \"pkcsreq\"")
        guard case .installed(_, let original) = try await enroller(config).enroll(force: false) else { return XCTFail() }
        guard case .renewed(_, let renewed, let messageType) = try await enroller(config).renew(force: true) else { return XCTFail() }
        XCTAssertEqual(messageType, .pkcsReq)
        XCTAssertEqual(renewed.publicKey, original.publicKey)
    }

    func testAnExpiredCertificateFallsBackToPKCSReq() async throws {
        try startServer()
        let config = try config()
        // An installed certificate that expired yesterday (the CA needs not know it: PKCSReq follows).
        let key = try SoftwareKey.generate(KeySpec())
        let signer = try EnrollmentKeySigner(key)
        let name = try DistinguishedName { CommonName("renewal-test") }
        let expired = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: signer.publicKey,
            notValidBefore: clock.now().addingTimeInterval(-3 * 86_400), notValidAfter: clock.now().addingTimeInterval(-86_400),
            issuer: name, subject: name, signatureAlgorithm: .sha256WithRSAEncryption,
            extensions: Certificate.Extensions(), issuerPrivateKey: Certificate.PrivateKey(signer))
        try store.install(CertificateBundle(
            certificatePEM: try expired.serializeAsPEM().pemString + "\n", chainPEM: "", keyPEM: try key.pemRepresentation()))

        guard case .renewed(_, let renewed, let messageType) = try await enroller(config).renew(force: false) else { return XCTFail() }
        XCTAssertEqual(messageType, .pkcsReq, "an expired certificate cannot sign a RenewalReq")
        XCTAssertGreaterThan(renewed.notValidAfter, clock.now())
    }

    func testAFailedRenewalKeepsTheLiveCertificateAndBacksOff() async throws {
        try startServer()
        let config = try config()
        guard case .installed(let first, _) = try await enroller(config).enroll(force: false) else { return XCTFail() }
        _ = server.stop()
        do {
            _ = try await enroller(config).renew(force: true)
            XCTFail("renewal against a stopped server succeeded")
        } catch let error as AgentError {
            XCTAssertEqual(error.code, .server)
        }
        XCTAssertEqual(try store.liveGeneration()?.id, first.id, "the live certificate must stay in place")
        let state = try store.loadState()
        XCTAssertEqual(state.failures, 1)
        let retry = try XCTUnwrap(state.retryAt)
        XCTAssertGreaterThanOrEqual(retry, clock.now())
        XCTAssertLessThanOrEqual(retry, clock.now().addingTimeInterval(60), "first retry within the first backoff step")

        // Due (moved far ahead) but backing off: no attempt before nextAttemptAt... once it is past, it retries.
        try server.restart()
        clock.advance(by: 300 * 86_400)
        if case .backingOff = try await enroller(config).renew(force: false) { XCTFail("backoff outlived nextAttemptAt") }
        XCTAssertEqual(try store.loadState().failures, 0)
    }

    func testStatusShowsTheNextRenewalAndItsReason() async throws {
        try startServer()
        let config = try config()
        _ = try await enroller(config).enroll(force: false)
        let status = ProfileStatus.read(profile: config.profiles[0], stateDirectory: config.stateDirectory, now: clock.now())
        XCTAssertEqual(status.renewal, "not due")
        let next = try XCTUnwrap(status.nextRenewal)
        XCTAssertGreaterThan(next, clock.now())
        let expired = ProfileStatus.read(profile: config.profiles[0], stateDirectory: config.stateDirectory,
                                         now: clock.now().addingTimeInterval(400 * 86_400))
        XCTAssertEqual(expired.renewal, "expired")
        XCTAssertEqual(expired.state, "expired")
    }
}
