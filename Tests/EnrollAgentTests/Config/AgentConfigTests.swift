import KeyInterface
import X509
import XCTest
@testable import EnrollAgent

final class AgentConfigTests: XCTestCase {
    /// The example from DESIGN.md "Config contract", verbatim.
    static let designExample = """
    state_dir = "/var/lib/enroll-agent"          # store root; one folder per profile

    [[profile]]
    name = "device"                              # store folder: <state_dir>/<name>/
    scep_url = "https://scep.example.com/scep"
    ca_pin_file = "/etc/enroll-agent/issuing-ca.pem"   # pinned intermediate (PEM)
    # ca_pin_sha256 = "3f9a…"                    # or/and its SHA-256 fingerprint
    subject = "CN={{UserPrincipalName}},O=Example"
    san_upn = ["{{UserPrincipalName}}"]          # also san_dns, san_email, san_uri
    key_storage = "tpm-preferred"                # tpm | tpm-preferred | software
    key_type = "rsa"                             # rsa (ec where the server allows)
    key_bits = 2048
    tcti = "device:/dev/tpmrm0"                  # swtpm:host=127.0.0.1,port=N in tests
    extended_key_usage = ["clientAuth"]
    # renew_before = "30d"                       # default: at 2/3 of the lifetime
    # allow_weak_algorithms = false
    # post_install = ["/usr/bin/systemctl", "reload", "nginx"]

    [profile.challenge]
    source = "endpoint"                          # endpoint | file | command
    url = "https://mdm.example.com/v1/scep/challenge"
    token_file = "/etc/enroll-agent/device-token"
    # source = "file";    file = "/etc/enroll-agent/challenge"
    # source = "command"; command = ["/usr/local/bin/get-scep-challenge"]

    [profile.variables]                          # template values; the endpoint may add more
    UserPrincipalName = "host01@example.com"
    """

    /// A minimal valid profile, to which tests add or change keys.
    private func minimalProfile(name: String = "device", extra: String = "", challenge: String = "source = \"none\"") -> String {
        """
        [[profile]]
        name = "\(name)"
        scep_url = "https://scep.example.com/scep"
        ca_pin_sha256 = "3f9a000000000000000000000000000000000000000000000000000000000001"
        \(extra)
        [profile.challenge]
        \(challenge)
        """
    }

