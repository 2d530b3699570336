import Crypto
import Foundation
import SCEPClient
import SwiftASN1
import X509
import XCTest

@testable import EnrollAgent

/// `certificateUserIds` values against Microsoft's documented examples and a
/// certificate built here with a known key, SKI, UPN and e-mail.
final class CertificateUserIDsTests: XCTestCase {
    // MARK: Microsoft's documented vectors

    /// how-to-certificate-based-authentication, "Issuer and serial number manual mapping":
    /// certutil shows serial 48efa06ba8127299499b069f133441b2 and the bytes
    /// b2 41 34 … 48; the value to store is b24134139f069b49997212a86ba0ef48.
    func testSerialIsTheCertificatesSerialBytesReversedInLowercaseHex() {
        XCTAssertEqual(CertificateUserIDs.serialNumber(Self.bytes("48efa06ba8127299499b069f133441b2")),
                       "b24134139f069b49997212a86ba0ef48")
        // A DER serial keeps its leading zero byte (high bit set), which ends up last.
        XCTAssertEqual(CertificateUserIDs.serialNumber([0x00, 0x9a, 0x01]), "019a00")
        XCTAssertEqual(CertificateUserIDs.serialNumber([0x07]), "07")
    }

    /// The same page: issuer `C=US,O=U.SGovernment,OU=DoD,OU=PKI,OU=CONTRACTOR,CN=CRL.BALA.SelfSignedCertificate`,
    /// most significant RDN first, no spaces.
    func testIssuerIsWrittenMostSignificantFirstWithoutSpaces() throws {
        let issuer = try DistinguishedName {
            CountryName("US")
            OrganizationName("U.SGovernment")
            OrganizationalUnitName("DoD")
            OrganizationalUnitName("PKI")
            OrganizationalUnitName("CONTRACTOR")
            CommonName("CRL.BALA.SelfSignedCertificate")
        }
        XCTAssertEqual(EntraDistinguishedName.format(issuer),
                       "C=US,O=U.SGovernment,OU=DoD,OU=PKI,OU=CONTRACTOR,CN=CRL.BALA.SelfSignedCertificate")
        // swift-certificates (like RFC 4514 and openssl) writes the other way round.
        XCTAssertEqual("\(issuer)", "CN=CRL.BALA.SelfSignedCertificate,OU=CONTRACTOR,OU=PKI,OU=DoD,O=U.SGovernment,C=US")
    }

    /// concept-certificate-based-authentication-certificateuserids, "Supported patterns":
    /// a certificate from CONTOSO-DC-CA for mfatest, serial 48efa06b… gives exactly the
    /// Subject, IssuerAndSubject and IssuerAndSerialNumber values of Microsoft's table.
    func testMicrosoftsTableValuesForTheContosoCertificate() throws {
        let issuer = try DistinguishedName { DomainComponent("com"); DomainComponent("contoso"); CommonName("CONTOSO-DC-CA") }
        let subject = try DistinguishedName {
            DomainComponent("com"); DomainComponent("contoso"); OrganizationalUnitName("UserAccounts"); CommonName("mfatest")
        }
        let certificate = try Self.certificate(issuer: issuer, subject: subject,
                                               serial: Self.bytes("48efa06ba8127299499b069f133441b2"), extensions: Certificate.Extensions())
        let values = Dictionary(uniqueKeysWithValues: CertificateUserIDs(certificate: certificate).values.map { ($0.mapping, $0.value) })
        XCTAssertEqual(values[.subject], "X509:<S>DC=com,DC=contoso,OU=UserAccounts,CN=mfatest")
        XCTAssertEqual(values[.issuerAndSubject], "X509:<I>DC=com,DC=contoso,CN=CONTOSO-DC-CA<S>DC=com,DC=contoso,OU=UserAccounts,CN=mfatest")
        XCTAssertEqual(values[.issuerAndSerialNumber], "X509:<I>DC=com,DC=contoso,CN=CONTOSO-DC-CA<SR>b24134139f069b49997212a86ba0ef48")
        // No SAN and no SKI extension: no PN, RFC822 or SKI value to match.
        XCTAssertNil(values[.principalName])
        XCTAssertNil(values[.rfc822Name])
        XCTAssertNil(values[.subjectKeyIdentifier])
    }

    // MARK: A certificate with every field

