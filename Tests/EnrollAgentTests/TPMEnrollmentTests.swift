import Foundation
import TestSupport
import XCTest

/// End to end: the real `enroll-agent` binary enrolls against the real
/// micromdm scepserver with its key born inside swtpm, and ordinary OpenSSL
/// programs (tpm2-openssl provider) then use that key.
///
/// Every test starts its own swtpm (unix socket) and scepserver. swtpm serves
/// one client at a time, so the agent has always exited before openssl or
/// tpm2-tools touch the TPM. Missing peers skip the test unless `CI=true`,
/// where they fail it (see `PeerUnavailable`).
final class TPMEnrollmentTests: XCTestCase {
    /// The UPN the profile's template fills in; the issued subject is `CN=<it>,O=Example`.
    private let userPrincipalName = "host01@example.com"

    // MARK: - key_storage = "tpm"

    func testTPMKeyEnrollsAndIsReadableByTheTPM2OpenSSLProvider() throws {
        let tpm = try EnrollmentPeers.startSwtpm()
        defer { tpm.stop() }
        let fixture = try EnrollmentFixture()
        let openssl = try EnrollmentPeers.require("openssl")

        let enroll = try fixture.run(["enroll"], profile: fixture.profile(keyStorage: "tpm", tcti: tpm.tcti))
        XCTAssertEqual(enroll.exitCode, 0, enroll.transcript)
        enroll.assertDoesNotLeak(fixture.challenge)

        let keyPEM = try fixture.readLive("key.pem")
        XCTAssertTrue(keyPEM.hasPrefix("-----BEGIN TSS2 PRIVATE KEY-----"), "live/key.pem is not a TSS2 key:\n\(keyPEM.prefix(80))")
        XCTAssertEqual(try fixture.liveFileMode("key.pem"), 0o600)

        let status = try fixture.run(["status", "--json"], profile: fixture.profile(keyStorage: "tpm", tcti: tpm.tcti))
        XCTAssertEqual(status.exitCode, 0, status.transcript)
        status.assertDoesNotLeak(fixture.challenge)
        let profile = try EnrollmentFixture.onlyProfile(of: status)
        XCTAssertEqual(profile["keyStorage"] as? String, "tpm", status.standardOutput)
        XCTAssertEqual(profile["state"] as? String, "valid", status.standardOutput)

        // The agent has exited: the TPM is free, and it left no object loaded.
        XCTAssertEqual(try EnrollmentPeers.transientHandles(tcti: tpm.tcti), [],
                       "the agent left transient objects loaded in the TPM")

        // The provider's view of the key file must be the certificate's key.
        let keyPublic = try EnrollmentPeers.check(openssl, [
            "pkey", "-provider", "tpm2", "-provider", "default", "-in", fixture.livePath("key.pem"), "-pubout"],
            environment: tpm.toolEnvironment)
        let certificatePublic = try EnrollmentPeers.check(openssl, [
            "x509", "-in", fixture.livePath("cert.pem"), "-pubkey", "-noout"])
        XCTAssertFalse(keyPublic.output.isEmpty)
        XCTAssertEqual(keyPublic.output.trimmingCharacters(in: .whitespacesAndNewlines),
                       certificatePublic.output.trimmingCharacters(in: .whitespacesAndNewlines),
                       "the TPM key's public key differs from the certificate's")

        let verify = try EnrollmentPeers.check(openssl, [
            "verify", "-CAfile", fixture.server.caCertificatePath, fixture.livePath("cert.pem")])
        XCTAssertTrue(verify.output.contains(": OK"), verify.output)
    }