    /// The problems reported for `text` (failing the test if it loads).
    private func problems(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> [ConfigProblem] {
        switch AgentConfig.decode(text, path: "config.toml") {
        case .success(let config):
            XCTFail("expected problems, got \(config)", file: file, line: line)
            return []
        case .failure(let error):
            return error.problems
        }
    }

    /// Asserts that exactly one problem is reported, for `key` on `line`, whose message contains `fragment`.
    private func assertSingleProblem(_ text: String, key: String, line expectedLine: Int?, contains fragment: String,
                                     file: StaticString = #filePath, line: UInt = #line) {
        let found = problems(text, file: file, line: line)
        XCTAssertEqual(found.count, 1, "\(found)", file: file, line: line)
        guard let problem = found.first else { return }
        XCTAssertEqual(problem.key, key, file: file, line: line)
        XCTAssertEqual(problem.line, expectedLine, "\(problem)", file: file, line: line)
        XCTAssertTrue(problem.message.contains(fragment), "\"\(problem.message)\" lacks \"\(fragment)\"", file: file, line: line)
    }

    // MARK: - Valid configurations

    func testDesignExampleParsesIntoTheExpectedModel() throws {
        let config = try AgentConfig.parse(Self.designExample, path: "config.toml")
        XCTAssertEqual(config.stateDirectory, "/var/lib/enroll-agent")
        XCTAssertEqual(config.warnings, [])
        XCTAssertEqual(config.profiles.count, 1)
        let profile = try XCTUnwrap(config.profile(named: "device"))

        var expected = ProfileConfig(
            name: "device",
            scepURL: try XCTUnwrap(URL(string: "https://scep.example.com/scep")),
            caPin: CAPinConfig(file: "/etc/enroll-agent/issuing-ca.pem", sha256Fingerprints: []),
            challenge: .endpoint(EndpointChallenge(url: try XCTUnwrap(URL(string: "https://mdm.example.com/v1/scep/challenge")),
                                                   auth: .bearer(tokenFile: "/etc/enroll-agent/device-token"))))
        expected.subjectTemplate = "CN={{UserPrincipalName}},O=Example"
        expected.subjectAlternativeNames = SubjectAlternativeNameTemplates(upn: ["{{UserPrincipalName}}"])
        expected.keyStorage = .tpmPreferred
        expected.keyType = .rsa
        expected.keyBits = 2048
        expected.tcti = "device:/dev/tpmrm0"
        expected.extendedKeyUsage = [.clientAuth]
        expected.variables = ["UserPrincipalName": "host01@example.com"]

        // Lines as written in the example above.
        XCTAssertEqual(profile.line(of: ""), 3)
        XCTAssertEqual(profile.line(of: "key_bits"), 12)
        XCTAssertEqual(profile.line(of: "challenge.token_file"), 22)
        XCTAssertEqual(profile.line(of: "variables.UserPrincipalName"), 27)
        XCTAssertEqual(profile.line(of: "renew_before"), 3, "absent keys fall back to the header line")
        expected.sourceLines = profile.sourceLines
        XCTAssertEqual(profile, expected)
    }

    func testDefaults() throws {
        let config = try AgentConfig.parse(minimalProfile())
        XCTAssertEqual(config.stateDirectory, "/var/lib/enroll-agent")
        let profile = try XCTUnwrap(config.profiles.first)
        XCTAssertEqual(profile.subjectTemplate, "CN={{Hostname}}")
        XCTAssertEqual(profile.subjectAlternativeNames, SubjectAlternativeNameTemplates())
        XCTAssertEqual(profile.keyStorage, .tpmPreferred)
        XCTAssertEqual(profile.keyType, .rsa)
        XCTAssertEqual(profile.keyBits, 2048)
        XCTAssertEqual(profile.tcti, "device:/dev/tpmrm0")
        XCTAssertEqual(profile.keyUsage, KeyUsage(digitalSignature: true, keyEncipherment: true))
        XCTAssertEqual(profile.extendedKeyUsage, [.clientAuth])
        XCTAssertEqual(profile.certificatePolicies, [])
        XCTAssertNil(profile.renewBefore)
        XCTAssertNil(profile.renewJitter)
        XCTAssertEqual(profile.renewalMode, .auto)
        XCTAssertFalse(profile.reuseKey)
        XCTAssertFalse(profile.allowWeakAlgorithms)
        XCTAssertEqual(profile.contentEncryption, .aes128)
        XCTAssertEqual(profile.pollMaxWait, 3600)
        XCTAssertEqual(profile.pollInitialInterval, 10)
        XCTAssertEqual(profile.httpTimeout, 30)
        XCTAssertNil(profile.tlsCAFile)
        XCTAssertEqual(profile.postInstall, [])
        XCTAssertEqual(profile.challenge, .noChallenge)
        XCTAssertEqual(profile.caPin.sha256Fingerprints, ["3f9a000000000000000000000000000000000000000000000000000000000001"])
    }

    func testEveryKeySet() throws {
        let text = """
        state_dir = "/srv/enroll"
        [[profile]]
        name = "wifi.user-1"
        scep_url = "http://127.0.0.1:8080/scep"
        ca_pin_file = "/etc/pin.pem"
        ca_pin_sha256 = ["3F:9A:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:02",
                         "aaaa bbbb aaaa bbbb aaaa bbbb aaaa bbbb aaaa bbbb aaaa bbbb aaaa bbbb aaaa bbbb"]
        subject = 'CN={{Hostname}},OU=Devices,O=Example\\, Inc.,C=US'   # a literal string keeps the DN escape
        san_upn = ["{{User}}"]
        san_dns = ["{{Hostname}}.example.com", "alt.example.com"]
        san_email = ["{{User}}"]
        san_uri = ["urn:device:{{MachineID}}"]
        key_storage = "software"
        key_type = "rsa"
        key_bits = 3072
        tcti = "swtpm:host=127.0.0.1,port=2321"
        key_usage = ["digitalSignature"]
        extended_key_usage = ["clientAuth", "SERVERAUTH", "smartcardLogon", "1.2.3.4"]
        certificate_policies = ["1.3.6.1.4.1.311.21.8.1", "2.23.140.1.2.1"]
        renew_before = "30d"
        renew_jitter = "1h30m"
        renewal_mode = "renewalreq"
        reuse_key = true
        allow_weak_algorithms = true
        content_encryption = "aes256"
        poll_max_wait = "2h"
        poll_initial_interval = "45s"
        http_timeout = "1m"
        tls_ca_file = "/etc/ssl/scep-ca.pem"
        post_install = ["/usr/bin/systemctl", "reload", "nginx"]
        [profile.challenge]
        source = "command"
        command = ["/usr/local/bin/get-challenge", "--profile", "wifi"]
        [profile.variables]
        User = "host01@example.com"
        """
        let config = try AgentConfig.parse(text)
        XCTAssertEqual(config.stateDirectory, "/srv/enroll")
        let profile = try XCTUnwrap(config.profiles.first)
        XCTAssertEqual(profile.name, "wifi.user-1")
        XCTAssertEqual(profile.scepURL.absoluteString, "http://127.0.0.1:8080/scep")
        XCTAssertEqual(profile.caPin, CAPinConfig(file: "/etc/pin.pem", sha256Fingerprints: [
            "3f9a000000000000000000000000000000000000000000000000000000000002",
            String(repeating: "aaaabbbb", count: 8),
        ]))
        XCTAssertEqual(profile.subjectTemplate, "CN={{Hostname}},OU=Devices,O=Example\\, Inc.,C=US")
        XCTAssertEqual(profile.subjectAlternativeNames, SubjectAlternativeNameTemplates(
            upn: ["{{User}}"], dns: ["{{Hostname}}.example.com", "alt.example.com"],
            email: ["{{User}}"], uri: ["urn:device:{{MachineID}}"]))
        XCTAssertEqual(profile.keyStorage, .software)
        XCTAssertEqual(profile.keyBits, 3072)
        XCTAssertEqual(profile.tcti, "swtpm:host=127.0.0.1,port=2321")
        XCTAssertEqual(profile.keyUsage, KeyUsage(digitalSignature: true))
        XCTAssertEqual(profile.extendedKeyUsage,
                       [.clientAuth, .serverAuth, ExtendedKeyUsageName.smartcardLogon, .init(oid: [1, 2, 3, 4])])
        XCTAssertEqual(profile.certificatePolicies, [[1, 3, 6, 1, 4, 1, 311, 21, 8, 1], [2, 23, 140, 1, 2, 1]])
        XCTAssertEqual(profile.renewBefore, 30 * 86_400)
        XCTAssertEqual(profile.renewJitter, 5400)
        XCTAssertEqual(profile.renewalMode, .renewalReq)
        XCTAssertTrue(profile.reuseKey)
        XCTAssertTrue(profile.allowWeakAlgorithms)
        XCTAssertEqual(profile.contentEncryption, .aes256)
        XCTAssertEqual(profile.pollMaxWait, 7200)
        XCTAssertEqual(profile.pollInitialInterval, 45)
        XCTAssertEqual(profile.httpTimeout, 60)
        XCTAssertEqual(profile.tlsCAFile, "/etc/ssl/scep-ca.pem")
        XCTAssertEqual(profile.postInstall, ["/usr/bin/systemctl", "reload", "nginx"])
        XCTAssertEqual(profile.challenge, .command(argv: ["/usr/local/bin/get-challenge", "--profile", "wifi"]))
        XCTAssertEqual(profile.variables, ["User": "host01@example.com"])
    }

    func testChallengeSources() throws {
        let file = try AgentConfig.parse(minimalProfile(challenge: "source = \"file\"\nfile = \"/etc/enroll-agent/challenge\""))
        XCTAssertEqual(file.profiles.first?.challenge, .file(path: "/etc/enroll-agent/challenge"))

        let endpointWithoutToken = try AgentConfig.parse(minimalProfile(challenge: "source = \"endpoint\"\nurl = \"https://mdm/x?device=1\""))
        XCTAssertEqual(endpointWithoutToken.profiles.first?.challenge,
                       .endpoint(EndpointChallenge(url: try XCTUnwrap(URL(string: "https://mdm/x?device=1")))))
    }

    func testPlainHTTPEndpointOnLoopbackIsAWarning() throws {
        for host in ["127.0.0.1:8443", "localhost", "[::1]:9000"] {
            let config = try AgentConfig.parse(minimalProfile(challenge: """
            source = "endpoint"
            url = "http://\(host)/challenge"
            """))
            XCTAssertEqual(config.warnings.count, 1, host)
            XCTAssertEqual(config.warnings.first?.severity, .warning)
            XCTAssertEqual(config.warnings.first?.key, "profile.device.challenge.url")
            XCTAssertEqual(config.warnings.first?.line, 8)
        }
    }

    func testMultipleProfiles() throws {
        let config = try AgentConfig.parse(minimalProfile(name: "device") + "\n" + minimalProfile(name: "user"))
        XCTAssertEqual(config.profiles.map(\.name), ["device", "user"])
        XCTAssertEqual(config.profiles.map { $0.line(of: "") }, [1, 8])
    }

    // MARK: - Problems

    func testEachKindOfProblemNamesKeyAndLine() {
        // (extra profile line placed at line 5, expected key, fragment)
        let cases: [(String, String, String)] = [
            ("key_bits = 1024", "profile.device.key_bits", "expected 2048 or 3072, got 1024"),
            ("key_bits = \"2048\"", "profile.device.key_bits", "expected an integer, got a string"),
            ("key_storage = \"tmp\"", "profile.device.key_storage",
             "expected \"tpm\", \"tpm-preferred\" or \"software\", got \"tmp\"; did you mean \"tpm\"?"),
            ("key_type = \"dsa\"", "profile.device.key_type", "expected \"rsa\" or \"ec\", got \"dsa\""),
            ("renewal_mode = \"renew\"", "profile.device.renewal_mode", "\"auto\", \"renewalreq\" or \"pkcsreq\""),
            ("content_encryption = \"des3\"", "profile.device.content_encryption", "\"aes128\" or \"aes256\""),
            ("reuse_key = \"yes\"", "profile.device.reuse_key", "expected true or false, got a string"),
            ("renew_before = \"30 days\"", "profile.device.renew_before", "expected a duration such as"),
            ("renew_before = 30", "profile.device.renew_before", "expected a duration string such as \"30d\""),
            ("http_timeout = \"0s\"", "profile.device.http_timeout", "greater than zero"),
            ("subject = \"CN={{Hostname}\"", "profile.device.subject", "'{{' without a closing '}}'"),
            ("subject = \"XX=a\"", "profile.device.subject", "unknown attribute type \"XX\""),
            ("subject = \"CN={{Nope}}\"", "profile.device.subject", "unknown template variable {{Nope}}"),
            ("san_dns = [\"{{Nope}}\"]", "profile.device.san_dns", "unknown template variable {{Nope}}"),
            ("san_dns = [\"a\", 1]", "profile.device.san_dns", "element 2 is an integer"),
            ("san_uri = 7", "profile.device.san_uri", "expected a string or an array of strings"),
            ("key_usage = [\"nonRepudiation\"]", "profile.device.key_usage", "\"digitalSignature\" or \"keyEncipherment\""),
            ("key_usage = []", "profile.device.key_usage", "at least one"),
            ("extended_key_usage = [\"clientAuht\"]", "profile.device.extended_key_usage", "did you mean \"clientAuth\"?"),
            ("extended_key_usage = [\"1.2.x\"]", "profile.device.extended_key_usage", "or a dotted OID"),
            ("certificate_policies = [\"3.1\"]", "profile.device.certificate_policies", "expected a dotted OID"),
            ("tls_ca_file = \"ca.pem\"", "profile.device.tls_ca_file", "expected an absolute path"),
            ("post_install = [\"systemctl\", \"reload\"]", "profile.device.post_install", "must be an absolute path"),
            ("tcti = \"\"", "profile.device.tcti", "expected a TCTI"),
            ("scep_url = \"https://other\"", "profile.device.scep_url", "duplicate key profile.scep_url (first defined on line 3)"),
            ("keybits = 2048", "profile.device.keybits", "unknown key; did you mean \"key_bits\"?"),
            ("poll_initial_interval = \"2h\"", "profile.device.poll_initial_interval", "must not exceed poll_max_wait (1h), got 2h"),
            ("renewal_threshold_percent = 0", "profile.device.renewal_threshold_percent", "expected an integer from 1 to 99"),
            ("renewal_threshold_percent = 100", "profile.device.renewal_threshold_percent", "Intune's default is 20), got 100"),
            ("renewal_threshold_percent = \"20%\"", "profile.device.renewal_threshold_percent", "expected an integer, got a string"),
            ("subject = \"CN=a,GivnName=b\"", "profile.device.subject", "did you mean \"givenName\"?"),
            ("subject = \"CN={{Hostnme}}\"", "profile.device.subject", "{{Hostnme}}; did you mean \"Hostname\"?"),
        ]
        for (extra, key, fragment) in cases {
            let text = minimalProfile(extra: extra)
            let found = problems(text)
            XCTAssertEqual(found.count, 1, "\(extra): \(found)")
            XCTAssertEqual(found.first?.key ?? "", extra.hasPrefix("scep_url") ? "" : key, extra)
            XCTAssertEqual(found.first?.line, 5, extra)
            XCTAssertTrue(found.first?.message.contains(fragment) ?? false,
                          "\(extra): \"\(found.first?.message ?? "")\" lacks \"\(fragment)\"")
        }
    }

    func testMissingRequiredKeysPointAtTheProfileHeader() {
        let found = problems("""
        state_dir = "/x"

        [[profile]]
        name = "device"
        """)
        XCTAssertEqual(found.map(\.key), ["profile.device.scep_url", "profile.device.ca_pin_file", "profile.device.challenge"])
        XCTAssertEqual(found.map(\.line), [3, 3, 3])
        XCTAssertTrue(found[1].message.contains("ca_pin_sha256"))
        XCTAssertTrue(found[2].message.contains("[profile.challenge]"))
    }

    func testMissingAndBadNames() {
        assertSingleProblem("""
        [[profile]]
        scep_url = "https://scep.example.com/scep"
        ca_pin_file = "/p.pem"
        [profile.challenge]
        source = "none"
        """, key: "profile[1].name", line: 1, contains: "missing required key")

        for bad in ["..", ".", "a/b", "", "dev ice"] {
            assertSingleProblem(minimalProfile(name: bad), key: "profile[1].name", line: 2,
                                contains: "expected a folder name made of letters")
        }
    }

    func testDuplicateProfileNames() {
        let found = problems(minimalProfile(name: "device") + "\n" + minimalProfile(name: "device"))
        XCTAssertEqual(found.map(\.key), ["profile[2].name"])
        XCTAssertEqual(found.first?.line, 9)
        XCTAssertTrue(found.first?.message.contains("already the name of the profile on line 2") ?? false)
        XCTAssertEqual(found.first?.formatted(path: "config.toml"),
                       "config.toml:9: profile #2: name: \"device\" is already the name of the profile on line 2; profile names must be unique")
    }

    func testURLProblems() {
        let cases: [(String, String)] = [
            ("ftp://scep.example.com/scep", "got scheme \"ftp\""),
            ("scep.example.com/scep", "expected an http:// or https:// URL"),
            ("https://", "with a host name"),
            ("https://scep.example.com/scep?operation=x", "must not contain a query"),
            ("https://user:pw@scep.example.com/scep", "credentials in the URL"),
            ("https://scep.example.com/scep#frag", "fragment"),
        ]
        for (url, fragment) in cases {
            let text = minimalProfile().replacingOccurrences(of: "https://scep.example.com/scep", with: url)
            assertSingleProblem(text, key: "profile.device.scep_url", line: 3, contains: fragment)
        }
    }

    func testPinProblems() {
        let noPin = minimalProfile().replacingOccurrences(of: "ca_pin_sha256", with: "# ca_pin_sha256")
        assertSingleProblem(noPin, key: "profile.device.ca_pin_file", line: 1, contains: "must be pinned")
        let short = minimalProfile().replacingOccurrences(of: "3f9a0000", with: "3f9a")
        assertSingleProblem(short, key: "profile.device.ca_pin_sha256", line: 4, contains: "got 60 hex digits")
        let sha1 = minimalProfile().replacingOccurrences(
            of: "\"3f9a000000000000000000000000000000000000000000000000000000000001\"",
            with: "[\"DA39A3EE5E6B4B0D3255BFEF95601890AFD80709\"]")
        assertSingleProblem(sha1, key: "profile.device.ca_pin_sha256", line: 4, contains: "SHA-1")
        let empty = minimalProfile().replacingOccurrences(
            of: "\"3f9a000000000000000000000000000000000000000000000000000000000001\"", with: "[]")
        assertSingleProblem(empty, key: "profile.device.ca_pin_sha256", line: 4, contains: "the list is empty")
    }

    func testChallengeProblems() {
        let cases: [(String, String, Int, String)] = [
            ("", "profile.device.challenge.source", 6, "missing required key; expected \"endpoint\", \"file\", \"command\" or \"none\""),
            ("source = \"mdm\"", "profile.device.challenge.source", 7, "got \"mdm\""),
            ("source = \"endpoint\"", "profile.device.challenge.url", 6, "missing required key"),
            ("source = \"endpoint\"\nurl = \"http://mdm.example.com/c\"", "profile.device.challenge.url", 8,
             "plain http is allowed only for 127.0.0.1, ::1 or localhost"),
            ("source = \"endpoint\"\nurl = \"https://mdm/c\"\ntoken_file = \"token\"", "profile.device.challenge.token_file", 9,
             "absolute path"),
            ("source = \"file\"", "profile.device.challenge.file", 6, "missing required key"),
            ("source = \"file\"\nfile = \"/c\"\nurl = \"https://mdm/c\"", "profile.device.challenge.url", 9,
             "not used with source = \"file\""),
            ("source = \"command\"\ncommand = []", "profile.device.challenge.command", 8, "expected a command as an array"),
            ("source = \"command\"\ncommand = \"/bin/echo\"", "profile.device.challenge.command", 8, "expected an array of strings, got a string"),
            ("source = \"none\"\ntoken = \"x\"", "profile.device.challenge.token", 8, "unknown key"),
        ]
        for (challenge, key, line, fragment) in cases {
            assertSingleProblem(minimalProfile(challenge: challenge), key: key, line: line, contains: fragment)
        }
    }

    /// key_type / ec_curve: what each combination asks for, and what is refused.
    func testKeyTypeScenarios() throws {
        let cases: [(extra: String, expected: KeyAlgorithm)] = [
            ("", .rsa(bits: 2048)),
            ("key_bits = 3072", .rsa(bits: 3072)),
            ("key_type = \"ec\"", .ec(.p256)),
            ("key_type = \"ec\"\nec_curve = \"P-384\"", .ec(.p384)),
            ("key_type = \"rsa\"\nec_curve = \"P-384\"", .rsa(bits: 2048)),
            ("key_type = \"ec\"\nrenewal_mode = \"pkcsreq\"", .ec(.p256)),
        ]
        for (extra, expected) in cases {
            guard case .success(let config) = AgentConfig.decode(minimalProfile(extra: extra), path: "config.toml") else {
                XCTFail("does not load: \(extra)"); continue
            }
            XCTAssertEqual(config.profiles.first?.keyAlgorithm, expected, extra)
        }
        assertSingleProblem(minimalProfile(extra: "key_type = \"ecdsa\""), key: "profile.device.key_type", line: 5,
                            contains: "expected \"rsa\" or \"ec\", got \"ecdsa\"")
        assertSingleProblem(minimalProfile(extra: "key_type = \"ec\"\nec_curve = \"P-521\""), key: "profile.device.ec_curve", line: 6,
                            contains: "expected \"P-256\" or \"P-384\", got \"P-521\"")
        assertSingleProblem(minimalProfile(extra: "key_type = \"ec\"\nrenewal_mode = \"renewalreq\""), key: "profile.device.renewal_mode",
                            line: 6, contains: "\"renewalreq\" cannot renew an EC certificate")
    }

    func testVariablesProblems() {
        assertSingleProblem(minimalProfile(extra: "[profile.variables]\nCount = 3"),
                            key: "profile.device.variables.Count", line: 6, contains: "expected a string, got an integer")
        assertSingleProblem(minimalProfile(extra: "[profile.variables]\n\"Bad-Name\" = \"x\""),
                            key: "profile.device.variables.Bad-Name", line: 6, contains: "letters, digits and '_'")
        assertSingleProblem(minimalProfile(extra: "variables = \"x\""),
                            key: "profile.device.variables", line: 5, contains: "expected a table")
        assertSingleProblem(minimalProfile(extra: "[profile.variables]\nUpn = \"a@example.com\\nCN=forged\""),
                            key: "profile.device.variables.Upn", line: 6, contains: "the value holds control characters")
    }

    func testAnUnknownTemplateVariableListsTheBuiltIns() {
        assertSingleProblem(minimalProfile(extra: "subject = \"CN={{UserPrincipalName}}\""),
                            key: "profile.device.subject", line: 5, contains:
                                "unknown template variable {{UserPrincipalName}}; define it in [profile.variables] (built-in: "
                                + "Hostname, FullyQualifiedDomainName, DeviceName, MachineID, SerialNumber, Device_Serial, "
                                + "WiFiMacAddress, EthernetMacAddress, OperatingSystem, OSVersion)")
    }

    func testEveryBuiltInVariableAndIntuneAttributeNameIsAcceptedWithoutAnEndpoint() throws {
        let subject = "CN={{DeviceName}},G=Jane,SN=Doe,T=Engineer,STREET=1 Main St,PostalCode=98052,I=JD,"
            + "SERIALNUMBER={{SerialNumber}},OU={{OperatingSystem}} {{OSVersion}},DC={{FullyQualifiedDomainName}}"
        let config = try AgentConfig.parse(minimalProfile(extra: """
            subject = "\(subject)"
            san_dns = ["{{FullyQualifiedDomainName}}", "{{Hostname}}"]
            san_uri = ["urn:mac:{{WiFiMacAddress}}", "urn:mac:{{EthernetMacAddress}}", "urn:id:{{MachineID}}:{{Device_Serial}}"]
            """))
        XCTAssertEqual(config.profiles.first?.subjectTemplate, subject)
    }

    func testARootOnlyBuiltInIsAWarningUnlessSetByHand() throws {
        let config = try AgentConfig.parse(minimalProfile(extra: "subject = \"CN={{Hostname}},SERIALNUMBER={{SerialNumber}}\""))
        XCTAssertEqual(config.warnings.map(\.key), ["profile.device.subject"])
        XCTAssertEqual(config.warnings.first?.line, 5)
        XCTAssertTrue(config.warnings.first?.message.contains(
            "{{SerialNumber}} is read from /sys/class/dmi/id/product_serial, which only root can read, and the packaged "
            + "systemd units run as user enroll-agent: set SerialNumber in [profile.variables]") ?? false,
            "\(config.warnings)")
        let byHand = try AgentConfig.parse(minimalProfile(extra: """
            subject = "CN={{Hostname}},SERIALNUMBER={{SerialNumber}}"
            [profile.variables]
            SerialNumber = "PF2ABCDE"
            """))
        XCTAssertEqual(byHand.warnings, [])
    }

    func testRenewalThresholdPercent() throws {
        let profile = try XCTUnwrap(try AgentConfig.parse(minimalProfile(extra: "renewal_threshold_percent = 20")).profiles.first)
        XCTAssertEqual(profile.renewalThresholdPercent, 20)
        XCTAssertEqual(profile.renewalPolicy.renewalThresholdPercent, 20)
        XCTAssertNil(try AgentConfig.parse(minimalProfile()).profiles.first?.renewalThresholdPercent, "unset by default")
        // Both keys load (the schedule follows renew_before); check-config reports the conflict.
        let both = try XCTUnwrap(try AgentConfig.parse(minimalProfile(extra: "renew_before = \"30d\"\nrenewal_threshold_percent = 20")).profiles.first)
        XCTAssertEqual(both.renewalPolicy.renewBefore, 30 * 86_400)
        XCTAssertEqual(both.renewalPolicy.renewalThresholdPercent, 20)
    }

    func testTemplateVariablesAreNotCheckedWhenTheEndpointMayProvideThem() throws {
        let config = try AgentConfig.parse(minimalProfile(
            extra: "subject = \"CN={{UserPrincipalName}}\"",
            challenge: "source = \"endpoint\"\nurl = \"https://mdm.example.com/c\""))
        XCTAssertEqual(config.profiles.first?.subjectTemplate, "CN={{UserPrincipalName}}")
    }

    func testDocumentLevelProblems() {
        assertSingleProblem("state_dir = \"/x\"\n", key: "profile", line: nil, contains: "no [[profile]] defined")
        assertSingleProblem("[profile]\nname = \"x\"\n", key: "profile", line: 1, contains: "got a single [profile] table")
        assertSingleProblem("profile = 3\n", key: "profile", line: 1, contains: "expected [[profile]] tables, got an integer")
        assertSingleProblem("state_dir = \"relative\"\n" + minimalProfile(), key: "state_dir", line: 1, contains: "absolute path")
        assertSingleProblem("statedir = \"/x\"\n" + minimalProfile(), key: "statedir", line: 1,
                            contains: "unknown key; did you mean \"state_dir\"?")
    }

    func testSeveralProblemsAreReportedTogether() {
        let text = """
        state_dir = "var/lib"
        colour = "blue"

        [[profile]]
        name = "device"
        scep_url = "ftp://scep"
        key_bits = 1024
        key_storage = "hsm"
        renew_before = "soon"

        [profile.challenge]
        source = "file"

        [[profile]]
        name = "device"
        scep_url = "https://scep.example.com/scep"
        ca_pin_sha256 = "zz"
        [profile.challenge]
        source = "none"
        """
        let error = AgentConfig.decode(text, path: "config.toml")
        guard case .failure(let configError) = error else { return XCTFail("expected problems") }
        XCTAssertEqual(configError.description, """
        config.toml:1: state_dir: expected an absolute path (starting with /), got "var/lib"
        config.toml:2: colour: unknown key
        config.toml:4: profile "device": ca_pin_file: missing required key; the issuing CA must be pinned: set ca_pin_file (PEM) and/or ca_pin_sha256 (SHA-256 fingerprint)
        config.toml:6: profile "device": scep_url: expected an http:// or https:// URL, got scheme "ftp"
        config.toml:7: profile "device": key_bits: expected 2048 or 3072, got 1024
        config.toml:8: profile "device": key_storage: expected "tpm", "tpm-preferred" or "software", got "hsm"
        config.toml:9: profile "device": renew_before: expected a duration such as "30d", "12h", "90m", "45s" or "1d12h", got "soon" (a number must come before 's')
        config.toml:11: profile "device": challenge.file: missing required key; expected the path of the file holding the challenge, e.g. file = "/etc/enroll-agent/challenge"
        config.toml:15: profile #2: name: "device" is already the name of the profile on line 5; profile names must be unique
        config.toml:17: profile #2: ca_pin_sha256: expected a SHA-256 fingerprint (64 hex digits; colons and spaces allowed), got "zz" (not hexadecimal)
        """)
        XCTAssertEqual(configError.problems.first { $0.line == 17 }?.key, "profile[2].ca_pin_sha256")
    }

    func testSyntaxErrorsAreReportedWithoutModelProblems() {
        let found = problems("""
        [[profile]]
        name = "device
        key_bits = 2048 2
        """)
        XCTAssertEqual(found.map(\.line), [2, 3])
        XCTAssertEqual(found.map(\.key), ["", ""])
        XCTAssertTrue(found[0].formatted(path: "c.toml").hasPrefix("c.toml:2: unterminated string"))
    }

    func testLoadFromFile() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("config.toml").path
        try Self.designExample.write(toFile: path, atomically: false, encoding: .utf8)

        let config = try AgentConfig.load(path: path)
        XCTAssertEqual(config.sourcePath, path)
        XCTAssertEqual(config.profiles.map(\.name), ["device"])

        let missing = directory.appendingPathComponent("nope.toml").path
        XCTAssertThrowsError(try AgentConfig.load(path: missing)) { error in
            guard case ConfigError.unreadable(let errorPath, let reason)? = error as? ConfigError else {
                return XCTFail("\(error)")
            }
            XCTAssertEqual(errorPath, missing)
            XCTAssertTrue(reason.contains("no such file"))
        }
        XCTAssertThrowsError(try AgentConfig.load(path: directory.path)) { error in
            XCTAssertEqual(error as? ConfigError, .unreadable(path: directory.path, reason: "it is a directory"))
        }
    }
}
