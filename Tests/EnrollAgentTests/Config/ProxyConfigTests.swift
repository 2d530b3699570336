import SCEPClient
import XCTest
@testable import EnrollAgent

/// `proxy` and `proxy_credentials_file`, top-level and per profile.
final class ProxyConfigTests: XCTestCase {
    private func profile(topLevel: String = "", profile: String = "") -> Result<AgentConfig, ConfigError> {
        AgentConfig.decode("""
            \(topLevel)
            [[profile]]
            name = "device"
            scep_url = "https://scep.example.com/scep"
            ca_pin_sha256 = "\(String(repeating: "ab", count: 32))"
            \(profile)
            [profile.challenge]
            source = "none"
            """)
    }

    func testTheSettingsAProfileGets() throws {
        let table: [(topLevel: String, profile: String, expected: ProxySetting, credentials: String?)] = [
            ("", "", .environment, nil),
            ("", "proxy = \"\"", .direct, nil),
            ("", "proxy = \"http://proxy.example.com:3128\"", .url("http://proxy.example.com:3128"), nil),
            ("proxy = \"socks5h://proxy:1080\"", "", .url("socks5h://proxy:1080"), nil),
            ("proxy = \"http://global:3128\"", "proxy = \"\"", .direct, nil),
            ("proxy = \"http://global:3128\"\nproxy_credentials_file = \"/etc/enroll-agent/proxy\"", "",
             .url("http://global:3128"), "/etc/enroll-agent/proxy"),
            ("proxy_credentials_file = \"/etc/a\"", "proxy_credentials_file = \"/etc/b\"", .environment, "/etc/b"),
        ]
        for (topLevel, profileLines, expected, credentials) in table {
            let config = try profile(topLevel: topLevel, profile: profileLines).get()
            XCTAssertEqual(config.profiles[0].proxy, expected, "\(topLevel) | \(profileLines)")
            XCTAssertEqual(config.profiles[0].proxyCredentialsFile, credentials, "\(topLevel) | \(profileLines)")
        }
    }

    func testBadProxiesAreRefusedWithTheReason() {
        let table: [(line: String, message: String)] = [
            ("proxy = \"http://user:secret@proxy:3128\"", "credentials in the proxy URL are not allowed"),
            ("proxy = \"ftp://proxy:21\"", "expected a proxy URL"),
            ("proxy = \"proxy:3128\"", "expected a proxy URL"),
            ("proxy = 3128", "expected a string"),
            ("proxy_credentials_file = \"relative\"", "absolute path"),
        ]
        for (line, message) in table {
            for placement in [(line, ""), ("", line)] {
                guard case .failure(let error) = profile(topLevel: placement.0, profile: placement.1) else {
                    XCTFail("accepted: \(line)"); continue
                }
                XCTAssertTrue(error.problems.contains { $0.message.contains(message) }, "\(line): \(error.problems)")
                XCTAssertFalse(error.description.contains("secret"), error.description)
            }
        }
    }
}