    func testTPMKeyAuthenticatesAMutualTLSHandshakeWithOpenSSL() throws {
        let tpm = try EnrollmentPeers.startSwtpm()
        defer { tpm.stop() }
        let fixture = try EnrollmentFixture()
        let openssl = try EnrollmentPeers.require("openssl")

        let enroll = try fixture.run(["enroll"], profile: fixture.profile(keyStorage: "tpm", tcti: tpm.tcti))
        XCTAssertEqual(enroll.exitCode, 0, enroll.transcript)
        enroll.assertDoesNotLeak(fixture.challenge)

        let tls = try MutualTLSCheck(directory: fixture.directory, openssl: openssl,
                                     clientCAPath: fixture.server.caCertificatePath)
        let outcome = try tls.connect(certificatePath: fixture.livePath("cert.pem"),
                                      keyPath: fixture.livePath("key.pem"), tpm: tpm)

        XCTAssertEqual(outcome.client.status, .exited(0), outcome.transcript)
        XCTAssertTrue(outcome.client.output.contains("Verify return code: 0 (ok)"), outcome.transcript)
        // The -www page is only served after a complete handshake; it shows
        // the client certificate the server accepted.
        XCTAssertTrue(outcome.client.output.contains("HTTP/1.0 200 ok"), outcome.transcript)
        XCTAssertTrue(outcome.client.output.contains("Client certificate"), outcome.transcript)
        // RFC 4514 lists the most specific RDN first; OpenSSL prints in DER order.
        XCTAssertTrue(outcome.client.output.contains("Subject: O=Example, CN=\(userPrincipalName)"), outcome.transcript)
        // Server side: it verified our certificate against the SCEP CA (-Verify 1 demands one).
        XCTAssertEqual(outcome.serverStatus, .exited(0), outcome.transcript)
        XCTAssertTrue(outcome.serverOutput.contains("depth=0 O = Example, CN = \(userPrincipalName)"), outcome.transcript)
        XCTAssertFalse(outcome.serverOutput.contains("verify error"), outcome.transcript)
        XCTAssertTrue(outcome.serverOutput.contains("1 server accepts that finished"), outcome.transcript)
    }

    func testRSA3072KeyInTheTPMEnrolls() throws {
        let tpm = try EnrollmentPeers.startSwtpm()
        defer { tpm.stop() }
        let fixture = try EnrollmentFixture()
        let openssl = try EnrollmentPeers.require("openssl")

        let profile = fixture.profile(keyStorage: "tpm", tcti: tpm.tcti, keyBits: 3072)
        let enroll = try fixture.run(["enroll"], profile: profile)
        XCTAssertEqual(enroll.exitCode, 0, enroll.transcript)
        enroll.assertDoesNotLeak(fixture.challenge)

        XCTAssertTrue(try fixture.readLive("key.pem").hasPrefix("-----BEGIN TSS2 PRIVATE KEY-----"))
        let text = try EnrollmentPeers.check(openssl, ["x509", "-in", fixture.livePath("cert.pem"), "-noout", "-text"])
        XCTAssertTrue(text.output.contains("Public-Key: (3072 bit)"), text.output)
        let keyText = try EnrollmentPeers.check(openssl, [
            "pkey", "-provider", "tpm2", "-provider", "default", "-in", fixture.livePath("key.pem"), "-pubout", "-text_pub", "-noout"],
            environment: tpm.toolEnvironment)
        XCTAssertTrue(keyText.output.contains("3072 bit"), keyText.output)

        let status = try fixture.run(["status", "--json"], profile: profile)
        XCTAssertEqual(try EnrollmentFixture.onlyProfile(of: status)["keyStorage"] as? String, "tpm", status.transcript)
    }

    // MARK: - No TPM

    func testTPMPreferredFallsBackToASoftwareKeyLoudlyWhenNoTPMAnswers() throws {
        let fixture = try EnrollmentFixture()
        let missingTCTI = "swtpm:path=\(fixture.directory.appending("no-tpm-here.sock"))"
        let profile = fixture.profile(keyStorage: "tpm-preferred", tcti: missingTCTI)

        let enroll = try fixture.run(["enroll"], profile: profile)
        XCTAssertEqual(enroll.exitCode, 0, enroll.transcript)
        enroll.assertDoesNotLeak(fixture.challenge)
        let warning = enroll.standardError.split(separator: "\n").first { $0.hasPrefix("warning") && $0.contains(missingTCTI) }
        XCTAssertNotNil(warning, "no warning naming the TCTI:\n\(enroll.transcript)")
        XCTAssertTrue(warning?.lowercased().contains("software") ?? false, "the warning does not say software:\n\(enroll.transcript)")

        let keyPEM = try fixture.readLive("key.pem")
        XCTAssertTrue(keyPEM.hasPrefix("-----BEGIN PRIVATE KEY-----"), "expected a PKCS#8 software key:\n\(keyPEM.prefix(80))")
        XCTAssertEqual(try fixture.liveFileMode("key.pem"), 0o600)

        let json = try fixture.run(["status", "--json"], profile: profile)
        XCTAssertEqual(json.exitCode, 0, json.transcript)
        XCTAssertEqual(try EnrollmentFixture.onlyProfile(of: json)["keyStorage"] as? String, "software", json.transcript)
        let text = try fixture.run(["status"], profile: profile)
        XCTAssertEqual(text.exitCode, 0, text.transcript)
        let storageLine = text.standardOutput.split(separator: "\n").first { $0.contains("key storage") }
        XCTAssertTrue(storageLine?.contains("software") ?? false, text.transcript)
        json.assertDoesNotLeak(fixture.challenge)
        text.assertDoesNotLeak(fixture.challenge)
    }

