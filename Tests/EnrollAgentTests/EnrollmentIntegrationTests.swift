import CertStore
import EnrollmentPlan
import Foundation
import Logging
import SCEPClient
import TestSupport
import X509
import XCTest

@testable import EnrollAgent

/// `enroll` end to end against the real micromdm scepserver on loopback, with software keys.
final class EnrollmentIntegrationTests: XCTestCase {
    private var server: SCEPServerProcess!
    private var workspace: TemporaryDirectory!

    override func setUpWithError() throws {
        do {
            server = try SCEPServerProcess.start()
        } catch let missing as PeerUnavailable where missing.maySkip {
            throw XCTSkip(missing.description)
        }
        workspace = try TemporaryDirectory(prefix: "enroll-it")
    }

    override func tearDown() {
        _ = server?.stop()
        workspace?.remove()
    }

    /// Writes a config for one software-key profile; `challenge` defaults to the server's.
    private func makeConfig(challenge: String? = nil, pinPath: String? = nil, extra: String = "") throws -> AgentConfig {
        let challengePath = workspace.appending("challenge")
        try (challenge ?? server.challenge).write(toFile: challengePath, atomically: false, encoding: .utf8)
        chmod(challengePath, 0o600)
        let text = """
        state_dir = "\(workspace.appending("state"))"

        [[profile]]
        name = "device"
        scep_url = "\(server.urlString)"
        ca_pin_file = "\(pinPath ?? server.caCertificatePath)"
        subject = "CN={{UserPrincipalName}},O=Example"
        san_upn = ["{{UserPrincipalName}}"]
        san_dns = ["host01.example.com"]
        key_storage = "software"
        \(extra)

        [profile.challenge]
        source = "file"
        file = "\(challengePath)"

        [profile.variables]
        UserPrincipalName = "host01@example.com"
        """
        return try AgentConfig.parse(text, path: workspace.appending("config.toml"))
    }

    private func enroller(_ config: AgentConfig, log: LogCapture = LogCapture()) -> ProfileEnroller {
        ProfileEnroller(config: config, profile: config.profiles[0], environment: AgentEnvironment(),
                        logger: Logger(label: "test", factory: { _ in log.handler }))
    }

    func testEnrollInstallsAVerifiedCertificateWithItsKey() async throws {
        let config = try makeConfig()
        let log = LogCapture()
        let result = try await enroller(config, log: log).enroll(force: false)
        guard case .installed(_, let certificate) = result else { return XCTFail("expected an installed certificate, got \(result)") }

        let live = workspace.appending("state/device/live")
        XCTAssertEqual(certificate.subject.description, "CN=host01@example.com,O=Example")
        // openssl agrees: the certificate chains to the CA, the key is its key, the key is 0600.
        try assertOpenSSL(["verify", "-CAfile", server.caCertificatePath, live + "/cert.pem"], contains: "OK")
        let certificateKey = try runOpenSSL(["x509", "-in", live + "/cert.pem", "-noout", "-pubkey"])
        let privateKeysPublic = try runOpenSSL(["pkey", "-in", live + "/key.pem", "-pubout"])
        XCTAssertEqual(certificateKey, privateKeysPublic, "key.pem must be the certificate's key")
        XCTAssertEqual(try mode(of: live + "/key.pem"), 0o600)
        XCTAssertEqual(try mode(of: live + "/cert.pem"), 0o644)
        let fullchain = try String(contentsOfFile: live + "/fullchain.pem", encoding: .utf8)
        let cert = try String(contentsOfFile: live + "/cert.pem", encoding: .utf8)
        let chain = try String(contentsOfFile: live + "/chain.pem", encoding: .utf8)
        XCTAssertEqual(fullchain, cert + chain)
        XCTAssertTrue(chain.contains(server.caCertificatePEM.trimmingCharacters(in: .whitespacesAndNewlines)))

        // The challenge is in no log line and in no file of the store.
        XCTAssertFalse(log.text.contains(server.challenge), "the challenge leaked into the log")
        for file in try allFiles(under: workspace.appending("state")) {
            let contents = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
            XCTAssertFalse(contents.contains(server.challenge), "the challenge leaked into \(file)")
        }
        XCTAssertEqual(server.issuedCertificatePaths().count, 1)
    }

    func testSecondEnrollDoesNotContactTheServerWhileTheCertificateIsValid() async throws {
        let config = try makeConfig()
        _ = try await enroller(config).enroll(force: false)
        _ = server.stop()  // any request would now fail
        let again = try await enroller(config).enroll(force: false)
        guard case .alreadyValid = again else { return XCTFail("expected alreadyValid, got \(again)") }
    }

    func testForceEnrollsAgainAndKeepsThePreviousGeneration() async throws {
        let config = try makeConfig()
        guard case .installed(let first, _) = try await enroller(config).enroll(force: false) else { return XCTFail() }
        guard case .installed(let second, _) = try await enroller(config).enroll(force: true) else { return XCTFail() }
        XCTAssertNotEqual(first.id, second.id)
        let store = try ProfileStore(directory: workspace.appending("state/device"))
        XCTAssertEqual(try store.previousGeneration()?.id, first.id)
        XCTAssertEqual(try store.liveGeneration()?.id, second.id)
    }

