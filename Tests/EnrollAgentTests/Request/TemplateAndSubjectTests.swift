import SCEPClient
import SwiftASN1
import XCTest
@testable import EnrollAgent

final class TextTemplateTests: XCTestCase {
    private var tree: FakeHostTree!
    private var host: HostIdentity { tree.host }

    override func setUpWithError() throws {
        tree = try FakeHostTree.laptop()
    }

    override func tearDown() { tree = nil }

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
        let renderer = TemplateRenderer(host: nil, profileVariables: ["Hostname": "h"])
        XCTAssertThrowsError(try renderer.render("CN={{MachineID}}")) { error in
            XCTAssertEqual(error as? TemplateError, TemplateError(
                template: "CN={{MachineID}}", reason: .unknownVariable(name: "MachineID", known: ["Hostname"])))
            XCTAssertEqual("\(error)", "template \"CN={{MachineID}}\": unknown variable {{MachineID}} (variables with a value: Hostname)")
        }
        XCTAssertThrowsError(try TemplateRenderer(host: host).render("{{UserPrincipalName}}")) { error in
            guard case .unknownVariable(_, let known)? = (error as? TemplateError)?.reason else { return XCTFail("\(error)") }
            XCTAssertEqual(known, HostVariable.names.sorted(), "every built-in is known on a host")
        }
    }

    func testAnUnavailableBuiltInNamesItsSourceAndOnlyFailsTheTemplateThatUsesIt() throws {
        try tree.remove("/sys/class/dmi")
        let renderer = TemplateRenderer(host: host)
        XCTAssertEqual(try renderer.render("CN={{Hostname}}"), "CN=host01")
        XCTAssertThrowsError(try renderer.renderSubject("CN={{SerialNumber}}")) { error in
            XCTAssertEqual("\(error)", "template \"CN={{SerialNumber}}\": {{SerialNumber}}: /sys/class/dmi/id/product_serial "
                           + "does not exist on this host: set SerialNumber in [profile.variables]")
        }
        // Set by hand, it is not read from the host at all.
        let configured = TemplateRenderer(host: host, profileVariables: ["SerialNumber": "VM-0042"])
        XCTAssertEqual(try configured.render("{{SerialNumber}}"), "VM-0042")
    }

    func testValuesWithControlCharactersAreRefusedNamingTheirSource() {
        let cases: [(TemplateRenderer, String, String)] = [
            (TemplateRenderer(host: nil, endpointVariables: ["UserPrincipalName": "a@example.com\r\nCN=forged"]),
             "CN={{UserPrincipalName}}", "{{UserPrincipalName}} from the management endpoint's variables holds control characters"),
            (TemplateRenderer(host: nil, profileVariables: ["Team": "a\tb"]),
             "CN=x,OU={{Team}}", "{{Team}} from [profile.variables] holds control characters"),
        ]
        for (renderer, template, fragment) in cases {
            XCTAssertThrowsError(try renderer.renderSubject(template)) { error in
                XCTAssertTrue("\(error)".contains(fragment), "\(error)")
            }
        }
        // An endpoint value wins over the profile's, and its control characters are its own fault.
        let both = TemplateRenderer(host: nil, profileVariables: ["Upn": "ok@example.com"], endpointVariables: ["Upn": "x\u{7F}"])
        XCTAssertThrowsError(try both.render("{{Upn}}")) { error in
            XCTAssertTrue("\(error)".contains("from the management endpoint's variables"), "\(error)")
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
            ("CN=\"open", "the quoted value has no closing '\"'"),
            ("CN=\"a\"b,O=x", "only ',' may follow a quoted value's closing '\"'"),
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

/// Every attribute name an Intune "Subject name format" or a Microsoft X.500 string uses,
/// with its OID and the string type its value is encoded with.
final class SubjectAttributeTypeTests: XCTestCase {
    static let table: [(names: [String], oid: String, encoding: SubjectValueEncoding)] = [
        (["CN", "commonName"], "2.5.4.3", .utf8String),
        (["SN", "surname"], "2.5.4.4", .utf8String),               // Microsoft's SN is surname
        (["SERIALNUMBER", "serialNumber"], "2.5.4.5", .printableString),
        (["C", "countryName"], "2.5.4.6", .printableString),
        (["L", "localityName"], "2.5.4.7", .utf8String),
        (["S", "ST", "stateOrProvinceName"], "2.5.4.8", .utf8String),
        (["STREET", "streetAddress"], "2.5.4.9", .utf8String),
        (["O", "organizationName"], "2.5.4.10", .utf8String),
        (["OU", "organizationalUnitName"], "2.5.4.11", .utf8String),
        (["T", "title"], "2.5.4.12", .utf8String),
        (["Description"], "2.5.4.13", .utf8String),
        (["PostalCode"], "2.5.4.17", .utf8String),
        (["POBox", "postOfficeBox"], "2.5.4.18", .utf8String),
        (["Phone", "telephoneNumber"], "2.5.4.20", .printableString),
        (["name"], "2.5.4.41", .utf8String),
        (["G", "GN", "givenName"], "2.5.4.42", .utf8String),
        (["I", "initials"], "2.5.4.43", .utf8String),
        (["generationQualifier"], "2.5.4.44", .utf8String),
        (["dnQualifier"], "2.5.4.46", .printableString),
        (["pseudonym"], "2.5.4.65", .utf8String),
        (["E", "Email", "emailAddress"], "1.2.840.113549.1.9.1", .ia5String),
        (["unstructuredName"], "1.2.840.113549.1.9.2", .ia5String),
        (["DC", "domainComponent"], "0.9.2342.19200300.100.1.25", .ia5String),
        (["UID", "userid"], "0.9.2342.19200300.100.1.1", .utf8String),
    ]

    func testEveryNameMapsToItsOIDAndEncodingInAnyCase() throws {
        for row in Self.table {
            for name in row.names {
                for spelling in [name, name.lowercased(), name.uppercased()] {
                    let type = try XCTUnwrap(SubjectName.attributeType(named: spelling), spelling)
                    XCTAssertEqual(type.oid, row.oid, spelling)
                    XCTAssertEqual(type.encoding, row.encoding, spelling)
                    let parsed = try SubjectName.parse("\(spelling)=\(row.encoding == .printableString ? "US" : "x")")
                    XCTAssertEqual(parsed.attributes.first?.oid, row.oid, spelling)
                }
            }
        }
        // The table is the whole list: nothing accepted that is not in it.
        let tested = Set(Self.table.flatMap(\.names).map { $0.lowercased() })
        XCTAssertEqual(Set(SubjectName.acceptedNames.map { $0.lowercased() }), tested)
    }

    func testNoTwoTypesShareASpelling() {
        let spellings = SubjectName.acceptedNames.map { $0.lowercased() }
        XCTAssertEqual(spellings.count, Set(spellings).count)
    }

    /// The seed's Intune subject format, rendered, parsed and encoded: G and SN are accepted and
    /// SN is the surname.
    func testTheIntuneSubjectFormatOfTheSeedProfile() throws {
        let renderer = TemplateRenderer(variables: ["UserPrincipalName": "jane.doe@contoso.com", "GivenName": "Jane", "SurName": "Doe"])
        let subject = try renderer.renderSubject("CN={{UserPrincipalName}},G={{GivenName}},SN={{SurName}}")
        XCTAssertEqual(subject.attributes, [
            SubjectAttribute(name: "CN", oid: "2.5.4.3", value: "jane.doe@contoso.com"),
            SubjectAttribute(name: "givenName", oid: "2.5.4.42", value: "Jane"),
            SubjectAttribute(name: "SN", oid: "2.5.4.4", value: "Doe"),
        ])
        XCTAssertEqual(subject.description, "CN=jane.doe@contoso.com,givenName=Jane,SN=Doe")
    }

    /// Microsoft's example subject plus the other typed attributes, checked byte for byte:
    /// RDNs in reverse order of the string, UTF8String (0C) by default, PrintableString (13)
    /// for C and SERIALNUMBER, IA5String (16) for E and DC.
    func testDERForAnIntuneStyleSubject() throws {
        let subject = try SubjectName.parse(
            "CN=jane.doe@contoso.com,G=Jane,SN=Doe,E=jane.doe@contoso.com,OU=Mobile,O=Finance Group,L=Redmond,S=Washington,C=US,"
            + "SERIALNUMBER=PF2ABCDE,DC=com")
        var serializer = DER.Serializer()
        try serializer.serialize(try subject.distinguishedName())
        let expected = "3081e631133011060a0992268993f22c6401191603636f6d3111300f060355040513085046324142434445"
            + "310b30090603550406130255533113301106035504080c0a57617368696e67746f6e3110300e06035504070c07"
            + "5265646d6f6e6431163014060355040a0c0d46696e616e63652047726f7570310f300d060355040b0c064d6f62"
            + "696c653123302106092a864886f70d01090116146a616e652e646f6540636f6e746f736f2e636f6d310c300a06"
            + "035504040c03446f65310d300b060355042a0c044a616e65311d301b06035504030c146a616e652e646f654063"
            + "6f6e746f736f2e636f6d"
        XCTAssertEqual(serializer.serializedBytes.map { String(format: "%02x", $0) }.joined(), expected)
    }

    func testValuesOutsideTheirStringTypeAreRefusedAtParseTime() {
        let cases: [(String, String)] = [
            ("SERIALNUMBER=ab_12", "serialNumber is encoded as a PrintableString"),
            ("Phone=555-0100 ext*2", "telephoneNumber is encoded as a PrintableString"),
            ("E=jöran@example.com", "emailAddress must be ASCII"),
            ("DC=exämple", "DC must be ASCII"),
            ("C=U1", "two-letter"),
            ("2.5.4.5=ab_12", "2.5.4.5 is encoded as a PrintableString"),   // the type, not the spelling, decides
        ]
        for (text, fragment) in cases {
            XCTAssertThrowsError(try SubjectName.parse(text), text) { error in
                let message = (error as? SubjectNameError)?.message ?? ""
                XCTAssertTrue(message.contains(fragment), "\(text): \"\(message)\" lacks \"\(fragment)\"")
            }
        }
        XCTAssertNoThrow(try SubjectName.parse("SN=Doe_Ünïcödé,G=Jöran"), "surname is a DirectoryString, not a serial")
    }

    /// Intune's documentation quotes values with commas rather than escaping them.
    func testQuotedValuesAsIntuneWritesThem() throws {
        let cases: [(String, [String])] = [
            ("CN=\"Test User (TestCompany, LLC)\",OU=UserAccounts,DC=corp", ["Test User (TestCompany, LLC)", "UserAccounts", "corp"]),
            ("CN=\" lead, trail \" , O=x", [" lead, trail ", "x"]),
            ("CN=\"say \"\"hi\"\"\"", ["say \"hi\""]),            // Microsoft: "" is a quote
            ("CN=\"say \\\"hi\\\" a\\+b\"", ["say \"hi\" a+b"]),      // RFC 1779: backslash pairs
            ("CN=\"#1;<x>=y+z\"", ["#1;<x>=y+z"]),
        ]
        for (text, values) in cases {
            XCTAssertEqual(try SubjectName.parse(text).attributes.map(\.value), values, text)
        }
        // A substituted value inside quotes stays one value, whatever it holds.
        let renderer = TemplateRenderer(variables: ["DN": "CN=Jane Doe,OU=Users \"HQ\",DC=corp"])
        XCTAssertEqual(try renderer.renderSubject("CN=\"{{DN}}\",O=Example").attributes.map(\.value),
                       ["CN=Jane Doe,OU=Users \"HQ\",DC=corp", "Example"])
    }

    func testAnUnknownNameSaysSoAndSuggestsTheClosest() {
        XCTAssertThrowsError(try SubjectName.parse("CN=a,GivnName=Jane")) { error in
            let message = (error as? SubjectNameError)?.message ?? ""
            XCTAssertTrue(message.hasPrefix("unknown attribute type \"GivnName\"; did you mean \"givenName\"?"), message)
            XCTAssertTrue(message.contains("givenName/G/GN"), message)
            XCTAssertTrue(message.contains("or a dotted OID"), message)
        }
    }
}