    /// reuse_key never keeps a software key once key_storage = "tpm": the renewal makes
    /// a TPM key and says why.
    func testReuseKeyUnderATPMPolicyReplacesAStoredSoftwareKey() throws {
        let tpm = try EnrollmentPeers.startSwtpm()
        defer { tpm.stop() }
        let fixture = try EnrollmentFixture()
        var software = fixture.profile(keyStorage: "software")
        software.extraLines = ["reuse_key = true", "renewal_mode = \"pkcsreq\""]
        let enroll = try fixture.run(["enroll"], profile: software)
        XCTAssertEqual(enroll.exitCode, 0, enroll.transcript)
        XCTAssertTrue(try fixture.readLive("key.pem").hasPrefix("-----BEGIN PRIVATE KEY-----"))

        var tpmPolicy = fixture.profile(keyStorage: "tpm", tcti: tpm.tcti)
        tpmPolicy.extraLines = software.extraLines
        let renew = try fixture.run(["renew", "--force"], profile: tpmPolicy)
        XCTAssertEqual(renew.exitCode, 0, renew.transcript)
        XCTAssertTrue(try fixture.readLive("key.pem").hasPrefix("-----BEGIN TSS2 PRIVATE KEY-----"),
                      "a software key was reused under key_storage = \"tpm\":\n\(renew.transcript)")
        XCTAssertTrue(renew.standardError.contains("warning:"), renew.transcript)
    }

    func testTPMRequiredWithoutATPMFailsWithExit71AndInstallsNothing() throws {
        let fixture = try EnrollmentFixture()
        let socket = fixture.directory.appending("no-tpm-here.sock")
        let missingTCTI = "swtpm:path=\(socket)"

        let enroll = try fixture.run(["enroll"], profile: fixture.profile(keyStorage: "tpm", tcti: missingTCTI))
        XCTAssertEqual(enroll.exitCode, 71, enroll.transcript)
        enroll.assertDoesNotLeak(fixture.challenge)
        let errorLine = enroll.standardError.split(separator: "\n").last { $0.hasPrefix("error:") }
        XCTAssertNotNil(errorLine, enroll.transcript)
        XCTAssertTrue(errorLine?.contains(missingTCTI) ?? false, "the error does not name the TCTI:\n\(enroll.transcript)")
        XCTAssertTrue(errorLine?.contains("\(socket) does not exist") ?? false, "the error does not give the cause:\n\(enroll.transcript)")

        XCTAssertFalse(fixture.exists("live"), "a live generation was installed without a key")
        XCTAssertFalse(fixture.exists("pending/key.pem"), "a pending key was left behind")
        let generations = (try? FileManager.default.contentsOfDirectory(atPath: fixture.profilePath("generations"))) ?? []
        XCTAssertEqual(generations, [], "generations were written")
    }
}

// MARK: - Fixture

/// A scepserver with a fresh CA, a 0600 challenge file holding its challenge,
/// and a state directory, all in one temporary directory.
final class EnrollmentFixture {
    let server: SCEPServerProcess
    let directory: TemporaryDirectory
    let stateDirectory: String
    let challengePath: String
    var challenge: String { server.challenge }

    init() throws {
        server = try EnrollmentPeers.skippingUnlessCI { try SCEPServerProcess.start() }
        directory = try TemporaryDirectory(prefix: "tpm-enrollment")
        stateDirectory = directory.appending("state")
        challengePath = directory.appending("challenge")
        try AgentTestFiles.writeSecret(server.challenge, to: challengePath)
    }

    deinit {
        server.stop()
        directory.remove()
    }

    func profile(keyStorage: String, tcti: String? = nil, keyBits: Int? = nil) -> AgentTestProfile {
        var profile = AgentTestProfile(scepURL: server.urlString, caPinFile: server.caCertificatePath,
                                       challengeFile: challengePath)
        profile.keyStorage = keyStorage
        profile.tcti = tcti
        profile.keyBits = keyBits
        return profile
    }