    func testWrongChallengeIsRefusedClearlyAndInstallsNothing() async throws {
        let config = try makeConfig(challenge: "not-the-challenge")
        do {
            _ = try await enroller(config).enroll(force: false)
            XCTFail("enrollment with a wrong challenge succeeded")
        } catch let error as AgentError {
            XCTAssertEqual(error.code, .rejected)
            XCTAssertTrue(error.message.contains("badRequest"), error.message)
            XCTAssertTrue(error.message.contains("challenge"), error.message)
            XCTAssertFalse(error.message.contains("not-the-challenge"), "the challenge must not appear in errors")
        }
        let store = try ProfileStore(directory: workspace.appending("state/device"))
        XCTAssertNil(try store.liveGeneration())
        XCTAssertNil(try store.loadPendingKey(), "a refused transaction must not stay pending")
        let state = try store.loadState()
        XCTAssertNil(state.phase.transaction)
        XCTAssertEqual(state.failures, 1)
        XCTAssertTrue(state.lastError?.contains("badRequest") ?? false)
    }

    func testACAThatIsNotThePinIsRefusedBeforeAnyRequestIsSent() async throws {
        // Pin an unrelated CA: a second scepserver's.
        let other: SCEPServerProcess
        do { other = try SCEPServerProcess.start() } catch let missing as PeerUnavailable where missing.maySkip { throw XCTSkip(missing.description) }
        defer { _ = other.stop() }
        let config = try makeConfig(pinPath: other.caCertificatePath)
        do {
            _ = try await enroller(config).enroll(force: false)
            XCTFail("enrolled against a CA that is not pinned")
        } catch let error as AgentError {
            XCTAssertEqual(error.code, .verification)
            XCTAssertTrue(error.message.contains("pinned"), error.message)
        }
        XCTAssertEqual(server.issuedCertificatePaths().count, 0)
        XCTAssertNil(try ProfileStore(directory: workspace.appending("state/device")).liveGeneration())
    }

    func testPinBySHA256Fingerprint() async throws {
        let fingerprint = try runOpenSSL(["x509", "-in", server.caCertificatePath, "-noout", "-fingerprint", "-sha256"])
            .split(separator: "=").last.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) } ?? ""
        let challengePath = workspace.appending("challenge")
        try server.challenge.write(toFile: challengePath, atomically: false, encoding: .utf8)
        let config = try AgentConfig.parse("""
        state_dir = "\(workspace.appending("state"))"
        [[profile]]
        name = "fp"
        scep_url = "\(server.urlString)"
        ca_pin_sha256 = "\(fingerprint)"
        subject = "CN=fingerprint-pinned"
        key_storage = "software"
        [profile.challenge]
        source = "file"
        file = "\(challengePath)"
        """)
        guard case .installed = try await enroller(config).enroll(force: false) else { return XCTFail() }
    }

    // MARK: helpers

    private func runOpenSSL(_ arguments: [String]) throws -> String {
        let result = try ChildProcess.run(executable: "/usr/bin/openssl", arguments: arguments, timeout: 30)
        guard result.status.isSuccess else {
            throw TestSupportError(.processFailed, "openssl \(arguments.joined(separator: " ")): \(result.output)\(result.errorOutput)")
        }
        return result.output
    }

    private func assertOpenSSL(_ arguments: [String], contains expected: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let output = try runOpenSSL(arguments)
        XCTAssertTrue(output.contains(expected), output, file: file, line: line)
    }

    private func mode(of path: String) throws -> Int {
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        return (attributes[.posixPermissions] as? Int ?? 0) & 0o777
    }

    private func allFiles(under directory: String) throws -> [String] {
        guard let enumerator = FileManager.default.enumerator(atPath: directory) else { return [] }
        return enumerator.compactMap { $0 as? String }.map { directory + "/" + $0 }
            .filter { var isDirectory: ObjCBool = false; return FileManager.default.fileExists(atPath: $0, isDirectory: &isDirectory) && !isDirectory.boolValue }
    }
}

/// Collects log lines in memory so tests can look for leaks and warnings.
final class LogCapture: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []

    var text: String { lock.lock(); defer { lock.unlock() }; return lines.joined(separator: "\n") }

    var handler: LogHandler { CaptureHandler(capture: self) }

    fileprivate func append(_ line: String) { lock.lock(); lines.append(line); lock.unlock() }

    private struct CaptureHandler: LogHandler {
        let capture: LogCapture
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(level: Logger.Level, message: Logger.Message, metadata explicit: Logger.Metadata?,
                 source: String, file: String, function: String, line: UInt) {
            let merged = metadata.merging(explicit ?? [:]) { _, new in new }
            capture.append("\(level): \(message) \(merged)")
        }
    }
}
