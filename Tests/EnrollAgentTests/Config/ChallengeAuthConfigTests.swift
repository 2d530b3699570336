import Foundation
import Glibc
import TestSupport
import XCTest

@testable import EnrollAgent

/// `[profile.challenge]` of the endpoint source: `auth`, `username`, `password_file`,
/// `format`, their defaults and the combinations check-config refuses.
final class ChallengeAuthConfigTests: XCTestCase {
    /// The challenge table starts on line 6; its first key is on line 7.
    private func profile(_ challenge: String) -> String {
        """
        [[profile]]
        name = "device"
        scep_url = "https://scep.example.com/scep"
        ca_pin_sha256 = "3f9a000000000000000000000000000000000000000000000000000000000001"

        [profile.challenge]
        source = "endpoint"
        url = "https://ndes.example.com/certsrv/mscep_admin/"
        \(challenge)
        """
    }

    private func endpoint(_ challenge: String, file: StaticString = #filePath, line: UInt = #line) throws -> EndpointChallenge {
        let config = try AgentConfig.parse(profile(challenge))
        guard case .endpoint(let endpoint)? = config.profiles.first?.challenge else {
            XCTFail("not an endpoint source", file: file, line: line)
            throw NotAnEndpoint()
        }
        return endpoint
    }

    private func problems(_ challenge: String) -> [ConfigProblem] {
        switch AgentConfig.decode(profile(challenge), path: "config.toml") {
        case .success(let config):
            XCTFail("expected problems, got \(config)")
            return []
        case .failure(let error):
            return error.problems
        }
    }

    func testDefaults() throws {
        let bare = try endpoint("")
        XCTAssertEqual(bare.auth, .noCredentials)
        XCTAssertEqual(bare.format, .json)
        // token_file alone means bearer, as before auth existed.
        XCTAssertEqual(try endpoint("token_file = \"/etc/enroll-agent/device-token\"").auth,
                       .bearer(tokenFile: "/etc/enroll-agent/device-token"))
        XCTAssertEqual(try endpoint("auth = \"bearer\"\ntoken_file = \"/t\"").auth, .bearer(tokenFile: "/t"))
    }

    func testOktaGenericDynamicAndNDES() throws {
        let okta = try endpoint("""
            auth = "basic"
            username = "okta-scep-user"
            password_file = "/etc/enroll-agent/okta-challenge-password"
            format = "ndes-admin"
            """)
        XCTAssertEqual(okta.auth, .basic(username: "okta-scep-user", passwordFile: "/etc/enroll-agent/okta-challenge-password"))
        XCTAssertEqual(okta.format, .ndesAdmin)

        let ndes = try endpoint("""
            auth = "ntlm"
            username = 'EXAMPLE\\ndes-svc'
            password_file = "/etc/enroll-agent/ndes-password"
            format = "ndes-admin"
            """)
        XCTAssertEqual(ndes.auth, .ntlm(username: "EXAMPLE\\ndes-svc", passwordFile: "/etc/enroll-agent/ndes-password"))
        XCTAssertEqual(try endpoint("format = \"text\"").format, .text)
    }

    /// Only the JSON contract adds template variables at enrollment; with the others an
    /// undefined variable is reported now, as for the file and command sources.
    func testTemplateVariablesAreCheckedWhenTheFormatAddsNone() throws {
        let withSubject = { (format: String) in
            "[[profile]]\nname = \"device\"\nscep_url = \"https://scep.example.com/scep\"\n"
                + "ca_pin_sha256 = \"3f9a000000000000000000000000000000000000000000000000000000000001\"\n"
                + "subject = \"CN={{UserPrincipalName}}\"\n[profile.challenge]\nsource = \"endpoint\"\n"
                + "url = \"https://mdm.example.com/c\"\nformat = \"\(format)\"\n"
        }
        XCTAssertNoThrow(try AgentConfig.parse(withSubject("json")))
        XCTAssertThrowsError(try AgentConfig.parse(withSubject("ndes-admin"))) { error in
            XCTAssertTrue("\(error)".contains("unknown template variable {{UserPrincipalName}}"), "\(error)")
        }
    }

    func testPlainHTTPToLoopbackWarnsThatThePasswordTravelsInClear() throws {
        let text = profile("auth = \"basic\"\nusername = \"u\"\npassword_file = \"/p\"")
            .replacingOccurrences(of: "https://ndes.example.com/", with: "http://127.0.0.1:8080/")
        let config = try AgentConfig.parse(text)
        XCTAssertEqual(config.warnings.map(\.key), ["profile.device.challenge.url"])
        XCTAssertTrue(config.warnings.first?.message.contains("the challenge and the Basic password are not encrypted in transit") == true,
                      "\(config.warnings)")
        XCTAssertThrowsError(try AgentConfig.parse(text.replacingOccurrences(of: "127.0.0.1:8080", with: "ndes.example.com"))) { error in
            XCTAssertTrue("\(error)".contains("plain http is allowed only for 127.0.0.1, ::1 or localhost"), "\(error)")
        }
    }

