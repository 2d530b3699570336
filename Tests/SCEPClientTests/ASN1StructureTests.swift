import Crypto
import SwiftASN1
import TPMKeys
import X509
import XCTest

@testable import SCEPClient

// Every CMS/SCEP ASN.1 structure against a vector from an independent encoder
// (Fixtures.swift), a constructed round trip, the rejections swift-asn1's own
// tests check (truncation byte by byte, trailing bytes, wrong tag, indefinite
// length under DER), and its BER forms.

// MARK: - Helpers shared by the test files

enum ASN1TestSupport {
    static func der<T: DERSerializable>(_ value: T) throws -> [UInt8] {
        var serializer = DER.Serializer()
        try serializer.serialize(value)
        return serializer.serializedBytes
    }

    /// Re-encodes DER as BER the way streaming encoders do: constructed nodes shallower
    /// than `indefiniteDepth` get indefinite lengths, and primitive nodes whose identifier
    /// is in `chunked` become constructed strings of 3-byte OCTET STRING segments.
    /// Nodes at `indefiniteDepth` and deeper are copied verbatim, so opaque fields
    /// (`ASN1Any`: Names, certificates) keep their DER bytes.
    static func ber(_ der: [UInt8], indefiniteDepth: Int, chunked: Set<ASN1Identifier> = []) throws -> [UInt8] {
        try ber(DER.parse(der), depth: 0, limit: indefiniteDepth, chunked: chunked)
    }

    private static func ber(_ node: ASN1Node, depth: Int, limit: Int, chunked: Set<ASN1Identifier>) throws -> [UInt8] {
        guard depth < limit else { return Array(node.encodedBytes) }
        switch node.content {
        case .constructed(let children):
            var out = [try identifierByte(node.identifier, constructed: true), 0x80]
            for child in children {
                out += try ber(child, depth: depth + 1, limit: limit, chunked: chunked)
            }
            return out + [0x00, 0x00]
        case .primitive(let content):
            guard chunked.contains(node.identifier) else { return Array(node.encodedBytes) }
            var out = [try identifierByte(node.identifier, constructed: true), 0x80]
            var rest = content[...]
            while !rest.isEmpty {
                let segment = rest.prefix(3)
                out += [0x04, UInt8(segment.count)] + segment
                rest = rest.dropFirst(segment.count)
            }
            return out + [0x00, 0x00]
        }
    }

    /// Offset in `der` of the node reached by child indexes `path` (empty: the root).
    static func offset(in der: [UInt8], path: [Int]) throws -> Int {
        var node = try DER.parse(der)
        for index in path {
            guard case .constructed(let children) = node.content, index < Array(children).count else {
                throw ASN1Error.invalidASN1Object(reason: "test helper: no child \(index)")
            }
            node = Array(children)[index]
        }
        return node.encodedBytes.startIndex
    }

    static func identifierByte(_ identifier: ASN1Identifier, constructed: Bool) throws -> UInt8 {
        guard identifier.tagNumber < 31 else {
            throw ASN1Error.invalidASN1Object(reason: "test helper handles low tag numbers only")
        }
        let classBits: UInt8
        switch identifier.tagClass {
        case .universal: classBits = 0x00
        case .application: classBits = 0x40
        case .contextSpecific: classBits = 0x80
        case .private: classBits = 0xC0
        }
        return classBits | (constructed ? 0x20 : 0) | UInt8(identifier.tagNumber)
    }

    static func certificate(pem: String) throws -> Certificate {
        try Certificate(pemEncoded: pem)
    }

    static func subjectKeyIdentifier(of certificate: Certificate) throws -> ArraySlice<UInt8>? {
        try certificate.extensions.subjectKeyIdentifier?.keyIdentifier
    }
}

/// Decodes `der`, checks it re-encodes to the same bytes, and returns the value.
func decodeReencodeExact<T: BERImplicitlyTaggable>(
    _ type: T.Type, _ der: [UInt8], file: StaticString = #filePath, line: UInt = #line
) throws -> T {
    XCTAssertFalse(der.isEmpty, "empty fixture", file: file, line: line)
    let value = try T(derEncoded: der)
    XCTAssertEqual(try ASN1TestSupport.der(value), der, "\(T.self) does not re-encode byte for byte", file: file, line: line)
    return value
}

/// The rejections of swift-asn1's own tests: every truncation (drip-fed, prefixes
/// 0..<count) throws under DER and BER, trailing bytes are refused, a wrong outer tag
/// is refused, and an indefinite length is refused under DER but read under BER.
func assertRejectsMalformed<T: BERImplicitlyTaggable & Equatable>(
    _ type: T.Type, _ der: [UInt8], file: StaticString = #filePath, line: UInt = #line
) throws {
    XCTAssertNoThrow(try T(derEncoded: der), "the unmodified vector must parse", file: file, line: line)
    for length in 0..<der.count {
        let prefix = Array(der.prefix(length))
        XCTAssertThrowsError(try T(derEncoded: prefix), "DER prefix of \(length)/\(der.count) bytes accepted", file: file, line: line)
        XCTAssertThrowsError(try T(berEncoded: prefix), "BER prefix of \(length)/\(der.count) bytes accepted", file: file, line: line)
    }
    for trailer: [UInt8] in [[0x00], [0x05, 0x00], der] {
        XCTAssertThrowsError(try T(derEncoded: der + trailer), "trailing \(trailer.count) bytes accepted under DER", file: file, line: line)
        XCTAssertThrowsError(try T(berEncoded: der + trailer), "trailing \(trailer.count) bytes accepted under BER", file: file, line: line)
    }
    for wrongTag: UInt8 in [0x31, 0xA0, 0x04] where wrongTag != der[0] {
        var retagged = der
        retagged[0] = wrongTag
        XCTAssertThrowsError(try T(derEncoded: retagged), "outer tag 0x\(String(wrongTag, radix: 16)) accepted", file: file, line: line)
    }
    let indefinite = try ASN1TestSupport.ber(der, indefiniteDepth: 1)
    XCTAssertThrowsError(try T(derEncoded: indefinite), "indefinite length accepted under DER", file: file, line: line)
    XCTAssertEqual(try T(berEncoded: indefinite), try T(derEncoded: der), "indefinite outer length not read under BER", file: file, line: line)
    for length in 0..<indefinite.count {
        XCTAssertThrowsError(try T(berEncoded: Array(indefinite.prefix(length))), "BER (indefinite) prefix of \(length) bytes accepted", file: file, line: line)
    }
}

