import Foundation
import SwiftASN1
import X509
import XCTest

@testable import SCEPClient
@testable import SCEPTestSupport

/// The CRL types (RFC 5280 §5) and CRL distribution points (§4.2.1.13): a vector made
/// by OpenSSL 3.0 (`openssl ca -gencrl`, one entry revoked with `-crl_compromise`, one
/// with `-crl_reason superseded`), round trips, rejections, and the validation rules.
final class CertificateRevocationListTests: XCTestCase {
    // MARK: - Vectors (OpenSSL 3.0.x, Debian 12)

    /// O=Vector, CN=Vector CA (basicConstraints CA, keyUsage keyCertSign + cRLSign).
    static let vectorCA = """
-----BEGIN CERTIFICATE-----
MIIDOzCCAiOgAwIBAgIUKVIRRy+/8WCv7Lg1wMb9+TU03EgwDQYJKoZIhvcNAQEL
BQAwJTEPMA0GA1UECgwGVmVjdG9yMRIwEAYDVQQDDAlWZWN0b3IgQ0EwHhcNMjYx
MjAyMDIwMTAwWhcNMzYxMTI5MDIwMTAwWjAlMQ8wDQYDVQQKDAZWZWN0b3IxEjAQ
BgNVBAMMCVZlY3RvciBDQTCCASIwDQYJKoZIhvcNAQEBBQADggEPADCCAQoCggEB
AJ9fwsWBmJiUtqji/amTv8oKr/vLQf2bVD0hd+WLfwXwfQDGOSQw8livXBCE4+Lh
aOParx4asU36YPDFGVENPMHgM6lfyQiWMNFpOh/q9J2yhPW/qRy68u/flSa62Mup
hXx9K6CqmXtYtJq+nFizLtsML+4NYA2M/nEFewEWeCWdWtSKuf7xFbOEkk4opnlQ
Nwl/JtEjwwPM9l/ysMmwP5QtDmSGoxVYywb34HBdnPO32uR0ytodZbb55m3Nkc7d
QAa+aWX494tZas7ZY7180e7NL669KkaNk3k/oD50tbO2hFSsB8UNXy+zYJNVqpCC
LRTsRetACoB+iViCUQAaMwMCAwEAAaNjMGEwHQYDVR0OBBYEFCY/7sEHBAYRHGo9
g6nJUGwsH+5/MB8GA1UdIwQYMBaAFCY/7sEHBAYRHGo9g6nJUGwsH+5/MA8GA1Ud
EwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQDAgEGMA0GCSqGSIb3DQEBCwUAA4IBAQAP
1CSIb4QTo8AgCAYmBi0raja+Jb11Aa1Rho3DclLQ7BsBtVK+VBN4NCNDa0xhCeY9
drMg05KrPTimL218oJljTAuT7v0dEe7AqHkrUEJ5TN5aquZUFrMGjVPwWcDc92BC
b/IqIhH6HMEEMuzR+pEfHxgQJoAtFsMXWtDk2Mxq5h1vVxZP28PSWtqpZVIaLG5x
3aJsDSoT1Vyif0kXrGtxBaKTfx8Nz6wn3SEVqCIj6UoaDzMmn5bNnpXqHMsZ+Rln
WavkJd2v1MUA6TACdjViWhMlTPOezMmKbHxvw4SJzHQf8Hy3zj08dbf1A4+aw7Aw
aFzQYWSfuUnX6J4riGb9
-----END CERTIFICATE-----
"""
    /// CN=host01, serial 0x1000, revoked keyCompromise, invalidityDate 2026-01-01T12:00:00Z.
    static let revokedHost = """
-----BEGIN CERTIFICATE-----
MIICqzCCAZMCAhAAMA0GCSqGSIb3DQEBCwUAMCUxDzANBgNVBAoMBlZlY3RvcjES
MBAGA1UEAwwJVmVjdG9yIENBMB4XDTI2MTIwMjAyMDEwM1oXDTI3MDEwMTAyMDEw
M1owETEPMA0GA1UEAwwGaG9zdDAxMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIB
CgKCAQEAlxjWHHKAHlmIGLpxXACm2Ml+W7lXLdTZfu3BsA74y4avIaonCIYzfxGE
AWdec7zqxzUyCpeigYdN6yVPR31U2ArSxol9+ZqVIDz6J4TKyLPN9F2PT3B87bVm
kF748baoe/XLDlEWsUiKeAvRyQy6y3ZVZR8szkMdfAVGWdXdJqbqCJVdfW7N3IXl
dOqAzMxCZGqltFEwsOVM0xOvQki4dlT0WbfzH+GGawYs7TCqwnCq0t8/beKysldF
TvGt7YYYh6VwjWiS/EbK6UZeo/wtG6qgMNYUip5PhGevlD/DTqKWPIxvVQ8/qD9U
Lc/JNJqUP48qEuELoDmMZJo3aFakUwIDAQABMA0GCSqGSIb3DQEBCwUAA4IBAQCa
2ubS5lMhq8ZLYLiW95TveztVcdRKyZvltZ+KEuffC7eTi7A2Hj7p57/FaJq71st4
dAZzSdUhQb2Myaq8enlAy5MVwLUc7/Zhfxjem3KjqKaMkJnm7YQl542g9jFoi3Mw
fjYVdF1NP224wxxwfxNTx9TDqkUTtjAS5Zqe08T0eaV+i9f9aq566/Pr6bpx9k6y
CPNo8UgBFoM9eVRNb37+EpehayUwlZbY6yCF4vF8jRJzPbCqlZHDoRIKuSqI7odo
PsEXZ0WOvkpx2D+/dsRO5xASvku2DasnxjRCpoojkfQEgDh2W6lFhXf+KjoSTy74
FeM4jM8Px7iftMOg44f5
-----END CERTIFICATE-----
"""
    /// CN=host03, serial 0x1000 too (another certificate), with two distribution points:
    /// http://crl.example.com/vector.crl and an LDAP URL.
    static let hostWithDistributionPoints = """
-----BEGIN CERTIFICATE-----
MIIDcjCCAlqgAwIBAgICEAAwDQYJKoZIhvcNAQELBQAwJTEPMA0GA1UECgwGVmVj
dG9yMRIwEAYDVQQDDAlWZWN0b3IgQ0EwHhcNMjYxMjAyMDIwMTEzWhcNMjcwMTAx
MDIwMTEzWjARMQ8wDQYDVQQDDAZob3N0MDMwggEiMA0GCSqGSIb3DQEBAQUAA4IB
DwAwggEKAoIBAQDAfNfnf76CT3cEnTOnb1UpIfpQjxhnIJhjuZIaxOP6DRaHCTre
2G00+uuuMNXsCgprc429yrHAa4p3kYWkU9umYQk27xlVZKdTD8uJ6r4KQhx1f+nk
3Oc2IxRVM6xJDtkD4NKZmVA/Xl0IYXs0hN8A0uQ0TZp07JGkmbnwg6BLtIknERFh
QpeZpTolOGhc+wPIIsumbVyUQrfdKkr3roEP6SCQAcDyskOKo7Ld4mX8zuNkLhII
RI1J4vD7Ovq15AGzY1mZPF5QsDkExzP9zBk4x+FJT5utF4fZpbNmcAu6xgoBvFXU
qN1FT6IT6wwRltff4LFyJZ6FfNmiJeVSp+tFAgMBAAGjgb8wgbwwegYDVR0fBHMw
cTAnoCWgI4YhaHR0cDovL2NybC5leGFtcGxlLmNvbS92ZWN0b3IuY3JsMEagRKBC
hkBsZGFwOi8vbGRhcC5leGFtcGxlLmNvbS9jbj1WZWN0b3IlMjBDQT9jZXJ0aWZp
Y2F0ZVJldm9jYXRpb25MaXN0MB0GA1UdDgQWBBThxKChrUc0XzIsuO3/9OqTREQE
9DAfBgNVHSMEGDAWgBQmP+7BBwQGERxqPYOpyVBsLB/ufzANBgkqhkiG9w0BAQsF
AAOCAQEAltlQHE2/cE2FpJm1yPJZFXsp6gsQjSBl6CUCctnF3Zs29qh3Ei7EI1GU
zYyihhS+xXuSHXpv6ypYwhM5IkfN857Nu/4OqPreBGuD/7rnbd8v6I8mc2rChDtr
ghJhhFsYei9PoNgEJ3MfXNn7IWNypU5weC8mpb094xGalX/N0Qh+4QwTlsMehjqt
HBZrbX+i1M3MoZiFwkWarpPTVr9njXB/po5zmnk4CVhx5SDQ2H+YjajTFbefc7BV
idNFrbZ+gr0099rrPcWGfMqSFSdZrb58SBATk4Vn7h1qHaLnLFa1r7ZCOIp4QV3X
QO0Pw2oISEYN/L5kn7oo4iLWobtMXA==
-----END CERTIFICATE-----
"""
    /// The CRL: v2, thisUpdate 2026-12-02T02:01:05Z, nextUpdate 2027-01-01T02:01:05Z,
    /// CRL number 1, entries 0x1000 (keyCompromise + invalidityDate) and 0x1001 (superseded).
    static let crlDER = Array(Data(base64Encoded: "MIIB4DCByQIBATANBgkqhkiG9w0BAQsFADAlMQ8wDQYDVQQKDAZWZWN0b3IxEjAQBgNVBAMMCVZlY3RvciBDQRcNMjYxMjAyMDIwMTA1WhcNMjcwMTAxMDIwMTA1WjBgMDsCAhAAFw0yNjEyMDIwMjAxMDVaMCYwCgYDVR0VBAMKAQEwGAYDVR0YBBEYDzIwMjYwMTAxMTIwMDAwWjAhAgIQARcNMjYxMjAyMDIwMTA1WjAMMAoGA1UdFQQDCgEEoA4wDDAKBgNVHRQEAwIBATANBgkqhkiG9w0BAQsFAAOCAQEAdKyIwtFyKc+X0UMMKwc9MMDYn9106shPWzlCh2WeI2uPQln98neP2e2ALi3Mc2xaLzVBTDaTdXDvJAu6++5H2AiCLRr8Q5aykrNjgPL51dXf/pXIpZiGWHqSZiH8dvXpVyElJYvZlvBkzpHkkN0q/lsjkzFdF8xvjzpwXywAk/4RX9sAV4yZr3Y6UvgKHec9DXD0IJFxC++kpKrO3V459QOSCpgpBTqbQOF2SCFWlLAVuBmvvvoYWRL0/Zj4bpqArITGDX0IEV377Wtq/hA+bUy2FKu6mmu1gDrSPvZCmj8BwIjmHyU4PPwTNzTLLOBefWMF81nAr2s0YH2pkCBCqQ==")!)

