import CertStore
import EnrollmentPlan
import Foundation
import Glibc
import SwiftASN1
import TPMKeys
import TestSupport
import X509
import XCTest

@testable import EnrollAgent
@testable import SCEPClient
@testable import SCEPTestSupport

/// Issue 8 through the real binary against our SCEP test server: RA trust, what the log
/// shows of server text, the hook's environment, core dumps, permission warnings.
final class TrustHardeningTests: XCTestCase {
    private var workspace: TestServerWorkspace!

    override func setUpWithError() throws {
        workspace = try TestServerWorkspace(prefix: "trust-hardening")
    }

    override func tearDown() { workspace = nil }

    private func config(for server: TestSCEPServer, extra: [String] = []) throws -> String {
        try workspace.config(for: server, extra: extra)
    }

    private var challengeSpent: Bool { workspace.challengesSpent > 0 }
    private var profileDirectory: String { workspace.profileDirectory }

    func testAnotherHostsCertificateAsRAStopsTheRunBeforeTheChallengeIsFetched() throws {
        let host = try TestPKI.enrolledHost()
        let server = try TestSCEPServer(ca: try TestPKI.ca(), configuration: .init(raCertificates: [host]))
        defer { server.stop() }
        let run = try AgentProcess.run(arguments: ["enroll"], config: try config(for: server))
        XCTAssertEqual(run.exitCode, 65, run.transcript)
        let fingerprint = PinnedCA.fingerprint(of: host.certificate)
        XCTAssertTrue(run.standardError.contains("ra_pin_sha256 = [\"\(fingerprint)\"]"), run.transcript)
        XCTAssertTrue(run.standardError.contains("host17.example.com"), run.transcript)
        XCTAssertFalse(challengeSpent, "a one-time challenge was fetched for a request that was never sent")
        XCTAssertEqual(server.pkiOperations.count, 0)
        XCTAssertNil(try ProfileStore(directory: profileDirectory).liveGeneration())

        // Pinned after checking it out of band, the same RA works.
        let pinned = try config(for: server, extra: ["ra_pin_sha256 = \"\(fingerprint.uppercased())\""])
        let second = try AgentProcess.run(arguments: ["enroll"], config: pinned)
        XCTAssertEqual(second.exitCode, 0, second.transcript)
        XCTAssertTrue(try XCTUnwrap(server.pkiOperations.first).recipient.matches(host.certificate))
    }

    /// A pending request on file is not ended by a FAILURE that another host's
    /// certificate signed: the state file stays as it was.
    func testAForgedFailureChangesNoState() throws {
        let host = try TestPKI.enrolledHost()
        let server = try TestSCEPServer(ca: try TestPKI.ca(), configuration: .init(
            raCertificates: [try TestPKI.combinedRA()], replySignerOverride: host, advertisedFirst: [host]),
            plan: [.certRep(.failure(.badRequest, text: "forged"))])
        defer { server.stop() }
        let text = try config(for: server)
        let run = try AgentProcess.run(arguments: ["enroll"], config: text)
        XCTAssertEqual(run.exitCode, 65, run.transcript)
        XCTAssertFalse(run.standardError.contains("refused the request"), "the forged FAILURE was believed:\n\(run.transcript)")
        let state = try ProfileStore(directory: profileDirectory).loadState()
        XCTAssertNotNil(state.phase.transaction, "the pending transaction was dropped on a forged reply")
        XCTAssertTrue(run.standardError.contains("warning: the server sent a certificate that is not used"), run.transcript)
    }

    /// A subject with a newline in a GetCACert certificate cannot forge a log line.
    func testServerTextCannotForgeALogLine() throws {
        let ca = try TestPKI.ca()
        // Issued by the rogue CA: it does not chain, so it is only ignored with a warning.
        let rogue = try TestPKI.rogue().issueRA(commonName: "rogue\r\ninfo: forged", digitalSignature: true, keyEncipherment: true)
        let server = try TestSCEPServer(ca: ca, configuration: .init(advertisedFirst: [rogue]))
        defer { server.stop() }
        let run = try AgentProcess.run(arguments: ["enroll"], config: try config(for: server))
        XCTAssertEqual(run.exitCode, 0, run.transcript)
        for line in run.standardError.split(separator: "\n") {
            XCTAssertFalse(line.hasPrefix("info: forged"), "a forged line: \(line)")
        }
        XCTAssertTrue(run.standardError.contains("rogue\\r\\ninfo: forged"), run.transcript)
    }

    /// The install log and `status` spell the serial the same way.
    func testTheSerialIsWrittenOneWay() throws {
        let server = try TestSCEPServer(ca: try TestPKI.ca())
        defer { server.stop() }
        let text = try config(for: server)
        let enroll = try AgentProcess.run(arguments: ["enroll"], config: text)
        XCTAssertEqual(enroll.exitCode, 0, enroll.transcript)
        let status = try AgentProcess.run(arguments: ["status", "--json"], config: text)
        let profiles = try XCTUnwrap(try status.jsonObject()["profiles"] as? [[String: Any]])
        let serial = try XCTUnwrap((profiles.first?["certificate"] as? [String: Any])?["serial"] as? String)
        XCTAssertTrue(enroll.standardError.contains("serial=\(serial)"), "status says \(serial):\n\(enroll.transcript)")
        XCTAssertTrue(serial.split(separator: ":").allSatisfy { $0.count == 2 }, serial)
    }