/// construct → serialize → parse → equal (and the re-serialization is stable).
func assertRoundTrips<T: BERImplicitlyTaggable & Equatable>(_ value: T, file: StaticString = #filePath, line: UInt = #line) throws {
    let der = try ASN1TestSupport.der(value)
    let parsed = try T(derEncoded: der)
    XCTAssertEqual(parsed, value, file: file, line: line)
    XCTAssertEqual(try ASN1TestSupport.der(parsed), der, file: file, line: line)
    XCTAssertEqual(try T(berEncoded: der), value, "DER is valid BER", file: file, line: line)
}

/// Certificates as `ASN1Any` in DER SET OF order (what a parse of a DER SET returns).
func derOrderedCertificates(_ certificates: [Certificate]) throws -> [ASN1Any] {
    let encoded = try certificates.map { try ASN1TestSupport.der($0) }
    return try encoded.sorted { $0.lexicographicallyPrecedes($1) }.map { try ASN1Any(derEncoded: $0) }
}

private let contextZero = ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)
private let helloSCEP = Array("hello SCEP".utf8)

// MARK: - AlgorithmIdentifier

final class AlgorithmIdentifierTests: XCTestCase {
    func testVectorsDecodeAndReencodeExactly() throws {
        let sha256 = try decodeReencodeExact(AlgorithmIdentifier.self, OpenSSLVectors.sha256AlgorithmIdentifier)
        XCTAssertEqual(sha256.algorithm, OID.sha256)
        XCTAssertNil(sha256.parameters, "OpenSSL omits the parameters of SHA-256")

        let rsa = try decodeReencodeExact(AlgorithmIdentifier.self, OpenSSLVectors.rsaEncryptionAlgorithmIdentifier)
        XCTAssertEqual(rsa, .withNullParameters(OID.rsaEncryption))

        let aes = try decodeReencodeExact(AlgorithmIdentifier.self, OpenSSLVectors.aes128AlgorithmIdentifierGenconf)
        XCTAssertEqual(aes.algorithm, OID.aes128CBC)
        let iv = try ASN1OctetString(asn1Any: try XCTUnwrap(aes.parameters))
        XCTAssertEqual(Array(iv.bytes), Array(0...15))

        let fromEnvelope = try decodeReencodeExact(AlgorithmIdentifier.self, OpenSSLVectors.aes128AlgorithmIdentifier)
        XCTAssertEqual(fromEnvelope.algorithm, OID.aes128CBC)
        XCTAssertEqual(try ASN1OctetString(asn1Any: try XCTUnwrap(fromEnvelope.parameters)).bytes.count, 16)
    }

    func testRoundTrip() throws {
        try assertRoundTrips(AlgorithmIdentifier(algorithm: OID.sha512))
        try assertRoundTrips(AlgorithmIdentifier.withNullParameters(OID.sha256WithRSA))
        try assertRoundTrips(AlgorithmIdentifier(
            algorithm: OID.aes256CBC, parameters: try ASN1Any(erasing: ASN1OctetString(contentBytes: [UInt8](repeating: 7, count: 16)[...]))))
    }

    func testRejectsMalformed() throws {
        try assertRejectsMalformed(AlgorithmIdentifier.self, OpenSSLVectors.aes128AlgorithmIdentifierGenconf)
        try assertRejectsMalformed(AlgorithmIdentifier.self, OpenSSLVectors.rsaEncryptionAlgorithmIdentifier)
        // Not an OID first.
        XCTAssertThrowsError(try AlgorithmIdentifier(derEncoded: [0x30, 0x02, 0x05, 0x00]))
        // Two parameters.
        XCTAssertThrowsError(try AlgorithmIdentifier(derEncoded: [0x30, 0x07, 0x06, 0x01, 0x2A, 0x05, 0x00, 0x05, 0x00]))
    }

    func testBERIndefiniteLengthEqualsDER() throws {
        let der = OpenSSLVectors.aes128AlgorithmIdentifierGenconf
        let ber = try ASN1TestSupport.ber(der, indefiniteDepth: 1)
        XCTAssertNotEqual(ber, der)
        XCTAssertEqual(try AlgorithmIdentifier(berEncoded: ber), try AlgorithmIdentifier(derEncoded: der))
    }
}

// MARK: - CMSAttribute

final class CMSAttributeTests: XCTestCase {
    func testVectorsDecodeAndReencodeExactly() throws {
        let messageType = try decodeReencodeExact(CMSAttribute.self, OpenSSLVectors.scepMessageTypeAttribute)
        XCTAssertEqual(messageType.type, OID.scepMessageType)
        XCTAssertEqual(messageType.values.count, 1)
        XCTAssertEqual(String(try ASN1PrintableString(asn1Any: messageType.values[0])), MessageType.pkcsReq.rawValue)

        let digest = try decodeReencodeExact(CMSAttribute.self, OpenSSLVectors.messageDigestAttribute)
        XCTAssertEqual(digest.type, OID.messageDigest)
        let value = try ASN1OctetString(asn1Any: try XCTUnwrap(digest.values.first))
        XCTAssertEqual(Array(value.bytes), Array(SHA256.hash(data: helloSCEP)))
    }

    func testRoundTrip() throws {
        try assertRoundTrips(CMSAttribute(type: OID.scepTransactionID, values: [try ASN1Any(erasing: ASN1PrintableString("abc123"))]))
        // SET OF: values listed in DER order (shorter first), as parsing returns them.
        try assertRoundTrips(CMSAttribute(type: OID.scepSenderNonce, values: [
            try ASN1Any(erasing: ASN1OctetString(contentBytes: [1][...])),
            try ASN1Any(erasing: ASN1OctetString(contentBytes: [9, 8, 7][...])),
        ]))
    }

    func testRejectsMalformed() throws {
        try assertRejectsMalformed(CMSAttribute.self, OpenSSLVectors.scepMessageTypeAttribute)
        try assertRejectsMalformed(CMSAttribute.self, OpenSSLVectors.messageDigestAttribute)
        // attrValues must be a SET, not a SEQUENCE.
        var notASet = OpenSSLVectors.scepMessageTypeAttribute
        let setOffset = try ASN1TestSupport.offset(in: notASet, path: [1])
        XCTAssertEqual(notASet[setOffset], 0x31)
        notASet[setOffset] = 0x30
        XCTAssertThrowsError(try CMSAttribute(derEncoded: notASet))
    }

    func testBERIndefiniteLengthEqualsDER() throws {
        let der = OpenSSLVectors.scepMessageTypeAttribute
        let ber = try ASN1TestSupport.ber(der, indefiniteDepth: 2)
        XCTAssertEqual(try CMSAttribute(berEncoded: ber), try CMSAttribute(derEncoded: der))
    }