    static let thisUpdate = Date(timeIntervalSince1970: 1_796_176_865)  // 2026-12-02T02:01:05Z
    static let nextUpdate = Date(timeIntervalSince1970: 1_798_768_865)  // 2027-01-01T02:01:05Z
    static let during = thisUpdate.addingTimeInterval(86_400)

    private func certificate(_ pem: String) throws -> Certificate { try Certificate(pemEncoded: pem) }

    // MARK: - CertificateList

    func testOpenSSLVectorDecodesAndReencodesByteForByte() throws {
        let list = try CertificateList(derEncoded: Self.crlDER)
        XCTAssertEqual(DERBytes.of(list), Self.crlDER)
        XCTAssertEqual(DERBytes.of(list.tbsCertList), Array(list.signedBytes), "the signed part re-encodes as received")
        XCTAssertEqual(list.tbsCertList.version, 1)
        XCTAssertEqual(list.tbsCertList.revokedCertificates.count, 2)
        XCTAssertEqual(list.tbsCertList.extensions.map(\.oid), [[2, 5, 29, 20]], "CRL number")
        XCTAssertFalse(list.tbsCertList.extensions[0].critical)
    }

    func testOpenSSLVectorFieldsAndEntryExtensions() throws {
        let crl = try CertificateRevocationList(derEncoded: Self.crlDER)
        XCTAssertEqual(crl.issuer, try certificate(Self.vectorCA).subject)
        XCTAssertEqual(crl.thisUpdate, Self.thisUpdate)
        XCTAssertEqual(crl.nextUpdate, Self.nextUpdate)
        XCTAssertEqual(crl.revokedCount, 2)

        let first = try XCTUnwrap(try crl.entry(for: Certificate.SerialNumber(bytes: [0x10, 0x00])))
        XCTAssertEqual(first.reason, .keyCompromise)
        XCTAssertEqual(first.invalidityDate, Date(timeIntervalSince1970: 1_767_268_800))
        XCTAssertEqual(first.revocationDate, Self.thisUpdate)
        let second = try XCTUnwrap(try crl.entry(for: Certificate.SerialNumber(bytes: [0x10, 0x01])))
        XCTAssertEqual(second.reason, .superseded)
        XCTAssertNil(second.invalidityDate)
        XCTAssertNil(try crl.entry(for: Certificate.SerialNumber(bytes: [0x10, 0x02])))
    }