    func run(_ arguments: [String], profile: AgentTestProfile) throws -> AgentRun {
        try AgentProcess.run(arguments: arguments, config: profile.configText(stateDirectory: stateDirectory))
    }

    /// `<state>/device/<relative>`.
    func profilePath(_ relative: String) -> String { "\(stateDirectory)/device/\(relative)" }

    /// `<state>/device/live/<name>`: the contract path external programs use.
    func livePath(_ name: String) -> String { profilePath("live/\(name)") }

    func readLive(_ name: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: livePath(name)) else {
            throw AgentProcessError("no file \(livePath(name))")
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// Permission bits of the file behind `live/<name>` (symlinks followed).
    func liveFileMode(_ name: String) throws -> mode_t {
        var info = stat()
        guard stat(livePath(name), &info) == 0 else { throw AgentProcessError("cannot stat \(livePath(name))") }
        return info.st_mode & 0o7777
    }

    /// Whether anything (a dangling symlink included) is at `<state>/device/<relative>`.
    func exists(_ relative: String) -> Bool {
        var info = stat()
        return lstat(profilePath(relative), &info) == 0
    }

    /// The one profile of a `status --json` document.
    static func onlyProfile(of status: AgentRun) throws -> [String: Any] {
        let profiles = try status.jsonObject()["profiles"] as? [[String: Any]] ?? []
        guard profiles.count == 1, let profile = profiles.first else {
            throw AgentProcessError("expected one profile in status --json:\n\(status.transcript)")
        }
        return profile
    }
}

// MARK: - Mutual TLS with openssl s_server / s_client

/// `openssl s_server -Verify 1` trusting the SCEP CA for client certificates,
/// and `openssl s_client -provider tpm2` authenticating with the TPM key.
///
/// Two accommodations for swtpm, which has **no resource manager and three
/// object slots** (a kernel /dev/tpmrm0 needs neither):
/// - tpm2-openssl also offers SHA-2 digests and signature *verification*
///   computed in the TPM; TLS keeps several hash contexts alive and the
///   provider duplicates them inside the TPM, which runs out of object memory
///   (0x902). A config file sets default properties that prefer the TPM's
///   signature (so our key signs in the TPM) and the default provider's
///   digests and ciphers.
/// - the server's certificate is Ed25519 under its own CA: tpm2-openssl has
///   no Ed25519, so the client verifies the server in software instead of
///   loading an RSA public key plus hash sequences into the TPM.
struct MutualTLSCheck {
    let directory: TemporaryDirectory
    let openssl: String
    /// The CA that issued client certificates (the SCEP CA).
    let clientCAPath: String

    struct Outcome {
        let client: ChildProcessResult
        let serverStatus: ChildExitStatus?
        let serverOutput: String
        var transcript: String {
            """
            s_client → \(client.status)
            \(client.output)\(client.errorOutput)
            --- s_server (\(serverStatus.map { "\($0)" } ?? "running")) ---
            \(serverOutput)
            """
        }
    }

    /// Makes the server CA and certificate, starts s_server for one
    /// connection, runs s_client with the TPM key and returns both sides.
    func connect(certificatePath: String, keyPath: String, tpm: SwtpmProcess) throws -> Outcome {
        let serverCA = try makeServerCertificate()
        let requestPath = directory.appending("http-request")
        try Data("GET / HTTP/1.0\r\n\r\n".utf8).write(to: URL(fileURLWithPath: requestPath))
        let configPath = directory.appending("tpm2-openssl.cnf")
        try Data(Self.providerPreferences.utf8).write(to: URL(fileURLWithPath: configPath))

        let (server, port) = try startServer()
        defer { server.terminate(gracePeriod: 2) }
        // s_client reads the request from stdin; ChildProcess gives /dev/null,
        // so a shell redirects it. -ign_eof: keep reading after the request
        // until the server closes (HTTP/1.0).
        let client = try ChildProcess.run(
            executable: "/bin/sh",
            arguments: ["-c", "exec \"$0\" \"$@\" < \"$HTTP_REQUEST_FILE\"", openssl, "s_client",
                        "-provider", "tpm2", "-provider", "default",
                        "-connect", "127.0.0.1:\(port)", "-cert", certificatePath, "-key", keyPath,
                        "-CAfile", serverCA, "-ign_eof"],
            extraEnvironment: tpm.toolEnvironment.merging(
                ["HTTP_REQUEST_FILE": requestPath, "OPENSSL_CONF": configPath]) { _, new in new },
            timeout: 60)
        let serverStatus = server.wait(timeout: 10)
        return Outcome(client: client, serverStatus: serverStatus, serverOutput: server.readOutput())
    }