    func testSingleValueLookup() throws {
        let attributes = [
            try CMSAttribute(derEncoded: OpenSSLVectors.scepMessageTypeAttribute),
            try CMSAttribute(derEncoded: OpenSSLVectors.messageDigestAttribute),
        ]
        XCTAssertNotNil(try attributes.singleValue(OID.scepMessageType))
        XCTAssertNil(try attributes.singleValue(OID.scepTransactionID))
        // RFC 8894 §3.2.1: a repeated attribute, or one with two values, is malformed.
        XCTAssertThrowsError(try (attributes + [attributes[0]]).singleValue(OID.scepMessageType))
        let twoValues = CMSAttribute(type: OID.scepPKIStatus, values: [
            try ASN1Any(erasing: ASN1PrintableString("0")), try ASN1Any(erasing: ASN1PrintableString("2")),
        ])
        XCTAssertThrowsError(try [twoValues].singleValue(OID.scepPKIStatus))
    }
}

// MARK: - ContentInfo

final class ContentInfoTests: XCTestCase {
    func testVectorsDecodeAndReencodeExactly() throws {
        let signed = try decodeReencodeExact(ContentInfo.self, OpenSSLVectors.signedDataContentInfo)
        XCTAssertEqual(signed.contentType, OID.signedData)
        XCTAssertEqual(try ASN1TestSupport.der(signed.content), OpenSSLVectors.signedData)

        let enveloped = try decodeReencodeExact(ContentInfo.self, OpenSSLVectors.envelopedDataContentInfo)
        XCTAssertEqual(enveloped.contentType, OID.envelopedData)
        XCTAssertEqual(try ASN1TestSupport.der(enveloped.content), OpenSSLVectors.envelopedData)

        XCTAssertEqual(try decodeReencodeExact(ContentInfo.self, OpenSSLVectors.signedDataKeyIDContentInfo).contentType, OID.signedData)
        XCTAssertEqual(try decodeReencodeExact(ContentInfo.self, OpenSSLVectors.envelopedDataKeyIDContentInfo).contentType, OID.envelopedData)
    }

    func testRoundTrip() throws {
        try assertRoundTrips(ContentInfo(contentType: OID.data, content: try ASN1Any(erasing: ASN1OctetString(contentBytes: helloSCEP[...]))))
    }

    func testRejectsMalformed() throws {
        try assertRejectsMalformed(ContentInfo.self, OpenSSLVectors.envelopedDataContentInfo)
        // content must be [0] EXPLICIT.
        var retagged = OpenSSLVectors.envelopedDataContentInfo
        let contentOffset = try ASN1TestSupport.offset(in: retagged, path: [1])
        XCTAssertEqual(retagged[contentOffset], 0xA0)
        retagged[contentOffset] = 0xA1
        XCTAssertThrowsError(try ContentInfo(derEncoded: retagged))
    }

    func testBERIndefiniteLengthEqualsDER() throws {
        let der = OpenSSLVectors.signedDataContentInfo
        let ber = try ASN1TestSupport.ber(der, indefiniteDepth: 2)
        XCTAssertEqual(try ContentInfo(berEncoded: ber), try ContentInfo(derEncoded: der))
    }
}

// MARK: - EncapsulatedContentInfo

final class EncapsulatedContentInfoTests: XCTestCase {
    func testVectorDecodesAndReencodesExactly() throws {
        let info = try decodeReencodeExact(EncapsulatedContentInfo.self, OpenSSLVectors.encapsulatedContentInfo)
        XCTAssertEqual(info.contentType, OID.data)
        XCTAssertEqual(info.content.map { Array($0.bytes) }, helloSCEP)
    }

    func testRoundTrip() throws {
        try assertRoundTrips(EncapsulatedContentInfo(contentType: OID.data, content: ASN1OctetString(contentBytes: [1, 2, 3][...])))
        // eContent absent: a detached signature or a certs-only PKCS#7.
        let empty = EncapsulatedContentInfo(contentType: OID.data, content: nil)
        try assertRoundTrips(empty)
        XCTAssertEqual(try ASN1TestSupport.der(empty), [0x30, 0x0B, 0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x01])
    }

    func testRejectsMalformed() throws {
        try assertRejectsMalformed(EncapsulatedContentInfo.self, OpenSSLVectors.encapsulatedContentInfo)
        // [0] must be EXPLICIT around an OCTET STRING, not IMPLICIT.
        let implicit: [UInt8] = [0x30, 0x0F, 0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x01, 0x80, 0x02, 0x01, 0x02]
        XCTAssertThrowsError(try EncapsulatedContentInfo(derEncoded: implicit))
    }

    func testBERConstructedOctetStringEqualsDER() throws {
        let der = OpenSSLVectors.encapsulatedContentInfo
        let ber = try ASN1TestSupport.ber(der, indefiniteDepth: 3, chunked: [.octetString])
        XCTAssertTrue(ber.contains(0x24), "the OCTET STRING is constructed in the BER form")
        XCTAssertThrowsError(try EncapsulatedContentInfo(derEncoded: ber))
        XCTAssertEqual(try EncapsulatedContentInfo(berEncoded: ber), try EncapsulatedContentInfo(derEncoded: der))
    }
}

// MARK: - EncryptedContentInfo

final class EncryptedContentInfoTests: XCTestCase {
    func testVectorDecodesAndReencodesExactly() throws {
        let info = try decodeReencodeExact(EncryptedContentInfo.self, OpenSSLVectors.encryptedContentInfo)
        XCTAssertEqual(info.contentType, OID.data)
        XCTAssertEqual(info.contentEncryptionAlgorithm, try AlgorithmIdentifier(derEncoded: OpenSSLVectors.aes128AlgorithmIdentifier))
        XCTAssertEqual(info.encryptedContent?.bytes.count, 16, "10 bytes of content pad to one AES block")
    }

    func testRoundTrip() throws {
        let algorithm = AlgorithmIdentifier(
            algorithm: OID.aes128CBC, parameters: try ASN1Any(erasing: ASN1OctetString(contentBytes: [UInt8](repeating: 1, count: 16)[...])))
        try assertRoundTrips(EncryptedContentInfo(
            contentType: OID.data, contentEncryptionAlgorithm: algorithm, encryptedContent: ASN1OctetString(contentBytes: [UInt8](0..<32)[...])))
        try assertRoundTrips(EncryptedContentInfo(contentType: OID.data, contentEncryptionAlgorithm: algorithm, encryptedContent: nil))
    }

