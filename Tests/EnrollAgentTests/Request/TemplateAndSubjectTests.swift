import XCTest
@testable import EnrollAgent

final class TextTemplateTests: XCTestCase {
    private let host = HostIdentity(hostname: "host01", machineID: "0123456789abcdef0123456789abcdef")

    func testSubstitution() throws {
        let renderer = TemplateRenderer(host: host, profileVariables: ["UserPrincipalName": "host01@example.com"])
        XCTAssertEqual(try renderer.render("CN={{Hostname}}"), "CN=host01")
        XCTAssertEqual(try renderer.render("{{ UserPrincipalName }}"), "host01@example.com")
        XCTAssertEqual(try renderer.render("urn:{{MachineID}}:{{Hostname}}{{Hostname}}"),
                       "urn:0123456789abcdef0123456789abcdef:host01host01")
        XCTAssertEqual(try renderer.render("no variables {here} } {"), "no variables {here} } {")
        XCTAssertEqual(try renderer.render(""), "")
        XCTAssertEqual(try renderer.render(["{{Hostname}}.example.com", "b"]), ["host01.example.com", "b"])
    }

    func testSubstitutedValuesAreNotExpandedAgain() throws {
        let renderer = TemplateRenderer(variables: ["A": "{{B}}", "B": "secret"])
        XCTAssertEqual(try renderer.render("x{{A}}y"), "x{{B}}y")
    }

    func testPrecedenceEndpointOverProfileOverBuiltIn() throws {
        let renderer = TemplateRenderer(host: host,
                                        profileVariables: ["Hostname": "configured", "Upn": "from-config"],
                                        endpointVariables: ["Upn": "from-endpoint"])
        XCTAssertEqual(try renderer.render("{{Hostname}} {{Upn}} {{MachineID}}"),
                       "configured from-endpoint 0123456789abcdef0123456789abcdef")
    }

    func testUnknownVariableNamesItAndTheTemplate() {
        let renderer = TemplateRenderer(host: HostIdentity(hostname: "h", machineID: nil))
        XCTAssertThrowsError(try renderer.render("CN={{MachineID}}")) { error in
            XCTAssertEqual(error as? TemplateError, TemplateError(
                template: "CN={{MachineID}}", reason: .unknownVariable(name: "MachineID", known: ["Hostname"])))
            XCTAssertEqual("\(error)", "template \"CN={{MachineID}}\": unknown variable {{MachineID}} (variables with a value: Hostname)")
        }
    }

    func testTemplateSyntaxErrors() {
        let cases: [(String, TemplateError.Reason)] = [
            ("CN={{Hostname", .unterminated),
            ("CN={{Hostname}", .unterminated),
            ("CN={{}}", .emptyName),
            ("CN={{  }}", .emptyName),
            ("CN={{Host-name}}", .invalidName("Host-name")),
            ("CN={{1abc}}", .invalidName("1abc")),
        ]
        for (text, reason) in cases {
            XCTAssertThrowsError(try TextTemplate(text), text) { error in
                XCTAssertEqual((error as? TemplateError)?.reason, reason, text)
            }
        }
    }

    func testVariableNames() throws {
        XCTAssertEqual(try TextTemplate("{{A}}-{{B}}-{{A}}").variableNames, ["A", "B"])
        XCTAssertEqual(try TextTemplate("a{{B}}c").segments, [.literal("a"), .variable("B"), .literal("c")])
    }

    func testCurrentHostIdentityReadsMachineIDFile() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("machine-id-\(UUID().uuidString)").path
        try "abcdef0123456789abcdef0123456789\n".write(toFile: path, atomically: false, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let identity = HostIdentity.current(machineIDPath: path)
        XCTAssertEqual(identity.machineID, "abcdef0123456789abcdef0123456789")
        let kernelHostname = try String(contentsOfFile: "/proc/sys/kernel/hostname", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(identity.hostname, kernelHostname)
        XCTAssertNil(HostIdentity.current(machineIDPath: path + ".missing").machineID)
    }

    func testRenderSubjectEscapesSubstitutedValues() throws {
        let renderer = TemplateRenderer(variables: ["Org": "Example, Inc.", "User": "a+b \"x\""])
        let subject = try renderer.renderSubject("CN={{User}},O={{Org}},C=US")
        XCTAssertEqual(subject.attributes.map(\.value), ["a+b \"x\"", "Example, Inc.", "US"])
        XCTAssertEqual(subject.attributes.map(\.name), ["CN", "O", "C"])
    }
}

final class SubjectNameTests: XCTestCase {
    func testParsesAttributesInOrderWithOIDs() throws {
        let subject = try SubjectName.parse("CN=host01@example.com,O=Example,OU=IT")
        XCTAssertEqual(subject.attributes, [
            SubjectAttribute(name: "CN", oid: "2.5.4.3", value: "host01@example.com"),
            SubjectAttribute(name: "O", oid: "2.5.4.10", value: "Example"),
            SubjectAttribute(name: "OU", oid: "2.5.4.11", value: "IT"),
        ])
        XCTAssertEqual(subject.attributesInEncodingOrder.map(\.name), ["OU", "O", "CN"])
    }