    /// Prefer tpm2-openssl's signatures (our key), everything else from the
    /// default provider (see the type's comment).
    static let providerPreferences = """
        openssl_conf = openssl_init
        [openssl_init]
        alg_section = evp_properties
        [evp_properties]
        default_properties = "?tpm2.signature,?tpm2.digest!=yes,?tpm2.cipher!=yes"

        """

    /// An Ed25519 CA and a server certificate for 127.0.0.1; returns the CA path.
    private func makeServerCertificate() throws -> String {
        let ca = directory.appending("server-ca.pem")
        let caKey = directory.appending("server-ca.key")
        let csr = directory.appending("server.csr")
        let extensions = directory.appending("server.ext")
        try Data("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n".utf8)
            .write(to: URL(fileURLWithPath: extensions))
        try EnrollmentPeers.check(openssl, ["req", "-x509", "-newkey", "ed25519", "-nodes", "-keyout", caKey,
                                            "-subj", "/CN=mTLS test server CA", "-days", "1", "-out", ca])
        try EnrollmentPeers.check(openssl, ["req", "-new", "-newkey", "ed25519", "-nodes",
                                            "-keyout", directory.appending("server.key"),
                                            "-subj", "/CN=127.0.0.1", "-out", csr])
        try EnrollmentPeers.check(openssl, ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", caKey,
                                            "-set_serial", "1", "-days", "1", "-extfile", extensions,
                                            "-out", directory.appending("server.pem")])
        return ca
    }

    /// s_server on a free loopback port, once it prints ACCEPT. A port taken
    /// between picking and binding makes it exit; then another is tried.
    private func startServer() throws -> (ChildProcess, UInt16) {
        var lastOutput = ""
        for attempt in 1...3 {
            let port = try SCEPServerProcess.freeLoopbackPort()
            let server = try ChildProcess(
                executable: openssl,
                arguments: ["s_server", "-accept", "127.0.0.1:\(port)",
                            "-cert", directory.appending("server.pem"), "-key", directory.appending("server.key"),
                            "-CAfile", clientCAPath, "-Verify", "1", "-www", "-naccept", "1"],
                outputPath: directory.appending("s_server-\(attempt).log"))
            let deadline = Date(timeIntervalSinceNow: 10)
            while Date() < deadline, server.isRunning, !server.readOutput().contains("ACCEPT") {
                usleep(20_000)
            }
            if server.isRunning, server.readOutput().contains("ACCEPT") { return (server, port) }
            lastOutput = server.readOutput()
            server.terminate(gracePeriod: 2)
        }
        throw AgentProcessError("openssl s_server did not start listening: \(lastOutput)")
    }
}

// MARK: - Peers

/// swtpm, scepserver and the tools; a missing one skips the test unless `CI=true`.
enum EnrollmentPeers {
    static func startSwtpm() throws -> SwtpmProcess {
        try skippingUnlessCI { try SwtpmProcess.start() }
    }

    static func require(_ binary: String) throws -> String {
        try skippingUnlessCI { try PeerRequirement.require(binary: binary) }
    }

    /// Runs `body`, turning a missing peer into XCTSkip outside CI (in CI the
    /// `PeerUnavailable` propagates and fails the test).
    static func skippingUnlessCI<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let missing as PeerUnavailable where missing.maySkip {
            throw XCTSkip(missing.description)
        }
    }

    /// Runs a tool; throws with its output when it fails.
    @discardableResult
    static func check(_ executable: String, _ arguments: [String],
                      environment: [String: String] = [:]) throws -> ChildProcessResult {
        let result = try ChildProcess.run(executable: executable, arguments: arguments,
                                          extraEnvironment: environment, timeout: 60)
        guard result.status.isSuccess else {
            throw AgentProcessError("""
                \(executable) \(arguments.joined(separator: " ")) failed (\(result.status)): \
                \(result.errorOutput)\(result.output)
                """)
        }
        return result
    }

    /// Transient handles loaded in the TPM, read by tpm2_getcap (an independent client).
    static func transientHandles(tcti: String) throws -> [String] {
        let result = try check(try require("tpm2_getcap"), ["-T", tcti, "handles-transient"])
        return result.output.split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { $0.hasPrefix("- 0x") }
    }
}