    func testRejectsMalformed() throws {
        try assertRejectsMalformed(EncryptedContentInfo.self, OpenSSLVectors.encryptedContentInfo)
        // encryptedContent [0] retagged [1]: unexpected element.
        var retagged = OpenSSLVectors.encryptedContentInfo
        let contentOffset = try ASN1TestSupport.offset(in: retagged, path: [2])
        XCTAssertEqual(retagged[contentOffset], 0x80)
        retagged[contentOffset] = 0x81
        XCTAssertThrowsError(try EncryptedContentInfo(derEncoded: retagged))
    }

    func testBERConstructedEncryptedContentEqualsDER() throws {
        let der = OpenSSLVectors.encryptedContentInfo
        let ber = try ASN1TestSupport.ber(der, indefiniteDepth: 2, chunked: [contextZero])
        XCTAssertEqual(try EncryptedContentInfo(berEncoded: ber), try EncryptedContentInfo(derEncoded: der))
    }
}

// MARK: - EnvelopedData

final class EnvelopedDataTests: XCTestCase {
    func testVectorDecodesAndReencodesExactly() throws {
        let enveloped = try decodeReencodeExact(EnvelopedData.self, OpenSSLVectors.envelopedData)
        XCTAssertEqual(enveloped.version, 0)
        XCTAssertEqual(enveloped.recipientInfos.count, 1)
        guard case .keyTransport(let ktri) = enveloped.recipientInfos.first else {
            return XCTFail("expected a key-transport recipient")
        }
        XCTAssertEqual(ktri, try KeyTransRecipientInfo(derEncoded: OpenSSLVectors.keyTransRecipientInfo))
        XCTAssertEqual(enveloped.encryptedContentInfo, try EncryptedContentInfo(derEncoded: OpenSSLVectors.encryptedContentInfo))
    }

    func testRoundTrip() throws {
        let ktri = try KeyTransRecipientInfo(derEncoded: OpenSSLVectors.keyTransRecipientInfo)
        let ski = try KeyTransRecipientInfo(derEncoded: OpenSSLVectors.keyTransRecipientInfoKeyID)
        let content = try EncryptedContentInfo(derEncoded: OpenSSLVectors.encryptedContentInfo)
        try assertRoundTrips(EnvelopedData(version: 0, recipientInfos: [.keyTransport(ktri)], encryptedContentInfo: content))
        // SET OF: listed in DER order (the SKI one is shorter), as parsing returns them.
        try assertRoundTrips(EnvelopedData(version: 2, recipientInfos: [.keyTransport(ski), .keyTransport(ktri)], encryptedContentInfo: content))
        // A kekri ([2]) recipient is carried opaquely.
        let kekri = try ASN1Any(derEncoded: [0xA2, 0x03, 0x02, 0x01, 0x04])
        try assertRoundTrips(EnvelopedData(version: 2, recipientInfos: [.keyTransport(ktri), .other(kekri)], encryptedContentInfo: content))
    }

    func testRejectsMalformed() throws {
        try assertRejectsMalformed(EnvelopedData.self, OpenSSLVectors.envelopedData)
        // An empty RecipientInfos SET.
        let content = try EncryptedContentInfo(derEncoded: OpenSSLVectors.encryptedContentInfo)
        var serializer = DER.Serializer()
        try serializer.appendConstructedNode(identifier: .sequence) { coder in
            try coder.serialize(0)
            try coder.serializeSetOf([ASN1Any]())
            try coder.serialize(content)
        }
        XCTAssertThrowsError(try EnvelopedData(derEncoded: serializer.serializedBytes))
    }

    func testOpenSSLStreamingBEREqualsItsDERTwin() throws {
        let fromBER = try ContentInfo(berEncoded: OpenSSLVectors.envelopedDataStreamBER)
        let fromDER = try decodeReencodeExact(ContentInfo.self, OpenSSLVectors.envelopedDataStreamDER)
        XCTAssertThrowsError(try ContentInfo(derEncoded: OpenSSLVectors.envelopedDataStreamBER))
        XCTAssertEqual(fromBER.contentType, OID.envelopedData)
        let berEnveloped = try EnvelopedData(berEncoded: ASN1TestSupport.der(fromBER.content))
        let derEnveloped = try decodeReencodeExact(EnvelopedData.self, ASN1TestSupport.der(fromDER.content))
        XCTAssertEqual(berEnveloped, derEnveloped)
        XCTAssertEqual(berEnveloped.encryptedContentInfo.encryptedContent?.bytes.count, 16)
    }

    func testBERIndefiniteLengthEqualsDER() throws {
        let der = OpenSSLVectors.envelopedData
        let ber = try ASN1TestSupport.ber(der, indefiniteDepth: 4, chunked: [contextZero])
        XCTAssertEqual(try EnvelopedData(berEncoded: ber), try EnvelopedData(derEncoded: der))
    }
}

// MARK: - IssuerAndSerialNumber

final class IssuerAndSerialNumberTests: XCTestCase {
    func testVectorDecodesAndReencodesExactly() throws {
        let ias = try decodeReencodeExact(IssuerAndSerialNumber.self, OpenSSLVectors.issuerAndSerialNumber)
        // The DER INTEGER is 00 8F 01 02 03 04: the sign byte is not part of the value.
        XCTAssertEqual(Array(ias.serialNumber), [0x8F, 0x01, 0x02, 0x03, 0x04])
        let signer = try ASN1TestSupport.certificate(pem: OpenSSLVectors.signerCertificatePEM)
        XCTAssertEqual(ias.issuer, try ASN1Any(erasing: signer.issuer))
        XCTAssertTrue(ias.matches(signer))
        XCTAssertEqual(try IssuerAndSerialNumber(certificate: signer), ias)
        XCTAssertFalse(ias.matches(try ASN1TestSupport.certificate(pem: OpenSSLVectors.recipientCertificatePEM)))
    }

    func testRoundTrip() throws {
        let signer = try ASN1TestSupport.certificate(pem: OpenSSLVectors.signerCertificatePEM)
        try assertRoundTrips(try IssuerAndSerialNumber(certificate: signer))
        try assertRoundTrips(IssuerAndSerialNumber(issuer: try ASN1Any(erasing: signer.subject), serialNumber: [0x01][...]))
    }

    func testRejectsMalformed() throws {
        try assertRejectsMalformed(IssuerAndSerialNumber.self, OpenSSLVectors.issuerAndSerialNumber)
        // The issuer must be a Name (SEQUENCE), not e.g. an INTEGER.
        XCTAssertThrowsError(try IssuerAndSerialNumber(derEncoded: [0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01]))
    }