    /// post_install sees PATH, the ENROLL_AGENT_* variables and what hook_environment
    /// names — nothing else — and inherits a core size limit of 0 from the agent.
    func testTheHookGetsAMinimalEnvironmentAndNoCoreDumps() throws {
        let server = try TestSCEPServer(ca: try TestPKI.ca())
        defer { server.stop() }
        let hook = workspace.appending("hook.sh")
        try "#!/bin/sh\nenv > \(workspace.appending("hook-env"))\ncat /proc/$PPID/limits > \(workspace.appending("agent-limits"))\n"
            .write(toFile: hook, atomically: true, encoding: .utf8)
        chmod(hook, 0o755)
        let text = try config(for: server, extra: ["post_install = [\"\(hook)\"]", "hook_environment = [\"HTTPS_PROXY\", \"NOT_SET_ANYWHERE\"]"])
        let run = try AgentProcess.run(arguments: ["enroll"], config: text,
                                       environment: ["HTTPS_PROXY": "http://proxy.example:3128", "SECRET_TOKEN": "do-not-pass"])
        XCTAssertEqual(run.exitCode, 0, run.transcript)
        let names = Set(try String(contentsOfFile: workspace.appending("hook-env"), encoding: .utf8)
            .split(separator: "\n").compactMap { $0.split(separator: "=", maxSplits: 1).first.map(String.init) })
        // The shell adds PWD (and may add SHLVL / _); nothing of the agent's own environment.
        XCTAssertEqual(names.subtracting(["PWD", "SHLVL", "_", "OLDPWD"]),
                       ["PATH", "HTTPS_PROXY", "ENROLL_AGENT_PROFILE", "ENROLL_AGENT_CERTIFICATE", "ENROLL_AGENT_KEY", "ENROLL_AGENT_FULLCHAIN",
                        "ENROLL_AGENT_CERTIFICATE_USER_ID"])
        let limits = try String(contentsOfFile: workspace.appending("agent-limits"), encoding: .utf8)
        let core = try XCTUnwrap(limits.split(separator: "\n").first { $0.hasPrefix("Max core file size") })
        XCTAssertEqual(core.split(separator: " ", omittingEmptySubsequences: true).dropFirst(4).prefix(2), ["0", "0"], String(core))
    }

    /// Group- or world-writable files the agent runs or reads secrets from are warned
    /// about at every run, not only by check-config.
    func testWritableHookAndReadableSecretAreWarnedAboutAtRunTime() throws {
        let server = try TestSCEPServer(ca: try TestPKI.ca())
        defer { server.stop() }
        let hooks = workspace.appending("hooks")
        mkdir(hooks, 0o777)
        chmod(hooks, 0o777)
        let hook = hooks + "/hook.sh"
        try "#!/bin/sh\ntrue\n".write(toFile: hook, atomically: true, encoding: .utf8)
        chmod(hook, 0o775)
        let run = try AgentProcess.run(arguments: ["enroll"], config: try config(for: server, extra: ["post_install = [\"\(hook)\"]"]))
        XCTAssertEqual(run.exitCode, 0, run.transcript)
        XCTAssertTrue(run.standardError.contains("post_install program \(hook) can be changed by its group (mode 0775)"), run.transcript)
        XCTAssertTrue(run.standardError.contains("the directory \(hooks) above post_install program \(hook) can be changed by every user (mode 0777)"),
                      run.transcript)
    }
}

/// The pure parts: config keys, the hook environment, the permission audit.
final class TrustHardeningUnitTests: XCTestCase {
    private func profileText(_ lines: [String]) -> String {
        (["[[profile]]", "name = \"device\"", "scep_url = \"https://scep.example.com/scep\"",
          "ca_pin_sha256 = \"\(String(repeating: "ab", count: 32))\""] + lines
         + ["[profile.challenge]", "source = \"none\""]).joined(separator: "\n")
    }

    func testRAPinsParseAsStringOrListAndAreNormalized() throws {
        let upper = String(repeating: "CD", count: 32)
        let colons = stride(from: 0, to: 64, by: 2).map { _ in "EF" }.joined(separator: ":")
        let single = try AgentConfig.parse(profileText(["ra_pin_sha256 = \"\(upper)\""]))
        XCTAssertEqual(single.profiles[0].caPin.raSHA256Fingerprints, [upper.lowercased()])
        let list = try AgentConfig.parse(profileText(["ra_pin_sha256 = [\"\(upper)\", \"\(colons)\"]"]))
        XCTAssertEqual(list.profiles[0].caPin.raSHA256Fingerprints, [upper.lowercased(), String(repeating: "ef", count: 32)])
        XCTAssertThrowsError(try AgentConfig.parse(profileText(["ra_pin_sha256 = \"abc\""]))) { error in
            XCTAssertTrue("\(error)".contains("ra_pin_sha256"), "\(error)")
            XCTAssertTrue("\(error)".contains("64 hex digits"), "\(error)")
        }
    }

