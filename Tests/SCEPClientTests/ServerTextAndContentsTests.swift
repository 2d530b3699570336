import Foundation
import SwiftASN1
import X509
import XCTest

@testable import SCEPClient

final class ServerTextTests: XCTestCase {
    func testEscapingScenarios() {
        let cases: [(String, String)] = [
            ("plain text, ümlauts ✓", "plain text, ümlauts ✓"),
            ("line\nforged: yes", "line\\nforged: yes"),
            ("cr\rtab\t", "cr\\rtab\\t"),
            ("nul\u{0}esc\u{1b}[31m", "nul\\u{0}esc\\u{1b}[31m"),
            ("del\u{7f}c1\u{85}", "del\\u{7f}c1\\u{85}"),
            ("ls\u{2028}ps\u{2029}", "ls\\u{2028}ps\\u{2029}"),
            ("bidi\u{202e}txt.exe", "bidi\\u{202e}txt.exe"),
        ]
        for (input, expected) in cases {
            XCTAssertEqual(ServerText.escaped(input), expected)
        }
        XCTAssertEqual(ServerText.excerpt(String(repeating: "a", count: 10), limit: 4), "aaaa…")
    }

    func testASN1TextDecodesEveryStringType() throws {
        let bmp = Array("Grüße".utf16).flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
        let values: [(ASN1Any, String)] = [
            (try ASN1Any(erasing: ASN1UTF8String("Grüße")), "Grüße"),
            (try ASN1Any(erasing: ASN1PrintableString("wrong password")), "wrong password"),
            (try ASN1Any(erasing: ASN1IA5String("ia5 text")), "ia5 text"),
            (try ASN1Any(erasing: ASN1BMPString(contentBytes: bmp[...])), "Grüße"),
        ]
        for (value, text) in values { XCTAssertEqual(ASN1Text.decode(value), text) }
        XCTAssertNil(ASN1Text.decode(try ASN1Any(erasing: 42)))
    }
}

/// What the CA granted against what was asked: a scenario table.
final class IssuedContentsTests: XCTestCase {
    static func extensions(eku: [ExtendedKeyUsage.Usage] = [.clientAuth], sans: [GeneralName] = [.dnsName("h.example.com")],
                           usage: KeyUsage? = KeyUsage(digitalSignature: true)) throws -> Certificate.Extensions {
        var extensions = Certificate.Extensions()
        if !sans.isEmpty { try extensions.append(Certificate.Extension(SubjectAlternativeNames(sans), critical: false)) }
        if let usage { try extensions.append(Certificate.Extension(usage, critical: true)) }
        if !eku.isEmpty { try extensions.append(Certificate.Extension(try ExtendedKeyUsage(eku), critical: false)) }
        return extensions
    }

    func testDifferencesScenarios() throws {
        let upn = GeneralName.otherName(.init(typeID: OID.userPrincipalName, value: try ASN1Any(erasing: ASN1UTF8String("u@example.com"))))
        let requested = try Self.extensions(sans: [.dnsName("h.example.com"), upn])
        let cases: [(String, Certificate.Extensions, [String])] = [
            ("granted as asked", requested, []),
            ("step-ca adds serverAuth", try Self.extensions(eku: [.clientAuth, .serverAuth], sans: [.dnsName("h.example.com"), upn]),
             ["the CA added the extended key usage serverAuth, which was not requested"]),
            ("micromdm drops the UPN", try Self.extensions(),
             ["the CA left out the subject alternative name UPN:u@example.com that was requested"]),
            ("key usage widened", try Self.extensions(sans: [.dnsName("h.example.com"), upn], usage: KeyUsage(digitalSignature: true, keyEncipherment: true)),
             ["the CA changed the key usage from digitalSignature to digitalSignature, keyEncipherment"]),
            ("clientAuth missing", try Self.extensions(eku: [], sans: [.dnsName("h.example.com"), upn]),
             ["the CA did not grant the extended key usage clientAuth that was requested"]),
        ]
        for (name, issued, expected) in cases {
            XCTAssertEqual(IssuedContents.differences(requested: requested, issued: issued), expected, name)
        }
    }

    func testRequestedExtensionsRoundTripAndRejectTruncation() throws {
        let requested = try Self.extensions()
        let der = try RequestedExtensions.encode(requested)
        XCTAssertEqual(try RequestedExtensions.decode(der), requested)
        XCTAssertEqual(try RequestedExtensions.encode(RequestedExtensions.decode(der)), der)
        XCTAssertEqual(try RequestedExtensions.decode(RequestedExtensions.encode(Certificate.Extensions())), Certificate.Extensions())
        for length in 0..<der.count {
            XCTAssertThrowsError(try RequestedExtensions.decode(Array(der.prefix(length))), "prefix \(length)")
        }
        XCTAssertThrowsError(try RequestedExtensions.decode(der + [0]))
    }
}