    func testBERIndefiniteLengthEqualsDER() throws {
        let der = OpenSSLVectors.issuerAndSerialNumber
        XCTAssertEqual(try IssuerAndSerialNumber(berEncoded: ASN1TestSupport.ber(der, indefiniteDepth: 1)), try IssuerAndSerialNumber(derEncoded: der))
    }
}

// MARK: - IssuerAndSubject (RFC 8894 CertPoll)

final class IssuerAndSubjectTests: XCTestCase {
    func testVectorDecodesAndReencodesExactly() throws {
        let value = try decodeReencodeExact(IssuerAndSubject.self, OpenSSLVectors.issuerAndSubject)
        let signer = try ASN1TestSupport.certificate(pem: OpenSSLVectors.signerCertificatePEM)
        XCTAssertEqual(value.issuer, try ASN1Any(erasing: signer.subject), "genconf wrote the same UTF8String Name OpenSSL puts in certificates")
        XCTAssertEqual(try DistinguishedName(asn1Any: value.subject).description, "CN=device-0042")
    }

    func testRoundTrip() throws {
        let issuer = try DistinguishedName { OrganizationName("Test CA"); CommonName("Issuing CA") }
        let subject = try DistinguishedName { CommonName("host.example") }
        try assertRoundTrips(IssuerAndSubject(issuer: try ASN1Any(erasing: issuer), subject: try ASN1Any(erasing: subject)))
    }

    func testRejectsMalformed() throws {
        try assertRejectsMalformed(IssuerAndSubject.self, OpenSSLVectors.issuerAndSubject)
        // Only one Name.
        let signer = try ASN1TestSupport.certificate(pem: OpenSSLVectors.signerCertificatePEM)
        var serializer = DER.Serializer()
        try serializer.appendConstructedNode(identifier: .sequence) { try $0.serialize(signer.subject) }
        XCTAssertThrowsError(try IssuerAndSubject(derEncoded: serializer.serializedBytes))
    }

    func testBERIndefiniteLengthEqualsDER() throws {
        let der = OpenSSLVectors.issuerAndSubject
        XCTAssertEqual(try IssuerAndSubject(berEncoded: ASN1TestSupport.ber(der, indefiniteDepth: 1)), try IssuerAndSubject(derEncoded: der))
    }
}

// MARK: - KeyTransRecipientInfo

final class KeyTransRecipientInfoTests: XCTestCase {
    func testVectorsDecodeAndReencodeExactly() throws {
        let recipient = try ASN1TestSupport.certificate(pem: OpenSSLVectors.recipientCertificatePEM)

        let byName = try decodeReencodeExact(KeyTransRecipientInfo.self, OpenSSLVectors.keyTransRecipientInfo)
        XCTAssertEqual(byName.version, 0)
        guard case .issuerAndSerialNumber(let ias) = byName.recipient else { return XCTFail("expected issuerAndSerialNumber") }
        XCTAssertTrue(ias.matches(recipient))
        XCTAssertEqual(Array(ias.serialNumber), [7])
        XCTAssertEqual(byName.keyEncryptionAlgorithm, .withNullParameters(OID.rsaEncryption))
        XCTAssertEqual(byName.encryptedKey.bytes.count, 256, "RSA-2048 key transport")

        let byKeyID = try decodeReencodeExact(KeyTransRecipientInfo.self, OpenSSLVectors.keyTransRecipientInfoKeyID)
        XCTAssertEqual(byKeyID.version, 2)
        XCTAssertEqual(byKeyID.recipient, .subjectKeyIdentifier(try XCTUnwrap(ASN1TestSupport.subjectKeyIdentifier(of: recipient))))
    }

    func testRoundTrip() throws {
        let recipient = try ASN1TestSupport.certificate(pem: OpenSSLVectors.recipientCertificatePEM)
        try assertRoundTrips(KeyTransRecipientInfo(
            version: 0, recipient: .issuerAndSerialNumber(try IssuerAndSerialNumber(certificate: recipient)),
            keyEncryptionAlgorithm: .withNullParameters(OID.rsaEncryption), encryptedKey: ASN1OctetString(contentBytes: [1, 2, 3][...])))
        try assertRoundTrips(KeyTransRecipientInfo(
            version: 2, recipient: .subjectKeyIdentifier([0xAB, 0xCD][...]),
            keyEncryptionAlgorithm: .withNullParameters(OID.rsaEncryption), encryptedKey: ASN1OctetString(contentBytes: [4][...])))
    }

    func testRejectsMalformed() throws {
        try assertRejectsMalformed(KeyTransRecipientInfo.self, OpenSSLVectors.keyTransRecipientInfo)
        try assertRejectsMalformed(KeyTransRecipientInfo.self, OpenSSLVectors.keyTransRecipientInfoKeyID)
        // rid [1] is not a RecipientIdentifier.
        var retagged = OpenSSLVectors.keyTransRecipientInfoKeyID
        let ridOffset = try ASN1TestSupport.offset(in: retagged, path: [1])
        XCTAssertEqual(retagged[ridOffset], 0x80)
        retagged[ridOffset] = 0x81
        XCTAssertThrowsError(try KeyTransRecipientInfo(derEncoded: retagged))
    }

    func testBERIndefiniteLengthEqualsDER() throws {
        let der = OpenSSLVectors.keyTransRecipientInfo
        XCTAssertEqual(try KeyTransRecipientInfo(berEncoded: ASN1TestSupport.ber(der, indefiniteDepth: 2)), try KeyTransRecipientInfo(derEncoded: der))
        // A constructed (BER) encryptedKey and subjectKeyIdentifier are flattened.
        let keyID = OpenSSLVectors.keyTransRecipientInfoKeyID
        let chunked = try ASN1TestSupport.ber(keyID, indefiniteDepth: 2, chunked: [.octetString, contextZero])
        XCTAssertEqual(try KeyTransRecipientInfo(berEncoded: chunked), try KeyTransRecipientInfo(derEncoded: keyID))
    }
}

// MARK: - SignedData