    func testSignatureVerifiesWithTheIssuerOnly() throws {
        let crl = try CertificateRevocationList(derEncoded: Self.crlDER)
        XCTAssertTrue(crl.isSigned(by: try certificate(Self.vectorCA)))
        XCTAssertFalse(crl.isSigned(by: try TestPKI.rogue().certificate))
        var tampered = Self.crlDER
        tampered[tampered.count - 5] ^= 0x01  // inside the signature value
        XCTAssertFalse(try CertificateRevocationList(derEncoded: tampered).isSigned(by: try certificate(Self.vectorCA)))
        var tamperedContent = Self.crlDER
        let serialOffset = try XCTUnwrap(Self.find([0x02, 0x02, 0x10, 0x01], in: tamperedContent))
        tamperedContent[serialOffset + 3] = 0x02  // entry 0x1001 → 0x1002: same length, signature broken
        XCTAssertFalse(try CertificateRevocationList(derEncoded: tamperedContent).isSigned(by: try certificate(Self.vectorCA)))
    }

    /// swift-asn1's rejection habit: every truncation drip-fed, trailing bytes, a wrong outer tag.
    func testRejectsTruncatedTrailingAndRetagged() throws {
        for length in 0..<Self.crlDER.count {
            XCTAssertThrowsError(try CertificateRevocationList(derEncoded: Array(Self.crlDER.prefix(length))), "prefix \(length) accepted")
        }
        for trailer: [UInt8] in [[0x00], [0x05, 0x00], Self.crlDER] {
            XCTAssertThrowsError(try CertificateRevocationList(derEncoded: Self.crlDER + trailer))
        }
        var retagged = Self.crlDER
        retagged[0] = 0x31
        XCTAssertThrowsError(try CertificateRevocationList(derEncoded: retagged))
        XCTAssertThrowsError(try CertificateRevocationList(derEncoded: [])) { error in
            XCTAssertEqual((error as? SCEPError)?.code, .unusableCRL)
        }
    }

