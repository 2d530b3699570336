import XCTest
@testable import EnrollAgent

final class ConfigEnvironmentTests: XCTestCase {
    private var directory: URL!

    /// A small self-signed certificate, only its PEM shape matters here.
    private static let certificatePEM = """
    -----BEGIN CERTIFICATE-----
    MIIBdzCCAR2gAwIBAgIUOpsaODPFT5jzydDxbU0ggPOsFtUwCgYIKoZIzj0EAwIw
    ETEPMA0GA1UEAwwGdGVzdENBMB4XDTI0MDEwMTAwMDAwMFoXDTM0MDEwMTAwMDAw
    MFowETEPMA0GA1UEAwwGdGVzdENBMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE
    -----END CERTIFICATE-----
    """

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("config-env-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    @discardableResult
    private func write(_ name: String, _ contents: String, mode: Int) throws -> String {
        let path = directory.appendingPathComponent(name).path
        try contents.write(toFile: path, atomically: false, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
        return path
    }

    private func config(_ profileLines: String, challenge: String) throws -> AgentConfig {
        try AgentConfig.parse("""
        state_dir = "\(directory.path)"
        [[profile]]
        name = "device"
        scep_url = "https://scep.example.com/scep"
        key_storage = "software"
        \(profileLines)
        [profile.challenge]
        \(challenge)
        """, path: "config.toml")
    }

    func testAllGoodHasNoProblems() throws {
        let pin = try write("pin.pem", Self.certificatePEM, mode: 0o644)
        let token = try write("token", "secret-token\n", mode: 0o600)
        let hook = try write("hook.sh", "#!/bin/sh\n", mode: 0o755)
        let config = try config("""
        ca_pin_file = "\(pin)"
        tls_ca_file = "\(pin)"
        post_install = ["\(hook)", "arg"]
        """, challenge: """
        source = "endpoint"
        url = "https://mdm.example.com/c"
        token_file = "\(token)"
        """)
        XCTAssertEqual(config.validateEnvironment(), [])
    }

    func testEveryEnvironmentProblemNamesKeyAndLine() throws {
        let notPEM = try write("pin.der", "not a certificate", mode: 0o644)
        let badBase64 = try write("bad.pem", "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n", mode: 0o644)
        let challenge = try write("challenge", "secret", mode: 0o644)
        let hook = try write("hook.sh", "#!/bin/sh\n", mode: 0o644)
        let config = try config("""
        ca_pin_file = "\(notPEM)"
        tls_ca_file = "\(badBase64)"
        post_install = ["\(hook)"]
        """, challenge: """
        source = "file"
        file = "\(challenge)"
        """)
        let problems = config.validateEnvironment()
        XCTAssertEqual(problems.map(\.key), [
            "profile.device.ca_pin_file", "profile.device.tls_ca_file",
            "profile.device.challenge.file", "profile.device.post_install",
        ])
        XCTAssertEqual(problems.map(\.line), [6, 7, 11, 8])
        XCTAssertTrue(problems[0].message.contains("holds no PEM certificate"), problems[0].message)
        XCTAssertTrue(problems[1].message.contains("not valid base64 DER"), problems[1].message)
        XCTAssertTrue(problems[2].message.contains("readable by every user (mode 0644)"), problems[2].message)
        XCTAssertTrue(problems[3].message.contains("is not executable"), problems[3].message)
        XCTAssertEqual(problems[2].formatted(path: "config.toml"),
                       "config.toml:11: profile \"device\": challenge.file: challenge file \(challenge) is readable by every user (mode 0644); it holds a secret: chmod 0600 or 0640")
    }

    func testMissingFiles() throws {
        let missing = directory.appendingPathComponent("missing").path
        let config = try config("ca_pin_file = \"\(missing).pem\"", challenge: """
        source = "endpoint"
        url = "https://mdm.example.com/c"
        token_file = "\(missing)-token"
        """)
        let problems = config.validateEnvironment()
        XCTAssertEqual(problems.map(\.key), ["profile.device.ca_pin_file", "profile.device.challenge.token_file"])
        XCTAssertEqual(problems.map(\.message), [
            "\(missing).pem does not exist", "token file \(missing)-token does not exist",
        ])
    }

    func testEmptySecretAndCommandChecks() throws {
        let emptyToken = try write("token", "", mode: 0o600)
        let config = try config("ca_pin_sha256 = \"\(String(repeating: "ab", count: 32))\"", challenge: """
        source = "endpoint"
        url = "https://mdm.example.com/c"
        token_file = "\(emptyToken)"
        """)
        XCTAssertEqual(config.validateEnvironment().map(\.message), ["token file \(emptyToken) is empty"])

        let commandConfig = try self.config("ca_pin_sha256 = \"\(String(repeating: "ab", count: 32))\"", challenge: """
        source = "command"
        command = ["\(directory.path)"]
        """)
        XCTAssertEqual(commandConfig.validateEnvironment().map(\.message), ["\(directory.path) is not a regular file"])
    }

    func testMissingTPMDevice() throws {
        let base = """
        state_dir = "\(directory.path)"
        [[profile]]
        name = "device"
        scep_url = "https://scep.example.com/scep"
        ca_pin_sha256 = "\(String(repeating: "ab", count: 32))"
        tcti = "device:\(directory.path)/no-tpm"
        """
        let required = try AgentConfig.parse(base + "\nkey_storage = \"tpm\"\n[profile.challenge]\nsource = \"none\"")
        let problems = required.validateEnvironment()
        XCTAssertEqual(problems.map(\.severity), [.error])
        XCTAssertEqual(problems.first?.key, "profile.device.tcti")
        XCTAssertEqual(problems.first?.line, 6)

        let preferred = try AgentConfig.parse(base + "\n[profile.challenge]\nsource = \"none\"")
        XCTAssertEqual(preferred.validateEnvironment().map(\.severity), [.warning])
    }

    func testStateDirectoryThatIsAFile() throws {
        let file = try write("state", "", mode: 0o644)
        let config = try AgentConfig.parse("""
        state_dir = "\(file)"
        [[profile]]
        name = "device"
        scep_url = "https://scep.example.com/scep"
        ca_pin_sha256 = "\(String(repeating: "ab", count: 32))"
        key_storage = "software"
        [profile.challenge]
        source = "none"
        """)
        XCTAssertEqual(config.validateEnvironment().map(\.key), ["state_dir"])
    }

    func testCheckReportCombinesEverything() throws {
        let configPath = try write("config.toml", """
        [[profile]]
        name = "device"
        scep_url = "https://scep.example.com/scep"
        ca_pin_file = "\(directory.path)/absent.pem"
        key_storage = "software"
        [profile.challenge]
        source = "endpoint"
        url = "http://127.0.0.1:9000/c"
        """, mode: 0o644)
        let report = ConfigCheckReport.run(path: configPath)
        XCTAssertNotNil(report.config)
        XCTAssertFalse(report.isValid)
        XCTAssertEqual(report.lines, [
            "\(configPath):4: profile \"device\": ca_pin_file: \(directory.path)/absent.pem does not exist",
            "\(configPath):8: warning: profile \"device\": challenge.url: plain http to a loopback endpoint: the challenge is not encrypted in transit (acceptable for a local helper only)",
        ])

        let invalid = try write("bad.toml", "key_bits = 1\n", mode: 0o644)
        let invalidReport = ConfigCheckReport.run(path: invalid)
        XCTAssertNil(invalidReport.config)
        XCTAssertEqual(invalidReport.errorCount, 2)

        let unreadable = ConfigCheckReport.run(path: directory.appendingPathComponent("none.toml").path)
        XCTAssertFalse(unreadable.isValid)
        XCTAssertEqual(unreadable.lines.count, 1)
        XCTAssertTrue(unreadable.lines[0].contains("cannot read the configuration: no such file"))
    }

    func testPEMBlocks() {
        guard case .success(let blocks) = PEMCertificateBlocks.derCertificates(in: Self.certificatePEM + "\n" + Self.certificatePEM) else {
            return XCTFail("expected two certificates")
        }
        XCTAssertEqual(blocks.count, 2)
        XCTAssertEqual(blocks.first?.first, 0x30)
        guard case .failure(let error) = PEMCertificateBlocks.derCertificates(in: "-----BEGIN CERTIFICATE-----\nMIIB\n") else {
            return XCTFail("expected a failure")
        }
        XCTAssertTrue(error.message.contains("has no -----END CERTIFICATE----- line"))
    }
}