final class SignedDataTests: XCTestCase {
    func testVectorDecodesAndReencodesExactly() throws {
        let signedData = try decodeReencodeExact(SignedData.self, OpenSSLVectors.signedData)
        XCTAssertEqual(signedData.version, 1)
        XCTAssertEqual(signedData.digestAlgorithms, [AlgorithmIdentifier(algorithm: OID.sha256)])
        XCTAssertEqual(signedData.encapsulatedContentInfo, try EncapsulatedContentInfo(derEncoded: OpenSSLVectors.encapsulatedContentInfo))
        let signer = try ASN1TestSupport.certificate(pem: OpenSSLVectors.signerCertificatePEM)
        XCTAssertEqual(signedData.certificates, [try ASN1Any(erasing: signer)])
        XCTAssertNil(signedData.crls)
        XCTAssertEqual(signedData.signerInfos, [try SignerInfo(derEncoded: OpenSSLVectors.signerInfo)])
    }

    func testOpenSSLSignatureVerifiesOverReceivedSignedAttributes() throws {
        let signedData = try SignedData(derEncoded: OpenSSLVectors.signedData)
        let signerInfo = try XCTUnwrap(signedData.signerInfos.first)
        let signer = try ASN1TestSupport.certificate(pem: OpenSSLVectors.signerCertificatePEM)
        let spki = try signer.publicKey.subjectPublicKeyInfoDER()
        let signedBytes = try XCTUnwrap(signerInfo.signedAttributesSignedBytes)
        XCTAssertTrue(try CryptoPrimitives.verifyRSASignature(Array(signerInfo.signature.bytes), over: signedBytes, digest: .sha256, subjectPublicKeyInfo: spki))
        var tampered = signedBytes
        tampered[tampered.count - 1] ^= 0x01
        XCTAssertFalse(try CryptoPrimitives.verifyRSASignature(Array(signerInfo.signature.bytes), over: tampered, digest: .sha256, subjectPublicKeyInfo: spki))
    }

    func testRoundTrip() throws {
        let signerInfo = try SignerInfo(derEncoded: OpenSSLVectors.signerInfo)
        let signer = try ASN1TestSupport.certificate(pem: OpenSSLVectors.signerCertificatePEM)
        try assertRoundTrips(SignedData(
            version: 1, digestAlgorithms: [AlgorithmIdentifier(algorithm: OID.sha256)],
            encapsulatedContentInfo: EncapsulatedContentInfo(contentType: OID.data, content: ASN1OctetString(contentBytes: helloSCEP[...])),
            certificates: [try ASN1Any(erasing: signer)], signerInfos: [signerInfo]))
        // Degenerate certs-only (GetCACert with an RA): no digest algorithms, no signers.
        let recipient = try ASN1TestSupport.certificate(pem: OpenSSLVectors.recipientCertificatePEM)
        try assertRoundTrips(SignedData(
            version: 1, digestAlgorithms: [], encapsulatedContentInfo: EncapsulatedContentInfo(contentType: OID.data, content: nil),
            certificates: try derOrderedCertificates([signer, recipient]), signerInfos: []))
        // CRLs are carried through.
        try assertRoundTrips(SignedData(
            version: 1, digestAlgorithms: [], encapsulatedContentInfo: EncapsulatedContentInfo(contentType: OID.data, content: nil),
            certificates: nil, crls: [try ASN1Any(derEncoded: [0x30, 0x00])], signerInfos: []))
    }

    func testRejectsMalformed() throws {
        try assertRejectsMalformed(SignedData.self, OpenSSLVectors.signedData)
    }

    func testOpenSSLStreamingBEREqualsItsDERTwin() throws {
        let fromBER = try ContentInfo(berEncoded: OpenSSLVectors.signedDataStreamBER)
        let fromDER = try decodeReencodeExact(ContentInfo.self, OpenSSLVectors.signedDataStreamDER)
        XCTAssertThrowsError(try ContentInfo(derEncoded: OpenSSLVectors.signedDataStreamBER))
        let berSigned = try SignedData(berEncoded: ASN1TestSupport.der(fromBER.content))
        let derSigned = try decodeReencodeExact(SignedData.self, ASN1TestSupport.der(fromDER.content))
        XCTAssertEqual(berSigned, derSigned)
        XCTAssertEqual(berSigned.encapsulatedContentInfo.content.map { Array($0.bytes) }, helloSCEP)
    }

    func testBERIndefiniteLengthEqualsDER() throws {
        let der = OpenSSLVectors.signedData
        // depth 0: SignedData, 1: SETs / EncapsulatedContentInfo / [0] certs, 2: [0] eContent, 3: OCTET STRING.
        // SignerInfos (depth 2 inside the SET) stay DER, so their signed bytes are unchanged.
        let ber = try ASN1TestSupport.ber(der, indefiniteDepth: 2)
        XCTAssertEqual(try SignedData(berEncoded: ber), try SignedData(derEncoded: der))
    }
}

// MARK: - SignerInfo

final class SignerInfoTests: XCTestCase {
    func testVectorDecodesAndReencodesExactly() throws {
        let info = try decodeReencodeExact(SignerInfo.self, OpenSSLVectors.signerInfo)
        XCTAssertEqual(info.version, 1)
        guard case .issuerAndSerialNumber(let ias) = info.signerIdentifier else { return XCTFail("expected issuerAndSerialNumber") }
        XCTAssertEqual(ias, try IssuerAndSerialNumber(derEncoded: OpenSSLVectors.issuerAndSerialNumber))
        XCTAssertEqual(info.digestAlgorithm, AlgorithmIdentifier(algorithm: OID.sha256))
        XCTAssertEqual(info.signedAttributes?.map(\.type), [OID.contentType, OID.signingTime, OID.messageDigest])
        XCTAssertEqual(info.signatureAlgorithm, .withNullParameters(OID.rsaEncryption))
        XCTAssertEqual(info.signature.bytes.count, 256)
        XCTAssertNil(info.unsignedAttributes)

        let keyID = try decodeReencodeExact(SignerInfo.self, OpenSSLVectors.signerInfoKeyID)
        XCTAssertEqual(keyID.version, 3)
        let signer = try ASN1TestSupport.certificate(pem: OpenSSLVectors.signerCertificatePEM)
        XCTAssertEqual(keyID.signerIdentifier, .subjectKeyIdentifier(try XCTUnwrap(ASN1TestSupport.subjectKeyIdentifier(of: signer))))
    }

    func testSignedBytesAreTheReceivedAttributesRetaggedAsSet() throws {
        let info = try SignerInfo(derEncoded: OpenSSLVectors.signerInfo)
        let received = OpenSSLVectors.signerInfoSignedAttributes
        XCTAssertEqual(received.first, 0xA0)
        XCTAssertEqual(info.signedAttributesSignedBytes, [0x31] + received.dropFirst())
    }