    func testBadCombinationsAreReportedOnTheirKey() {
        let cases: [(challenge: String, key: String, line: Int, fragment: String)] = [
            ("auth = \"basic\"\npassword_file = \"/p\"", "username", 9, "auth = \"basic\" needs username"),
            ("auth = \"basic\"\nusername = \"u\"", "password_file", 9, "auth = \"basic\" needs password_file"),
            ("auth = \"ntlm\"\nusername = \"u\"", "password_file", 9, "auth = \"ntlm\" needs password_file"),
            ("auth = \"basic\"\nusername = \"u\"\npassword_file = \"/p\"\ntoken_file = \"/t\"", "token_file", 12,
             "not used with auth = \"basic\"; basic reads the password from password_file"),
            ("auth = \"bearer\"\ntoken_file = \"/t\"\npassword_file = \"/p\"", "password_file", 11, "not used with auth = \"bearer\""),
            ("token_file = \"/t\"\nusername = \"u\"", "username", 10, "not used with auth = \"bearer\""),
            ("auth = \"bearer\"", "token_file", 9, "auth = \"bearer\" needs token_file"),
            ("username = \"u\"\npassword_file = \"/p\"", "username", 9, "used only with auth = \"basic\" or \"ntlm\""),
            ("password_file = \"/p\"", "password_file", 9, "used only with auth = \"basic\" or \"ntlm\""),
            ("auth = \"Basic \"", "auth", 9, "expected \"bearer\", \"basic\" or \"ntlm\", got \"Basic \""),
            ("auth = \"ntlmv2\"", "auth", 9, "did you mean \"ntlm\"?"),
            ("auth = \"basic\"\nusername = \"u\"\npassword_file = \"relative/p\"", "password_file", 11, "expected an absolute path"),
            ("auth = \"basic\"\nusername = \"a:b\"\npassword_file = \"/p\"", "username", 10, "cannot contain ':'"),
            ("auth = \"basic\"\nusername = \"\"\npassword_file = \"/p\"", "username", 10, "empty"),
            ("auth = \"ntlm\"\nusername = \"u\\nx\"\npassword_file = \"/p\"", "username", 10, "control character"),
            ("format = \"html\"", "format", 9, "expected \"json\", \"text\" or \"ndes-admin\""),
            ("format = \"ndes_admin\"", "format", 9, "did you mean \"ndes-admin\"?"),
            ("password = \"hunter2\"", "password", 9, "unknown key"),
        ]
        for (challenge, key, line, fragment) in cases {
            let found = problems(challenge)
            XCTAssertEqual(found.count, 1, "\(challenge): \(found)")
            guard let problem = found.first else { continue }
            XCTAssertEqual(problem.key, "profile.device.challenge." + key, challenge)
            XCTAssertEqual(problem.line, line, "\(challenge): \(problem)")
            XCTAssertTrue(problem.message.contains(fragment), "\(challenge): \"\(problem.message)\" lacks \"\(fragment)\"")
        }
    }

    func testTheNewKeysAreNotUsedWithOtherSources() {
        let text = """
            [[profile]]
            name = "device"
            scep_url = "https://scep.example.com/scep"
            ca_pin_sha256 = "3f9a000000000000000000000000000000000000000000000000000000000001"
            [profile.challenge]
            source = "file"
            file = "/etc/enroll-agent/challenge"
            auth = "basic"
            """
        guard case .failure(let error) = AgentConfig.decode(text) else { return XCTFail("expected a problem") }
        XCTAssertEqual(error.problems.map(\.key), ["profile.device.challenge.auth"])
        XCTAssertTrue(error.problems.first?.message.contains("not used with source = \"file\"") == true)
    }

    /// check-config's file checks: the password file exists, is not world-readable, and
    /// gets the same permission audit as the token file.
    func testThePasswordFileIsCheckedLikeTheTokenFile() throws {
        let directory = try TemporaryDirectory(prefix: "challenge-auth-config")
        defer { directory.remove() }
        let passwordFile = directory.appending("password")
        let config = try AgentConfig.parse(profile("auth = \"basic\"\nusername = \"u\"\npassword_file = \"\(passwordFile)\""))

        let missing = config.validateEnvironment().filter { $0.key.contains("challenge") }
        XCTAssertEqual(missing.map(\.key), ["profile.device.challenge.password_file"])
        XCTAssertTrue(missing.first?.message.contains("password file \(passwordFile) does not exist") == true, "\(missing)")

        try "pw\n".write(toFile: passwordFile, atomically: true, encoding: .utf8)
        chmod(passwordFile, 0o644)
        let readable = config.validateEnvironment().filter { $0.key == "profile.device.challenge.password_file" }
        XCTAssertTrue(readable.first?.message.contains("is readable by every user (mode 0644); it holds a secret") == true, "\(readable)")
        let audit = config.permissionProblems().filter { $0.key == "profile.device.challenge.password_file" }
        XCTAssertTrue(audit.contains { $0.message.contains("readable by every user") }, "\(audit)")

        chmod(passwordFile, 0o600)
        XCTAssertEqual(config.validateEnvironment().filter { $0.key == "profile.device.challenge.password_file" }, [])
    }
}

private struct NotAnEndpoint: Error {}
