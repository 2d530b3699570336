import CertStore
import Foundation
import Glibc
import TestSupport
import X509
import XCTest

@testable import SCEPTestSupport

/// A workspace for running the real binary against our SCEP test server: the pin file,
/// a state directory, and a challenge command that counts how often it ran (so a test
/// can tell whether a one-time challenge was spent).
final class TestServerWorkspace {
    let directory: TemporaryDirectory

    init(prefix: String) throws {
        directory = try TemporaryDirectory(prefix: prefix)
    }

    deinit { directory.remove() }

    func appending(_ component: String) -> String { directory.appending(component) }

    /// `<state>/device`.
    var profileDirectory: String { appending("state/device") }

    /// One profile `device` for `server` (a software key unless `keyStorage` says otherwise),
    /// with `extra` lines in the profile table.
    func config(for server: TestSCEPServer, keyStorage: String = "software", extra: [String] = []) throws -> String {
        try (try server.ca.certificate.serializeAsPEM().pemString + "\n").write(toFile: appending("ca.pem"), atomically: true, encoding: .utf8)
        let command = appending("challenge.sh")
        try "#!/bin/sh\necho spent >> \(appending("challenges"))\necho pw\n".write(toFile: command, atomically: true, encoding: .utf8)
        chmod(command, 0o755)
        return ([
            "state_dir = \"\(appending("state"))\"", "", "[[profile]]", "name = \"device\"",
            "scep_url = \"\(server.url)\"", "ca_pin_file = \"\(appending("ca.pem"))\"",
            "subject = \"CN=host01.example.com\"", "key_storage = \"\(keyStorage)\"",
        ] + extra + ["", "[profile.challenge]", "source = \"command\"", "command = [\"\(command)\"]"]).joined(separator: "\n") + "\n"
    }

    /// The profile's store, read-only.
    var store: ProfileStore { ProfileStore(readingFrom: profileDirectory) }

    /// The installed certificate (fails the test when there is none).
    func liveCertificate() throws -> Certificate {
        let generation = try XCTUnwrap(try store.liveGeneration())
        return try Certificate(pemEncoded: try store.readBundle(of: generation).certificatePEM)
    }

    /// The one profile of `status --json` under `config` (which must exit 0).
    func statusJSON(_ config: String) throws -> [String: Any] {
        let status = try AgentProcess.run(arguments: ["status", "--json"], config: config)
        XCTAssertEqual(status.exitCode, 0, status.transcript)
        return try XCTUnwrap((try status.jsonObject()["profiles"] as? [[String: Any]])?.first, status.transcript)
    }

    /// How often the challenge command ran.
    var challengesSpent: Int {
        ((try? String(contentsOfFile: appending("challenges"), encoding: .utf8)) ?? "").split(separator: "\n").count
    }
}