    func testSignedBytesOfAConstructedSignerInfoAreTheDERSetOf() throws {
        let parsed = try SignerInfo(derEncoded: OpenSSLVectors.signerInfo)
        // Built in the reverse of DER order: the SET OF must sort them.
        let attributes = Array(try XCTUnwrap(parsed.signedAttributes).reversed())
        let constructed = try SignerInfo(
            version: 1, signerIdentifier: parsed.signerIdentifier, digestAlgorithm: parsed.digestAlgorithm,
            signedAttributes: attributes, signatureAlgorithm: parsed.signatureAlgorithm, signature: parsed.signature)
        var serializer = DER.Serializer()
        try serializer.serializeSetOf(attributes)
        XCTAssertEqual(constructed.signedAttributesSignedBytes, serializer.serializedBytes)
        XCTAssertEqual(constructed.signedAttributesSignedBytes, parsed.signedAttributesSignedBytes, "DER order equals what OpenSSL signed")
        // And what goes on the wire is the same SET with the [0] tag.
        XCTAssertEqual(try ASN1TestSupport.der(constructed), OpenSSLVectors.signerInfo)
    }

    func testRoundTrip() throws {
        let parsed = try SignerInfo(derEncoded: OpenSSLVectors.signerInfo)
        try assertRoundTrips(parsed)
        let withUnsigned = try SignerInfo(
            version: 3, signerIdentifier: .subjectKeyIdentifier([1, 2, 3][...]), digestAlgorithm: AlgorithmIdentifier(algorithm: OID.sha512),
            signedAttributes: [try CMSAttribute(derEncoded: OpenSSLVectors.scepMessageTypeAttribute)],
            signatureAlgorithm: .withNullParameters(OID.sha512WithRSA), signature: ASN1OctetString(contentBytes: [9][...]),
            unsignedAttributes: [try CMSAttribute(derEncoded: OpenSSLVectors.messageDigestAttribute)])
        try assertRoundTrips(withUnsigned)
        let noAttributes = try SignerInfo(
            version: 1, signerIdentifier: parsed.signerIdentifier, digestAlgorithm: parsed.digestAlgorithm,
            signedAttributes: nil, signatureAlgorithm: parsed.signatureAlgorithm, signature: parsed.signature)
        XCTAssertNil(noAttributes.signedAttributesSignedBytes)
        try assertRoundTrips(noAttributes)
    }

    func testRejectsMalformed() throws {
        try assertRejectsMalformed(SignerInfo.self, OpenSSLVectors.signerInfo)
        try assertRejectsMalformed(SignerInfo.self, OpenSSLVectors.signerInfoKeyID)
    }

    func testBERIndefiniteOuterLengthEqualsDER() throws {
        let der = OpenSSLVectors.signerInfo
        XCTAssertEqual(try SignerInfo(berEncoded: ASN1TestSupport.ber(der, indefiniteDepth: 1)), try SignerInfo(derEncoded: der))
    }

    func testBERSignedAttributesKeepTheirReceivedBytes() throws {
        let der = OpenSSLVectors.signerInfo
        let ber = try ASN1TestSupport.ber(der, indefiniteDepth: 2)
        let fromBER = try SignerInfo(berEncoded: ber)
        let fromDER = try SignerInfo(derEncoded: der)
        XCTAssertEqual(fromBER.signedAttributes, fromDER.signedAttributes)
        XCTAssertEqual(fromBER.signature, fromDER.signature)
        // The signature covers the bytes as received (RFC 5652 §5.4): here the BER form.
        let receivedAttributes = try ASN1TestSupport.ber(OpenSSLVectors.signerInfoSignedAttributes, indefiniteDepth: 1)
        XCTAssertEqual(fromBER.signedAttributesSignedBytes, [0x31] + receivedAttributes.dropFirst())
    }
}

// MARK: - A real exchange with micromdm scepserver

/// Collects events from the library's `SCEPEventHandler`.
final class EventRecorder: @unchecked Sendable {
    private let lock = NSLock()
    private var recorded: [SCEPEvent] = []

    var handler: SCEPEventHandler { { event in self.lock.withLock { self.recorded.append(event) } } }
    var events: [SCEPEvent] { lock.withLock { recorded } }
}

final class ScepServerCaptureTests: XCTestCase {
    private func caCertificate() throws -> Certificate {
        try Certificate(derEncoded: ScepServerCapture.caCertificate)
    }

    /// transactionID and senderNonce of the PKCSReq scepclient sent.
    private func requestExpectation(signers: [Certificate]) throws -> ReplyExpectation {
        let request = try ParsedCertRep(ScepServerCapture.pkcsReq)
        return ReplyExpectation(
            transactionID: try XCTUnwrap(try request.printableAttribute(OID.scepTransactionID, "transactionID")),
            senderNonce: try XCTUnwrap(try request.octetAttribute(OID.scepSenderNonce, "senderNonce")),
            allowedSigners: signers)
    }

    func testCertRepParses() throws {
        let reply = try ParsedCertRep(ScepServerCapture.certRep)
        XCTAssertEqual(reply.signerInfo.digestAlgorithm.algorithm, OID.sha1)
        XCTAssertEqual(reply.signerInfo.signatureAlgorithm.algorithm, OID.sha1WithRSA)
        XCTAssertEqual(try reply.printableAttribute(OID.scepMessageType, "messageType"), MessageType.certRep.rawValue)
        XCTAssertEqual(try reply.printableAttribute(OID.scepPKIStatus, "pkiStatus"), PKIStatus.success.rawValue)
        XCTAssertEqual(reply.signedData.certificates?.count, 2, "the issued certificate and the CA")
        guard case .issuerAndSerialNumber(let signer) = reply.signerInfo.signerIdentifier else { return XCTFail("expected issuerAndSerialNumber") }
        XCTAssertTrue(signer.matches(try caCertificate()))
    }

    func testCertRepContentInfoReencodesExactly() throws {
        let contentInfo = try decodeReencodeExact(ContentInfo.self, ScepServerCapture.certRep)
        XCTAssertEqual(contentInfo.contentType, OID.signedData)
        XCTAssertEqual(try ContentInfo(berEncoded: ScepServerCapture.certRep), contentInfo)
    }