    func testEveryAcceptedAttributeType() throws {
        let subject = try SubjectName.parse(
            "cn=a,o=b,ou=c,c=US,st=Bavaria,l=Munich,emailAddress=x@example.com,E=y@example.com,serialNumber=42,DC=example,DC=com,UID=jdoe,2.5.4.12=Engineer,OID.2.5.4.4=Doe")
        XCTAssertEqual(subject.attributes.map(\.name), [
            "CN", "O", "OU", "C", "ST", "L", "emailAddress", "emailAddress", "serialNumber", "DC", "DC", "UID",
            "2.5.4.12", "2.5.4.4",
        ])
        XCTAssertEqual(subject.attributes.map(\.oid), [
            "2.5.4.3", "2.5.4.10", "2.5.4.11", "2.5.4.6", "2.5.4.8", "2.5.4.7",
            "1.2.840.113549.1.9.1", "1.2.840.113549.1.9.1", "2.5.4.5",
            "0.9.2342.19200300.100.1.25", "0.9.2342.19200300.100.1.25", "0.9.2342.19200300.100.1.1",
            "2.5.4.12", "2.5.4.4",
        ])
    }

    func testEscapes() throws {
        let cases: [(String, String)] = [
            ("CN=Doe\\, John", "Doe, John"),
            ("CN=a\\+b", "a+b"),
            ("CN=say \\\"hi\\\"", "say \"hi\""),
            ("CN=back\\\\slash", "back\\slash"),
            ("CN=semi\\;colon \\<x\\>", "semi;colon <x>"),
            ("CN=hex\\2Ccomma", "hex,comma"),
            ("CN=caf\\C3\\A9", "café"),
            ("CN=\\#hash", "#hash"),
            ("CN=\\ lead and trail\\ ", " lead and trail "),
            ("CN=a=b", "a=b"),
            ("CN=Ünïcödé", "Ünïcödé"),
        ]
        for (text, value) in cases {
            XCTAssertEqual(try SubjectName.parse(text).attributes.first?.value, value, text)
        }
    }

    func testSpacesAroundSeparatorsAreTrimmed() throws {
        let subject = try SubjectName.parse("  CN = host01 ,  O=Example Corp  ")
        XCTAssertEqual(subject.attributes.map(\.value), ["host01", "Example Corp"])
    }

    func testEscapeRoundTrips() throws {
        for value in ["Doe, John", " lead", "trail ", "#x", "a+b", "q\"uote", "back\\slash", "<>;", "plain", "x#y"] {
            let text = "CN=" + SubjectName.escape(value)
            XCTAssertEqual(try SubjectName.parse(text).attributes.first?.value, value, text)
        }
        let subject = try SubjectName.parse("CN=Doe\\, John,O=Example")
        XCTAssertEqual(subject.description, "CN=Doe\\, John,O=Example")
        XCTAssertEqual(try SubjectName.parse(subject.description), subject)
    }

    func testBadInputSaysWhatIsWrong() {
        let cases: [(String, String)] = [
            ("", "the subject is empty"),
            ("   ", "the subject is empty"),
            ("host01", "expected '=' after the attribute type \"host01\""),
            ("CN=a,host01", "expected '=' after the attribute type \"host01\""),
            ("=a", "expected an attribute type"),
            ("CN=", "CN has an empty value"),
            ("CN=a,", "expected an attribute after the last ','"),
            ("CN=a,,O=b", "expected an attribute type such as CN"),
            ("XX=a", "unknown attribute type \"XX\""),
            ("CN=a+OU=b", "multi-valued RDNs"),
            ("CN=a;O=b", "';' must be escaped as \\;"),
            ("CN=\"quoted\"", "quoted values are not supported"),
            ("CN=#04024869", "#-hex (BER) values are not supported"),
            ("CN=bad\\q", "invalid escape \\q"),
            ("CN=bad\\", "'\\' at the end of the value"),
            ("CN=\\FF\\FE", "do not form valid UTF-8"),
            ("C=USA", "two-letter"),
            ("emailAddress=é@example.com", "must be ASCII"),
        ]
        for (text, fragment) in cases {
            XCTAssertThrowsError(try SubjectName.parse(text), text) { error in
                let message = (error as? SubjectNameError)?.message ?? ""
                XCTAssertTrue(message.contains(fragment), "\(text): \"\(message)\" lacks \"\(fragment)\"")
            }
        }
    }
}