    func testConstructedListRoundTripsWithReasonAndInvalidityDate() throws {
        let ca = try TestPKI.ca()
        let revokedAt = Date(timeIntervalSince1970: 1_800_000_000)
        let der = try TestCRLPublisher.crl(issuer: ca.subject, signer: ca.key, revoked: [
            .init(serial: Certificate.SerialNumber(bytes: [0x01, 0x02, 0x03]), at: revokedAt, reason: .cessationOfOperation,
                  invalidityDate: revokedAt.addingTimeInterval(-60)),
            .init(serial: Certificate.SerialNumber(bytes: [0x7F]), at: revokedAt, reason: nil),
        ], now: revokedAt)
        let list = try CertificateList(derEncoded: der)
        XCTAssertEqual(DERBytes.of(list), der)
        XCTAssertEqual(try CertificateList(derEncoded: DERBytes.of(list)), list)
        let crl = try CertificateRevocationList(derEncoded: der)
        XCTAssertTrue(crl.isSigned(by: ca.certificate))
        let entry = try XCTUnwrap(try crl.entry(for: Certificate.SerialNumber(bytes: [0x01, 0x02, 0x03])))
        XCTAssertEqual(entry.reason, .cessationOfOperation)
        XCTAssertEqual(entry.invalidityDate, revokedAt.addingTimeInterval(-60))
        XCTAssertEqual(entry.revocationDate, revokedAt)
        XCTAssertNil(try XCTUnwrap(try crl.entry(for: Certificate.SerialNumber(bytes: [0x7F]))).reason)
    }

    func testEveryReasonCodeRoundTrips() throws {
        for reason in CRLReason.allCases {
            let entry = RevokedCertificate(serialNumber: [0x05], revocationDate: CRLTime(Self.thisUpdate),
                                           extensions: [try RevokedCertificate.reasonExtension(reason)])
            let parsed = try RevokedCertificate(derEncoded: DERBytes.of(entry))
            XCTAssertEqual(try parsed.reason(), reason)
            XCTAssertEqual(parsed, entry)
        }
        // ENUMERATED 7 is not a CRLReason; an INTEGER is not an ENUMERATED.
        for value: [UInt8] in [[0x0A, 0x01, 0x07], [0x02, 0x01, 0x01]] {
            let entry = RevokedCertificate(serialNumber: [0x05], revocationDate: CRLTime(Self.thisUpdate),
                                           extensions: [Certificate.Extension(oid: RevokedCertificate.reasonCodeOID, critical: false, value: value[...])])
            XCTAssertThrowsError(try entry.reason())
        }
    }