    /// scepserver lists the certificates issued-first, which is not DER SET OF order;
    /// our encoder sorts them. Everything else re-encodes byte for byte.
    func testCertRepSignedDataReencodesExactlyUpToCertificateOrder() throws {
        let contentInfo = try ContentInfo(derEncoded: ScepServerCapture.certRep)
        let received = try ASN1TestSupport.der(contentInfo.content)
        let signedData = try SignedData(derEncoded: received)
        let reencoded = try ASN1TestSupport.der(signedData)
        XCTAssertNotEqual(reencoded, received)

        // The received bytes with the [0] certificates put in DER order.
        let certificatesNode = try ASN1TestSupport.offset(in: received, path: [3])
        let first = try ASN1TestSupport.offset(in: received, path: [3, 0])
        let second = try ASN1TestSupport.offset(in: received, path: [3, 1])
        let signerInfos = try ASN1TestSupport.offset(in: received, path: [4])
        XCTAssertEqual(received[certificatesNode], 0xA0)
        let certificates = [Array(received[first..<second]), Array(received[second..<signerInfos])]
        XCTAssertFalse(certificates[0].lexicographicallyPrecedes(certificates[1]), "the capture is in non-DER order")
        let expected = Array(received[..<first]) + certificates.sorted { $0.lexicographicallyPrecedes($1) }.joined() + Array(received[signerInfos...])
        XCTAssertEqual(reencoded, expected)
        XCTAssertEqual(try SignedData(derEncoded: reencoded).signerInfos, signedData.signerInfos)
    }

    func testCertRepSignatureVerifiesWithTheCA() throws {
        let reply = try ParsedCertRep(ScepServerCapture.certRep)
        let spki = try caCertificate().publicKey.subjectPublicKeyInfoDER()
        let signedBytes = try XCTUnwrap(reply.signerInfo.signedAttributesSignedBytes)
        XCTAssertTrue(try CryptoPrimitives.verifyRSASignature(Array(reply.signerInfo.signature.bytes), over: signedBytes, digest: .sha1, subjectPublicKeyInfo: spki))
    }

    func testCertRepVerifiesAndItsDESEnvelopeOpensWithTheClientKey() throws {
        let reply = try ParsedCertRep(ScepServerCapture.certRep)
        let ca = try caCertificate()
        let events = EventRecorder()
        guard case .success(let envelope) = try reply.verified(against: try requestExpectation(signers: [ca]), events: events.handler) else {
            return XCTFail("the capture is a SUCCESS CertRep")
        }
        let key = try SoftwareKey(pem: ScepServerCapture.clientKeyPEM)
        let certificates = try CertRepEnvelope.openCertificates(envelope, key: key, events: events.handler)
        XCTAssertEqual(certificates.count, 1)
        let issued = try XCTUnwrap(certificates.first)
        XCTAssertEqual(issued.issuer, ca.subject)
        XCTAssertEqual(try issued.publicKey.subjectPublicKeyInfoDER(), key.subjectPublicKeyInfo)
        XCTAssertTrue(issued.subject.description.contains("CN=fixture-client"), "\(issued.subject)")
        // SHA-1 signature and single-DES envelope are both reported.
        XCTAssertEqual(events.events.count, 2, "\(events.events)")
    }

    func testCertRepFromTheWrongExchangeIsRefused() throws {
        let reply = try ParsedCertRep(ScepServerCapture.certRep)
        let good = try requestExpectation(signers: [try caCertificate()])
        let otherNonce = ReplyExpectation(transactionID: good.transactionID, senderNonce: [UInt8](repeating: 0, count: 16), allowedSigners: good.allowedSigners)
        XCTAssertThrowsError(try reply.verified(against: otherNonce, events: { _ in })) { XCTAssertEqual(($0 as? SCEPError)?.code, .replyMismatch) }
        let otherID = ReplyExpectation(transactionID: "another", senderNonce: good.senderNonce, allowedSigners: good.allowedSigners)
        XCTAssertThrowsError(try reply.verified(against: otherID, events: { _ in })) { XCTAssertEqual(($0 as? SCEPError)?.code, .replyMismatch) }
        let stranger = try ASN1TestSupport.certificate(pem: OpenSSLVectors.signerCertificatePEM)
        let otherSigner = ReplyExpectation(transactionID: good.transactionID, senderNonce: good.senderNonce, allowedSigners: [stranger])
        XCTAssertThrowsError(try reply.verified(against: otherSigner, events: { _ in })) { XCTAssertEqual(($0 as? SCEPError)?.code, .untrustedCertificate) }
    }

    func testEveryTruncationOfTheCertRepIsRefused() throws {
        let body = ScepServerCapture.certRep
        for length in 0..<body.count {
            XCTAssertThrowsError(try ParsedCertRep(Array(body.prefix(length)))) { error in
                XCTAssertEqual((error as? SCEPError)?.code, .malformedReply, "prefix \(length)")
            }
        }
        XCTAssertThrowsError(try ContentInfo(derEncoded: body + [0x00]))
    }

    func testScepclientPKCSReqParsesAndReencodesExactly() throws {
        let contentInfo = try decodeReencodeExact(ContentInfo.self, ScepServerCapture.pkcsReq)
        let signedData = try decodeReencodeExact(SignedData.self, ASN1TestSupport.der(contentInfo.content))
        let request = try ParsedCertRep(ScepServerCapture.pkcsReq)
        XCTAssertEqual(try request.printableAttribute(OID.scepMessageType, "messageType"), MessageType.pkcsReq.rawValue)
        XCTAssertEqual(try request.octetAttribute(OID.scepSenderNonce, "senderNonce")?.count, 16)
        // Its signature verifies with the self-signed certificate it carries.
        let signer = try Certificate(derEncoded: ASN1TestSupport.der(try XCTUnwrap(signedData.certificates?.first)))
        let signerInfo = try XCTUnwrap(signedData.signerInfos.first)
        XCTAssertTrue(try CryptoPrimitives.verifyRSASignature(
            Array(signerInfo.signature.bytes), over: try XCTUnwrap(signerInfo.signedAttributesSignedBytes), digest: .sha1,
            subjectPublicKeyInfo: try signer.publicKey.subjectPublicKeyInfoDER()))
        // The envelope inside is to the CA, DES-CBC, with a constructed [0] (as Go's pkcs7 writes it).
        let envelope = try ContentInfo(berEncoded: Array(try XCTUnwrap(signedData.encapsulatedContentInfo.content).bytes))
        let enveloped = try EnvelopedData(berEncoded: ASN1TestSupport.der(envelope.content))
        XCTAssertEqual(enveloped.encryptedContentInfo.contentEncryptionAlgorithm.algorithm, OID.desCBC)
        guard case .keyTransport(let ktri) = enveloped.recipientInfos.first, case .issuerAndSerialNumber(let rid) = ktri.recipient else {
            return XCTFail("expected a key-transport recipient named by issuer and serial")
        }
        XCTAssertTrue(rid.matches(try caCertificate()))
    }
}