    func testHookEnvironmentNamesAreChecked() throws {
        let config = try AgentConfig.parse(profileText(["hook_environment = [\"HTTPS_PROXY\", \"no_proxy\"]"]))
        XCTAssertEqual(config.profiles[0].hookEnvironment, ["HTTPS_PROXY", "no_proxy"])
        XCTAssertThrowsError(try AgentConfig.parse(profileText(["hook_environment = [\"BAD-NAME\"]"]))) { error in
            XCTAssertTrue("\(error)".contains("expected an environment variable name"), "\(error)")
        }
    }

    func testHookEnvironmentScenarios() {
        let paths = (certificate: "/s/live/cert.pem", key: "/s/live/key.pem", fullchain: "/s/live/fullchain.pem")
        let inherited = ["PATH": "/usr/bin", "HOME": "/root", "NOTIFY_SOCKET": "/run/systemd/notify", "HTTPS_PROXY": "http://p:3128"]
        let environment = PostInstallHook.environment(inherited: inherited, passedThrough: ["HTTPS_PROXY", "UNSET"], profile: "device", paths: paths)
        XCTAssertEqual(environment, [
            "PATH": "/usr/bin", "HTTPS_PROXY": "http://p:3128", "ENROLL_AGENT_PROFILE": "device",
            "ENROLL_AGENT_CERTIFICATE": "/s/live/cert.pem", "ENROLL_AGENT_KEY": "/s/live/key.pem",
            "ENROLL_AGENT_FULLCHAIN": "/s/live/fullchain.pem",
        ])
        let noPath = PostInstallHook.environment(inherited: [:], passedThrough: [], profile: "device", paths: paths)
        XCTAssertEqual(noPath["PATH"], PostInstallHook.defaultPath)
        XCTAssertNil(noPath["ENROLL_AGENT_CERTIFICATE_USER_ID"])
        let withID = PostInstallHook.environment(inherited: [:], passedThrough: [], profile: "device", paths: paths,
                                                 certificateUserID: "X509:<I>CN=CA<SR>0102")
        XCTAssertEqual(withID["ENROLL_AGENT_CERTIFICATE_USER_ID"], "X509:<I>CN=CA<SR>0102")
    }

    func testPermissionAuditScenarios() throws {
        let directory = try TemporaryDirectory(prefix: "audit")
        chmod(directory.path, 0o755)
        func file(_ name: String, mode: mode_t) throws -> String {
            let path = directory.appending(name)
            try "x".write(toFile: path, atomically: true, encoding: .utf8)
            chmod(path, mode)
            return path
        }
        let tidy = try file("tidy", mode: 0o600)
        XCTAssertEqual(FilePermissionAudit.problems(path: tidy, what: "token file", secret: true).filter { $0.contains(tidy) && !$0.contains("directory /") }, [])
        let groupWritable = try file("gw", mode: 0o620)
        XCTAssertTrue(FilePermissionAudit.problems(path: groupWritable, what: "token file", secret: true)
            .contains { $0.contains("can be changed by its group (mode 0620)") })
        let readable = try file("readable", mode: 0o644)
        XCTAssertTrue(FilePermissionAudit.problems(path: readable, what: "token file", secret: true)
            .contains { $0.contains("readable by every user") })
        XCTAssertFalse(FilePermissionAudit.problems(path: readable, what: "post_install program", secret: false)
            .contains { $0.contains("readable") }, "a program may be readable")
        // A sticky world-writable directory (/tmp) is not reported; a plain one is.
        let sticky = directory.appending("sticky")
        mkdir(sticky, 0o1777)
        chmod(sticky, 0o1777)
        let inSticky = sticky + "/f"
        try "x".write(toFile: inSticky, atomically: true, encoding: .utf8)
        chmod(inSticky, 0o600)
        XCTAssertFalse(FilePermissionAudit.problems(path: inSticky, what: "f", secret: true).contains { $0.contains(sticky + " ") })
        chmod(sticky, 0o777)
        XCTAssertTrue(FilePermissionAudit.problems(path: inSticky, what: "f", secret: true)
            .contains { $0.contains("the directory \(sticky) above f \(inSticky) can be changed by every user") })
        // Owned by someone else.
        let foreign = try file("foreign", mode: 0o600)
        chown(foreign, 65534, 65534)
        XCTAssertTrue(FilePermissionAudit.problems(path: foreign, what: "f", secret: true, ownUID: 0)
            .contains { $0.contains("belongs to uid 65534") })
    }
}