    func testTimesAfter2049AreGeneralizedTime() throws {
        let date = Date(timeIntervalSince1970: 2_600_000_000)  // 2052
        let bytes = DERBytes.of(CRLTime(date))
        XCTAssertEqual(bytes.first, 0x18)
        XCTAssertEqual(try CRLTime(derEncoded: try DER.parse(bytes)).date, date)
        XCTAssertEqual(DERBytes.of(CRLTime(Self.thisUpdate)).first, 0x17)
    }

    /// A time keeps the form it came in (a GeneralizedTime before 2050, fractions), so the
    /// CRL re-encodes to the bytes that were signed (found by the `crl` fuzz target's
    /// byte-exact re-encoding check).
    func testTimesKeepTheirReceivedForm() throws {
        for text in ["20261202020105Z", "20261202020105.5Z"] {
            let der: [UInt8] = [0x18, UInt8(text.utf8.count)] + Array(text.utf8)
            let time = try CRLTime(derEncoded: try DER.parse(der))
            XCTAssertEqual(DERBytes.of(time), der, text)
            XCTAssertEqual(time.wholeSeconds.date, Self.thisUpdate, text)
            XCTAssertEqual(DERBytes.of(time.wholeSeconds).first, 0x17, "the RFC's form is UTCTime")
        }
    }

    func testVersionAndExtensionRules() throws {
        let ca = try TestPKI.ca()
        let algorithm = AlgorithmIdentifier.withNullParameters([1, 2, 840, 113549, 1, 1, 11])
        let crlNumber = Certificate.Extension(oid: [2, 5, 29, 20], critical: false, value: [0x02, 0x01, 0x01])
        // v1 (no version) with extensions: refused.
        let v1 = TBSCertList(version: nil, signature: algorithm, issuer: ca.subject, thisUpdate: CRLTime(Self.thisUpdate),
                             nextUpdate: nil, extensions: [crlNumber])
        XCTAssertThrowsError(try TBSCertList(derEncoded: DERBytes.of(v1)))
        // v1 without extensions and without nextUpdate: read.
        let plain = TBSCertList(version: nil, signature: algorithm, issuer: ca.subject, thisUpdate: CRLTime(Self.thisUpdate), nextUpdate: nil)
        XCTAssertEqual(try TBSCertList(derEncoded: DERBytes.of(plain)), plain)
        // "v3" does not exist.
        let v3 = TBSCertList(version: 2, signature: algorithm, issuer: ca.subject, thisUpdate: CRLTime(Self.thisUpdate), nextUpdate: nil)
        XCTAssertThrowsError(try TBSCertList(derEncoded: DERBytes.of(v3)))
    }

    // MARK: - Validation

    func testValidationAcceptsTheIssuersCRLInItsWindow() throws {
        let crl = try CertificateRevocationList(derEncoded: Self.crlDER)
        let ca = try certificate(Self.vectorCA), host = try certificate(Self.revokedHost)
        XCTAssertNoThrow(try CRLValidation.verify(crl, issuer: ca, for: host, now: Self.during))
        let entry = try XCTUnwrap(try CRLValidation.entry(for: host, in: crl))
        XCTAssertEqual(entry.reason, .keyCompromise)
    }

    /// Scenario table: each broken CRL is refused with a cause a person can act on.
    func testValidationRefusals() throws {
        let vector = try CertificateRevocationList(derEncoded: Self.crlDER)
        let ca = try certificate(Self.vectorCA), host = try certificate(Self.revokedHost)
        let rogue = try TestPKI.rogue()
        let testCA = try TestPKI.ca()
        let rogueSigned = try CertificateRevocationList(derEncoded: TestCRLPublisher.crl(issuer: ca.subject, signer: rogue.key, revoked: [], now: Self.during))
        let rogueIssued = try CertificateRevocationList(derEncoded: TestCRLPublisher.crl(issuer: rogue.subject, signer: rogue.key, revoked: [], now: Self.during))
        let hostOfTestCA = try testCA.issueRA(commonName: "other", digitalSignature: true, keyEncipherment: true, purposes: []).certificate
        let cases: [(String, CertificateRevocationList, Certificate, Certificate, Date, String)] = [
            ("out of date", vector, ca, host, Self.nextUpdate.addingTimeInterval(1), "out of date"),
            ("from the future", vector, ca, host, Self.thisUpdate.addingTimeInterval(-3600), "lies in the future"),
            ("signed by another key", rogueSigned, ca, host, Self.during, "signature does not verify"),
            ("issued by another CA", rogueIssued, ca, host, Self.during, "not by the certificate's issuer"),
            ("for another issuer's certificate", vector, ca, hostOfTestCA, Self.during, "not by the certificate's issuer"),
        ]
        for (name, crl, issuer, certificate, now, expected) in cases {
            XCTAssertThrowsError(try CRLValidation.verify(crl, issuer: issuer, for: certificate, now: now), name) { error in
                XCTAssertEqual((error as? SCEPError)?.code, .unusableCRL, name)
                XCTAssertTrue("\(error)".contains(expected), "\(name): \(error)")
            }
        }
        // The clock tolerance: a thisUpdate 4 minutes ahead is accepted.
        XCTAssertNoThrow(try CRLValidation.verify(vector, issuer: ca, for: host, now: Self.thisUpdate.addingTimeInterval(-240)))
    }

