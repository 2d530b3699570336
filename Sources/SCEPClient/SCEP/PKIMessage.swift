import Foundation
import SwiftASN1
import KeyInterface
import X509

/// An outgoing SCEP pkiMessage (RFC 8894 §3):
/// SignedData { id-data { DER(ContentInfo(EnvelopedData { messageData })) } }
/// with the SCEP signed attributes. Always DER.
struct OutgoingPKIMessage {
    let messageType: MessageType
    let transactionID: String
    let senderNonce: [UInt8]
    let der: [UInt8]

    /// Builds and signs a message. `messageData` is the PKCS#10 (PKCSReq,
    /// RenewalReq) or IssuerAndSubject (CertPoll); it is encrypted to `recipient`.
    static func build(
        messageType: MessageType, transactionID: String, messageData: [UInt8],
        recipient: Certificate, signerCertificate: Certificate, signerKey: any EnrollmentKey,
        algorithms: NegotiatedAlgorithms
    ) throws -> OutgoingPKIMessage {
        let envelope = try envelop(messageData, to: recipient, cipher: algorithms.cipher)
        let senderNonce = try CryptoPrimitives.randomBytes(16)
        let digestOID = algorithms.digest.objectIdentifier
        let attributes: [CMSAttribute] = [
            CMSAttribute(type: OID.contentType, values: [try ASN1Any(erasing: OID.data)]),
            CMSAttribute(type: OID.messageDigest,
                         values: [try ASN1Any(erasing: ASN1OctetString(contentBytes: try CryptoPrimitives.digest(algorithms.digest, envelope)[...]))]),
            CMSAttribute(type: OID.scepMessageType, values: [try ASN1Any(erasing: ASN1PrintableString(messageType.rawValue))]),
            CMSAttribute(type: OID.scepTransactionID, values: [try ASN1Any(erasing: ASN1PrintableString(transactionID))]),
            CMSAttribute(type: OID.scepSenderNonce, values: [try ASN1Any(erasing: ASN1OctetString(contentBytes: senderNonce[...]))]),
        ]
        let signedBytes = try SignerInfo.signedBytes(of: attributes)
        let signature = try signerKey.sign(digest: try CryptoPrimitives.digest(algorithms.digest, signedBytes), algorithm: algorithms.digest)

        let signerInfo = try SignerInfo(
            version: 1,
            signerIdentifier: .issuerAndSerialNumber(try IssuerAndSerialNumber(certificate: signerCertificate)),
            digestAlgorithm: AlgorithmIdentifier(algorithm: digestOID),
            signedAttributes: attributes,
            signatureAlgorithm: .withNullParameters(OID.rsaEncryption),
            signature: ASN1OctetString(contentBytes: signature[...]))
        let signedData = SignedData(
            version: 1,
            digestAlgorithms: [AlgorithmIdentifier(algorithm: digestOID)],
            encapsulatedContentInfo: EncapsulatedContentInfo(contentType: OID.data, content: ASN1OctetString(contentBytes: envelope[...])),
            certificates: [try ASN1Any(erasing: signerCertificate)],
            signerInfos: [signerInfo])
        let contentInfo = ContentInfo(contentType: OID.signedData, content: try ASN1Any(erasing: signedData))
        var serializer = DER.Serializer()
        try serializer.serialize(contentInfo)
        return OutgoingPKIMessage(messageType: messageType, transactionID: transactionID, senderNonce: senderNonce,
                                  der: serializer.serializedBytes)
    }

    /// ContentInfo(EnvelopedData) with one key-transport recipient (RFC 5652 §6).
    static func envelop(_ content: [UInt8], to recipient: Certificate, cipher: ContentCipher) throws -> [UInt8] {
        let key = try CryptoPrimitives.randomBytes(cipher.keyLength)
        let iv = try CryptoPrimitives.randomBytes(cipher.ivLength)
        let ciphertext = try CryptoPrimitives.encrypt(content, cipher: cipher, key: key, iv: iv)
        let recipientSPKI = try recipient.publicKey.subjectPublicKeyInfoDER()
        let encryptedKey = try CryptoPrimitives.rsaEncrypt(key, to: recipientSPKI)
        let recipientInfo = KeyTransRecipientInfo(
            version: 0,
            recipient: .issuerAndSerialNumber(try IssuerAndSerialNumber(certificate: recipient)),
            keyEncryptionAlgorithm: .withNullParameters(OID.rsaEncryption),
            encryptedKey: ASN1OctetString(contentBytes: encryptedKey[...]))
        let enveloped = EnvelopedData(
            version: 0,
            recipientInfos: [.keyTransport(recipientInfo)],
            encryptedContentInfo: EncryptedContentInfo(
                contentType: OID.data,
                contentEncryptionAlgorithm: AlgorithmIdentifier(
                    algorithm: cipher.objectIdentifier,
                    parameters: try ASN1Any(erasing: ASN1OctetString(contentBytes: iv[...]))),
                encryptedContent: ASN1OctetString(contentBytes: ciphertext[...])))
        var serializer = DER.Serializer()
        try serializer.serialize(ContentInfo(contentType: OID.envelopedData, content: try ASN1Any(erasing: enveloped)))
        return serializer.serializedBytes
    }
}

extension IssuerAndSerialNumber {
    init(certificate: Certificate) throws {
        self.init(issuer: try ASN1Any(erasing: certificate.issuer), serialNumber: certificate.serialNumber.bytes)
    }

    func matches(_ certificate: Certificate) -> Bool {
        guard let other = try? IssuerAndSerialNumber(certificate: certificate) else { return false }
        return other.serialNumber == serialNumber && other.issuer == issuer
    }
}

extension Certificate.PublicKey {
    func subjectPublicKeyInfoDER() throws -> [UInt8] {
        var serializer = DER.Serializer()
        try serializer.serialize(self)
        return serializer.serializedBytes
    }
}

extension DigestAlgorithm {
    var objectIdentifier: ASN1ObjectIdentifier {
        switch self {
        case .sha1: return OID.sha1
        case .sha256: return OID.sha256
        case .sha384: return OID.sha384
        case .sha512: return OID.sha512
        }
    }

    init?(objectIdentifier: ASN1ObjectIdentifier) {
        guard let match = DigestAlgorithm.allCases.first(where: { $0.objectIdentifier == objectIdentifier }) else { return nil }
        self = match
    }
}

extension ContentCipher {
    var objectIdentifier: ASN1ObjectIdentifier {
        switch self {
        case .aes128CBC: return OID.aes128CBC
        case .aes192CBC: return OID.aes192CBC
        case .aes256CBC: return OID.aes256CBC
        case .desEDE3CBC: return OID.desEDE3CBC
        case .desCBC: return OID.desCBC
        }
    }

    init?(objectIdentifier: ASN1ObjectIdentifier) {
        guard let match = ContentCipher.allCases.first(where: { $0.objectIdentifier == objectIdentifier }) else { return nil }
        self = match
    }
}