    /// Every value of a certificate with a UPN, an e-mail SAN, an SKI extension and a
    /// known P-256 key, exactly and in Microsoft's table order. The expected SHA-1 of the
    /// public key was computed with `openssl pkey -pubout -outform der | tail -c 65 | sha1sum`.
    func testEveryValueOfACertificateWithAllFields() throws {
        let issuer = try DistinguishedName { OrganizationName("Example Corp"); CommonName("Example Issuing CA 1") }
        let subject = try DistinguishedName { OrganizationName("Example"); CommonName("host01@example.com") }
        var extensions = Certificate.Extensions()
        try extensions.append(Certificate.Extension(SubjectAlternativeNames([
            .dnsName("host01.example.com"),
            .otherName(.init(typeID: CertificateUserIDs.userPrincipalName, value: try ASN1Any(erasing: ASN1UTF8String("host01@example.com")))),
            .rfc822Name("host01-admin@example.com"),
        ]), critical: false))
        // Deliberately not the key's hash: the value must come from the extension.
        try extensions.append(Certificate.Extension(SubjectKeyIdentifier(keyIdentifier: ArraySlice(1...20)), critical: false))
        let certificate = try Self.certificate(issuer: issuer, subject: subject, serial: [0x01, 0x02, 0xa0, 0xff], extensions: extensions)

        let ids = CertificateUserIDs(certificate: certificate)
        XCTAssertEqual(ids.values.map(\.value), [
            "X509:<PN>host01@example.com",
            "X509:<RFC822>host01-admin@example.com",
            "X509:<I>O=Example Corp,CN=Example Issuing CA 1<SR>ffa00201",
            "X509:<SKI>0102030405060708090a0b0c0d0e0f1011121314",
            "X509:<SHA1-PUKEY>3276ff646dda8d329f0b0c9ab8afb2d5c523886c",
            "X509:<S>O=Example,CN=host01@example.com",
            "X509:<I>O=Example Corp,CN=Example Issuing CA 1<S>O=Example,CN=host01@example.com",
        ])
        XCTAssertEqual(ids.values.map(\.mapping), CertificateUserID.Mapping.allCases)
        XCTAssertEqual(ids.issuerAndSerialNumber.value, "X509:<I>O=Example Corp,CN=Example Issuing CA 1<SR>ffa00201")
        XCTAssertEqual(ids.highAffinity.map(\.mapping), [.issuerAndSerialNumber, .subjectKeyIdentifier, .sha1PublicKey])
        // Not the certificate's SHA-1 thumbprint, which some tools put under SHA1-PUKEY.
        let thumbprint = Hex.encode(Insecure.SHA1.hash(data: try Self.der(certificate)))
        XCTAssertFalse(ids.values.contains { $0.value.hasSuffix(thumbprint) })
    }

    /// Several UPNs and e-mail SANs each give a value, in certificate order.
    func testEveryUPNAndEmailGivesAValue() throws {
        let name = try DistinguishedName { CommonName("x") }
        var extensions = Certificate.Extensions()
        try extensions.append(Certificate.Extension(SubjectAlternativeNames([
            .rfc822Name("b@example.com"),
            .otherName(.init(typeID: CertificateUserIDs.userPrincipalName, value: try ASN1Any(erasing: ASN1UTF8String("a@example")))),
            .rfc822Name("c@example.com"),
            .otherName(.init(typeID: [1, 3, 6, 1, 5, 2, 2], value: try ASN1Any(erasing: ASN1UTF8String("not-a-upn")))),
        ]), critical: false))
        let values = CertificateUserIDs(certificate: try Self.certificate(issuer: name, subject: name, serial: [1], extensions: extensions)).values
        XCTAssertEqual(values.filter { $0.mapping == .principalName }.map(\.value), ["X509:<PN>a@example"])
        XCTAssertEqual(values.filter { $0.mapping == .rfc822Name }.map(\.value), ["X509:<RFC822>b@example.com", "X509:<RFC822>c@example.com"])
    }

    /// An empty subject (allowed when the SAN carries the identity) gives no Subject or
    /// IssuerAndSubject value, which would otherwise match every such certificate.
    func testAnEmptySubjectGivesNoSubjectValues() throws {
        let issuer = try DistinguishedName { CommonName("CA") }
        let values = CertificateUserIDs(certificate: try Self.certificate(issuer: issuer, subject: DistinguishedName(), serial: [5],
                                                                          extensions: Certificate.Extensions())).values
        XCTAssertEqual(values.map(\.mapping), [.issuerAndSerialNumber, .sha1PublicKey])
    }

    // MARK: Affinity

    /// The deep dive's table: IssuerAndSerialNumber, SKI and SHA1PublicKey are
    /// high affinity; the name- and e-mail-based mappings are low.
    func testAffinityScenarios() {
        let table: [(CertificateUserID.Mapping, prefix: String, CertificateUserID.Affinity)] = [
            (.principalName, "X509:<PN>", .low),
            (.rfc822Name, "X509:<RFC822>", .low),
            (.issuerAndSerialNumber, "X509:<I>", .high),
            (.subjectKeyIdentifier, "X509:<SKI>", .high),
            (.sha1PublicKey, "X509:<SHA1-PUKEY>", .high),
            (.subject, "X509:<S>", .low),
            (.issuerAndSubject, "X509:<I>", .low),
        ]
        XCTAssertEqual(table.map(\.0), CertificateUserID.Mapping.allCases, "every mapping is in the table")
        for (mapping, _, affinity) in table {
            XCTAssertEqual(mapping.affinity, affinity, "\(mapping)")
            XCTAssertEqual(CertificateUserID(mapping: mapping, value: "").affinity, affinity, "\(mapping)")
        }
    }