    func testACriticalExtensionThatIsNotUnderstoodIsRefused() throws {
        let ca = try TestPKI.ca()
        let algorithm = AlgorithmIdentifier.withNullParameters([1, 2, 840, 113549, 1, 1, 11])
        let deltaIndicator = Certificate.Extension(oid: [2, 5, 29, 27], critical: true, value: [0x02, 0x01, 0x01])
        let tbs = TBSCertList(version: 1, signature: algorithm, issuer: ca.subject, thisUpdate: CRLTime(Self.thisUpdate),
                              nextUpdate: CRLTime(Self.nextUpdate), extensions: [deltaIndicator])
        let signature = try ca.key.sign(digest: try CryptoPrimitives.digest(.sha256, DERBytes.of(tbs)), algorithm: .sha256)
        let der = DERBytes.of(try CertificateList(tbsCertList: tbs, signatureAlgorithm: algorithm, signature: ASN1BitString(bytes: signature[...])))
        let crl = try CertificateRevocationList(derEncoded: der)
        let host = try ca.issueRA(commonName: "h", digitalSignature: true, keyEncipherment: false, purposes: []).certificate
        XCTAssertTrue(crl.isSigned(by: ca.certificate))
        XCTAssertThrowsError(try CRLValidation.verify(crl, issuer: ca.certificate, for: host, now: Self.during)) { error in
            XCTAssertTrue("\(error)".contains("critical extension 2.5.29.27"), "\(error)")
        }
    }

    // MARK: - CRL distribution points

    func testDistributionPointsFromAnOpenSSLCertificate() throws {
        let points = try XCTUnwrap(try CRLDistributionPoints(of: try certificate(Self.hostWithDistributionPoints)))
        XCTAssertEqual(points.uris, ["http://crl.example.com/vector.crl", "ldap://ldap.example.com/cn=Vector%20CA?certificateRevocationList"])
        XCTAssertEqual(points.points.count, 2)
        XCTAssertNil(try CRLDistributionPoints(of: try certificate(Self.revokedHost)))
        let locations = try XCTUnwrap(try RevocationChecker.locations(of: try certificate(Self.hostWithDistributionPoints)))
        XCTAssertEqual(locations.first, .http("http://crl.example.com/vector.crl"))
        guard case .notFetched(_, let reason) = locations.last else { return XCTFail("\(locations)") }
        XCTAssertTrue(reason.contains("LDAP"))
        XCTAssertEqual(CRLLocation(uri: "HTTPS://x/crl"), .notFetched("HTTPS://x/crl", reason: CRLLocation(uri: "https://x").notFetchedReason!))
    }

    func testDistributionPointsRoundTrip() throws {
        let points = CRLDistributionPoints([.init(fullName: [.uniformResourceIdentifier("http://127.0.0.1:1/crl"),
                                                              .uniformResourceIdentifier("ldap://x")])])
        let der = DERBytes.of(points)
        XCTAssertEqual(try CRLDistributionPoints(derEncoded: der), points)
        // A point with a cRLIssuer (an indirect CRL) is marked.
        let withIssuer: [UInt8] = [0x30, 0x0C, 0x30, 0x0A, 0xA2, 0x08, 0x86, 0x06] + Array("ldap:x".utf8)
        XCTAssertEqual(try CRLDistributionPoints(derEncoded: withIssuer).points.first?.namesOtherIssuer, true)
        XCTAssertThrowsError(try CRLDistributionPoints(derEncoded: [0x30, 0x00]), "an empty list")
        for length in 0..<der.count { XCTAssertThrowsError(try CRLDistributionPoints(derEncoded: Array(der.prefix(length)))) }
    }

    static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        return (0...(haystack.count - needle.count)).first { Array(haystack[$0..<($0 + needle.count)]) == needle }
    }
}
