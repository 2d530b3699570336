import Foundation
import X509
import XCTest

@testable import EnrollAgent
@testable import SCEPClient

/// The request a profile turns into, with the host, profile and endpoint variables.
final class ProfileRequestTests: XCTestCase {
    private func profile(_ extra: String) throws -> ProfileConfig {
        let text = """
        [[profile]]
        name = "device"
        scep_url = "https://scep.example.com/scep"
        ca_pin_sha256 = "3f9a000000000000000000000000000000000000000000000000000000000001"
        \(extra)
        [profile.challenge]
        source = "endpoint"
        url = "https://mdm.example.com/c"
        """
        return try XCTUnwrap(try AgentConfig.parse(text).profiles.first)
    }

    func testTheSeedProfileAsksForExactlyItsKeyUsageAndSubject() throws {
        let tree = try FakeHostTree.laptop()
        let profile = try profile("""
            subject = "CN={{UserPrincipalName}},G={{GivenName}},SN={{SurName}},SERIALNUMBER={{SerialNumber}}"
            san_dns = ["{{DeviceName}}.corp.example.com"]
            key_usage = ["digitalSignature"]
            """)
        let spec = try ProfileRequest.spec(for: profile, host: tree.host, endpointVariables: [
            "UserPrincipalName": "jane.doe@contoso.com", "GivenName": "Jane", "SurName": "Doe"])
        XCTAssertEqual(spec.keyUsage, KeyUsage(digitalSignature: true))
        XCTAssertEqual(spec.subject, try DistinguishedName(subjectAttributes: [
            (type: [2, 5, 4, 5], value: "PF2ABCDE"), (type: [2, 5, 4, 4], value: "Doe"),
            (type: [2, 5, 4, 42], value: "Jane"), (type: [2, 5, 4, 3], value: "jane.doe@contoso.com")]))
        XCTAssertEqual(spec.dnsNames, ["host01.corp.example.com"])
        let keyUsage = try XCTUnwrap(try spec.extensions().keyUsage)
        XCTAssertEqual(keyUsage, KeyUsage(digitalSignature: true), "nothing forces keyEncipherment into the request")
        XCTAssertEqual(try ProfileRequest.spec(for: try self.profile(""), host: tree.host, endpointVariables: [:]).keyUsage,
                       KeyUsage(digitalSignature: true, keyEncipherment: true), "the default asks for both")
    }

    func testAnUnavailableBuiltInIsAConfigErrorNamingItsSource() throws {
        let tree = try FakeHostTree.laptop()
        try tree.remove("/sys/class/dmi")
        let profile = try profile("subject = \"CN={{Hostname}},SERIALNUMBER={{SerialNumber}}\"")
        XCTAssertThrowsError(try ProfileRequest.spec(for: profile, host: tree.host, endpointVariables: [:])) { error in
            XCTAssertEqual((error as? AgentError)?.code, .config)
            XCTAssertEqual((error as? AgentError)?.message,
                           "cannot render the subject/SAN templates: template \"CN={{Hostname}},SERIALNUMBER={{SerialNumber}}\": "
                           + "{{SerialNumber}}: /sys/class/dmi/id/product_serial does not exist on this host: "
                           + "set SerialNumber in [profile.variables]")
        }
        // The endpoint may send it instead.
        XCTAssertNoThrow(try ProfileRequest.spec(for: profile, host: tree.host, endpointVariables: ["SerialNumber": "VM-7"]))
    }
}