    // MARK: Names

    func testDistinguishedNameScenarios() throws {
        let cases: [(DistinguishedName, String)] = [
            (try DistinguishedName { CountryName("DE"); StateOrProvinceName("Berlin"); LocalityName("Berlin"); CommonName("a") },
             "C=DE,S=Berlin,L=Berlin,CN=a"),
            (try DistinguishedName { EmailAddress("pki@example.com"); CommonName("b") }, "E=pki@example.com,CN=b"),
            // A value with a separator is quoted the way CertNameToStr quotes it.
            (try DistinguishedName { OrganizationName("Example, Inc."); CommonName("say \"hi\"") },
             "O=\"Example, Inc.\",CN=\"say \"\"hi\"\"\""),
            // Names Windows has a key for, and one it has not.
            (DistinguishedName([
                RelativeDistinguishedName(.init(type: [2, 5, 4, 42], utf8String: "Ada")),
                RelativeDistinguishedName(.init(type: [2, 5, 4, 4], utf8String: "Lovelace")),
                RelativeDistinguishedName(.init(type: [0, 9, 2342, 19_200_300, 100, 1, 1], utf8String: "ada")),
             ]), "G=Ada,SN=Lovelace,OID.0.9.2342.19200300.100.1.1=ada"),
            // A multi-valued RDN.
            (DistinguishedName([RelativeDistinguishedName([
                .init(type: .RDNAttributeType.commonName, utf8String: "c"),
                .init(type: .RDNAttributeType.organizationalUnitName, utf8String: "u"),
             ])]), "CN=c+OU=u"),
        ]
        for (name, expected) in cases {
            XCTAssertEqual(EntraDistinguishedName.format(name), expected)
        }
    }

    // MARK: JSON and Graph

    func testJSONShapeOfAValueAndOfTheGraphRequest() throws {
        let values = [CertificateUserID(mapping: .subjectKeyIdentifier, value: "X509:<SKI>0a0b"),
                      CertificateUserID(mapping: .principalName, value: "X509:<PN>a@example.com")]
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        XCTAssertEqual(String(decoding: try encoder.encode(values[0]), as: UTF8.self),
                       #"{"affinity":"high","mapping":"SubjectKeyIdentifier","value":"X509:<SKI>0a0b"}"#)
        XCTAssertEqual(String(decoding: try encoder.encode(GraphCertificateUserIDsRequest(values: values)), as: UTF8.self),
                       #"{"body":{"authorizationInfo":{"certificateUserIds":["X509:<SKI>0a0b","X509:<PN>a@example.com"]}},"#
                       + #""method":"PATCH","url":"https://graph.microsoft.com/v1.0/users/{user-object-id}"}"#)
    }

    // MARK: Helpers

    /// The subject's key: a fixed P-256 key, so its SHA-1 is a fixed vector.
    static let subjectKeyPEM = """
        -----BEGIN PRIVATE KEY-----
        MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgbv0npLQ3XliyW48U
        m2Qt0/rsLqU6de7+d/R1cjpMpeihRANCAAQKVfvjba1/BryxIUEKi3Oea7gm23yz
        a1Zcwp7IyXFmcxuejMrTNznVL+XsQexx8hRjj6zfj/yPU0tEnzlmi9QI
        -----END PRIVATE KEY-----
        """

    static func certificate(issuer: DistinguishedName, subject: DistinguishedName, serial: [UInt8],
                            extensions: Certificate.Extensions) throws -> Certificate {
        let subjectKey = try P256.Signing.PrivateKey(pemRepresentation: subjectKeyPEM)
        let now = Date()
        return try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(bytes: serial),
            publicKey: Certificate.PublicKey(subjectKey.publicKey),
            notValidBefore: now.addingTimeInterval(-60), notValidAfter: now.addingTimeInterval(86_400),
            issuer: issuer, subject: subject, signatureAlgorithm: .ecdsaWithSHA256, extensions: extensions,
            issuerPrivateKey: Certificate.PrivateKey(P256.Signing.PrivateKey()))
    }

    static func der(_ certificate: Certificate) throws -> [UInt8] {
        var serializer = DER.Serializer()
        try serializer.serialize(certificate)
        return serializer.serializedBytes
    }

    static func bytes(_ hex: String) -> [UInt8] {
        let digits = Array(hex.utf8)
        return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(decoding: digits[$0...$0 + 1], as: UTF8.self), radix: 16)! }
    }
}
