import Foundation
import SwiftASN1
import KeyInterface
import X509

/// A CertRep (RFC 8894 §3.3.2) as parsed from the wire, before anything about
/// it is trusted. `verified(...)` does the checks; nothing else reads the content.
struct ParsedCertRep {
    let signedData: SignedData
    let signerInfo: SignerInfo
    let attributes: [CMSAttribute]

    /// Parses a PKIOperation reply body. BER accepted.
    init(_ body: [UInt8]) throws {
        do {
            let contentInfo = try ContentInfo(berEncoded: body)
            guard contentInfo.contentType == OID.signedData else {
                throw SCEPError(.malformedReply, "the reply is a \(contentInfo.contentType), not a SignedData pkiMessage")
            }
            signedData = try SignedData(berEncoded: CACertificates.bytes(of: contentInfo.content))
        } catch let error as SCEPError {
            throw error
        } catch {
            throw SCEPError(.malformedReply, "the reply is not a CMS SignedData pkiMessage: \(error)")
        }
        guard signedData.signerInfos.count == 1, let signer = signedData.signerInfos.first else {
            throw SCEPError(.malformedReply, "the reply has \(signedData.signerInfos.count) signers; SCEP replies carry exactly one")
        }
        guard let attributes = signer.signedAttributes else {
            throw SCEPError(.malformedReply, "the reply has no signed attributes (messageType, pkiStatus, nonces)")
        }
        signerInfo = signer
        self.attributes = attributes
    }

    func printableAttribute(_ oid: ASN1ObjectIdentifier, _ name: String) throws -> String? {
        guard let value = try attributes.singleValue(oid) else { return nil }
        if let printable = try? ASN1PrintableString(asn1Any: value) { return String(printable) }
        if let utf8 = try? ASN1UTF8String(asn1Any: value) { return String(utf8) }
        throw SCEPError(.malformedReply, "the reply's \(name) attribute is not a string")
    }

    /// A text attribute in whatever string type the server chose (failInfoText: RFC 8894
    /// says UTF8String, servers also send PrintableString, IA5String or BMPString).
    func textAttribute(_ oid: ASN1ObjectIdentifier) -> String? {
        guard let value = try? attributes.singleValue(oid) else { return nil }
        return ASN1Text.decode(value)
    }

    func octetAttribute(_ oid: ASN1ObjectIdentifier, _ name: String) throws -> [UInt8]? {
        guard let value = try attributes.singleValue(oid) else { return nil }
        guard let octets = try? ASN1OctetString(asn1Any: value) else {
            throw SCEPError(.malformedReply, "the reply's \(name) attribute is not an OCTET STRING")
        }
        return Array(octets.bytes)
    }
}

/// A CertRep whose signature, signer, transactionID and recipientNonce have been checked.
enum VerifiedCertRep {
    /// SUCCESS: the degenerate PKCS#7 inside, still encrypted to our key.
    case success(envelope: [UInt8])
    case failure(FailInfo?, text: String?)
    case pending
}

/// What a reply must match: the request we sent and the certificates allowed to sign.
struct ReplyExpectation {
    let transactionID: String
    let senderNonce: [UInt8]
    let allowedSigners: [Certificate]
}

extension ParsedCertRep {
    /// RFC 8894 §3.2.1 and §3.3.2 checks, in the order that never lets an
    /// unverified reply reach our private key.
    func verified(against expected: ReplyExpectation, events: SCEPEventHandler) throws -> VerifiedCertRep {
        let embedded = (signedData.certificates ?? []).compactMap { try? Certificate(derEncoded: CACertificates.bytes(of: $0)) }
        let signerCertificate = try signerInfo.signer(among: expected.allowedSigners, embedded: embedded,
                                                      message: "the reply", consequence: "; nothing was installed")
        // Signature over the signed attributes, then messageDigest over the content.
        let content = signedData.encapsulatedContentInfo.content.map { Array($0.bytes) } ?? []
        let digest = try signerInfo.verifyRSASignature(content: content, signer: signerCertificate, requireSignedAttributes: true,
                                                       message: "the reply", consequence: "; nothing was installed")
        // Reported only once the signature holds: a forged reply is an error, not a warning.
        if digest == .sha1 {
            events(.weakReplyAlgorithm("the server signed its reply with SHA-1"))
        }

        // Now the attributes can be believed.
        guard try printableAttribute(OID.scepMessageType, "messageType") == MessageType.certRep.rawValue else {
            let got = ((try? printableAttribute(OID.scepMessageType, "messageType")) ?? nil).map { ServerText.excerpt($0) } ?? "(none)"
            throw SCEPError(.replyMismatch, "the reply is not a CertRep (messageType \(got))")
        }
        let transactionID = try printableAttribute(OID.scepTransactionID, "transactionID")
        guard transactionID == expected.transactionID else {
            throw SCEPError(.replyMismatch, "the reply's transactionID \(transactionID.map { ServerText.excerpt($0, limit: 80) } ?? "(none)") is not ours (\(expected.transactionID)); nothing was installed")
        }
        let recipientNonce = try octetAttribute(OID.scepRecipientNonce, "recipientNonce")
        guard recipientNonce == expected.senderNonce else {
            throw SCEPError(.replyMismatch, "the reply's recipientNonce does not echo our senderNonce (RFC 8894 §3.2.1.5: possible replay); nothing was installed")
        }
        guard let statusText = try printableAttribute(OID.scepPKIStatus, "pkiStatus"), let status = PKIStatus(rawValue: statusText) else {
            throw SCEPError(.malformedReply, "the reply has no valid pkiStatus")
        }
        switch status {
        case .success:
            guard !content.isEmpty else {
                throw SCEPError(.malformedReply, "the SUCCESS reply carries no content")
            }
            return .success(envelope: content)
        case .pending:
            return .pending
        case .failure:
            let failInfoValue = (try? printableAttribute(OID.scepFailInfo, "failInfo")) ?? nil
            let text = textAttribute(OID.scepFailInfoText)
            return .failure(failInfoValue.flatMap(FailInfo.init(rawValue:)), text: text)
        }
    }
}

/// Opens the SUCCESS envelope with our key and returns the certificates of the
/// degenerate PKCS#7 inside (RFC 8894 §3.3.2). The envelope is an EnvelopedData
/// (RFC 5652; AES-CBC, 3DES, DES, or AES-GCM with the tag after the ciphertext as
/// step-ca sends it) or an AuthEnvelopedData (RFC 5083, AES-GCM).
enum CertRepEnvelope {
    /// What the envelope says, before any key is used.
    struct Parsed {
        let recipients: [KeyTransRecipientInfo]
        let encryption: EncryptedContentInfo
        /// AuthEnvelopedData only.
        let authentication: (additionalData: [UInt8], mac: [UInt8])?
    }

    static func parse(_ envelope: [UInt8]) throws -> Parsed {
        let parsed: Parsed
        do {
            let contentInfo = try ContentInfo(berEncoded: envelope)
            let inner = try CACertificates.bytes(of: contentInfo.content)
            switch contentInfo.contentType {
            case OID.envelopedData:
                let enveloped = try EnvelopedData(berEncoded: inner)
                parsed = Parsed(recipients: keyTransports(enveloped.recipientInfos), encryption: enveloped.encryptedContentInfo,
                                authentication: nil)
            case OID.authEnvelopedData:
                let enveloped = try AuthEnvelopedData(berEncoded: inner)
                parsed = Parsed(recipients: keyTransports(enveloped.recipientInfos), encryption: enveloped.authEncryptedContentInfo,
                                authentication: (enveloped.authenticatedAttributesDER, enveloped.mac))
            default:
                throw SCEPError(.malformedReply, "the reply's content is not EnvelopedData or AuthEnvelopedData")
            }
        } catch let error as SCEPError { throw error } catch {
            throw SCEPError(.malformedReply, "the reply's EnvelopedData does not parse: \(error)")
        }
        guard !parsed.recipients.isEmpty else {
            throw SCEPError(.unsupportedAlgorithm, "the reply's envelope has no RSA key-transport recipient")
        }
        return parsed
    }

    private static func keyTransports(_ infos: [EnvelopedData.RecipientInfo]) -> [KeyTransRecipientInfo] {
        infos.compactMap { info -> KeyTransRecipientInfo? in
            if case .keyTransport(let ktri) = info { return ktri }
            return nil
        }
    }

    /// How the content is encrypted, checked before our key is used.
    enum ContentDecryption {
        case block(ContentCipher, iv: [UInt8])
        case gcm(AuthenticatedCipher, GCMParameters)
    }

    static func contentDecryption(_ parsed: Parsed, events: SCEPEventHandler) throws -> ContentDecryption {
        let algorithm = parsed.encryption.contentEncryptionAlgorithm
        if let cipher = AuthenticatedCipher(objectIdentifier: algorithm.algorithm) {
            guard let parametersAny = algorithm.parameters,
                  let parameters = try? GCMParameters(berEncoded: DER.parse(CACertificates.bytes(of: parametersAny))) else {
                throw SCEPError(.malformedReply, "the reply's \(cipher.rawValue) parameters (nonce, tag length) do not parse")
            }
            if let mac = parsed.authentication?.mac, mac.count != parameters.icvLength {
                throw SCEPError(.malformedReply, "the reply's authentication tag is \(mac.count) bytes, its parameters say \(parameters.icvLength)")
            }
            return .gcm(cipher, parameters)
        }
        guard parsed.authentication == nil else {
            throw SCEPError(.unsupportedAlgorithm, "the reply is an AuthEnvelopedData with \(algorithm.algorithm), not AES-GCM")
        }
        guard let cipher = ContentCipher(objectIdentifier: algorithm.algorithm) else {
            throw SCEPError(.unsupportedAlgorithm, "the reply is encrypted with an unsupported cipher \(algorithm.algorithm)")
        }
        if cipher.isWeak {
            events(.weakReplyAlgorithm("the server encrypted its reply with \(cipher.rawValue)"))
        }
        guard let ivAny = algorithm.parameters, let iv = try? ASN1OctetString(asn1Any: ivAny) else {
            throw SCEPError(.malformedReply, "the reply's cipher parameters carry no IV")
        }
        return .block(cipher, iv: Array(iv.bytes))
    }

    static func openCertificates(_ envelope: [UInt8], key: any EnrollmentKey, events: SCEPEventHandler) throws -> [Certificate] {
        let parsed = try parse(envelope)
        let decryption = try contentDecryption(parsed, events: events)
        guard let ciphertext = parsed.encryption.encryptedContent.map({ Array($0.bytes) }) else {
            throw SCEPError(.malformedReply, "the reply's envelope has no encrypted content")
        }
        // Several recipients are possible; the one our key can open is ours.
        var lastError: Error = SCEPError(.decryptionFailed, "no recipient in the reply's envelope is this key")
        for recipient in parsed.recipients {
            do {
                let contentKey = try key.decrypt(Array(recipient.encryptedKey.bytes))
                let plaintext = try decrypt(ciphertext, with: decryption, key: contentKey, authentication: parsed.authentication)
                return try certificates(inDegenerate: plaintext)
            } catch let error as any EnrollmentKeyError where error.keyFailure == .keyUnusable {
                // The key cannot be used at all (TPM gone, locked out): a key failure, not a bad reply.
                throw error
            } catch {
                lastError = error
            }
        }
        if let scep = lastError as? SCEPError { throw scep }
        throw SCEPError(.decryptionFailed, "cannot decrypt the reply with our key: \(lastError)")
    }

    static func decrypt(_ ciphertext: [UInt8], with decryption: ContentDecryption, key: [UInt8],
                        authentication: (additionalData: [UInt8], mac: [UInt8])?) throws -> [UInt8] {
        switch decryption {
        case .block(let cipher, let iv):
            return try CryptoPrimitives.decrypt(ciphertext, cipher: cipher, key: key, iv: iv)
        case .gcm(let cipher, let parameters):
            if let authentication {
                return try CryptoPrimitives.decryptGCM(ciphertext, tag: authentication.mac, cipher: cipher, key: key,
                                                       nonce: parameters.nonce, additionalData: authentication.additionalData)
            }
            // In an EnvelopedData the tag follows the ciphertext (Go's crypto/cipher Seal, as step-ca sends it).
            guard ciphertext.count >= parameters.icvLength else {
                throw SCEPError(.malformedReply, "the reply's \(cipher.rawValue) content is shorter than its \(parameters.icvLength)-byte tag")
            }
            let split = ciphertext.count - parameters.icvLength
            return try CryptoPrimitives.decryptGCM(Array(ciphertext[..<split]), tag: Array(ciphertext[split...]), cipher: cipher,
                                                   key: key, nonce: parameters.nonce)
        }
    }

    static func certificates(inDegenerate bytes: [UInt8]) throws -> [Certificate] {
        do {
            let contentInfo = try ContentInfo(berEncoded: bytes)
            guard contentInfo.contentType == OID.signedData else {
                throw SCEPError(.malformedReply, "the decrypted reply is not a certs-only PKCS#7")
            }
            let signedData = try SignedData(berEncoded: CACertificates.bytes(of: contentInfo.content))
            let certificates = try (signedData.certificates ?? []).map { try Certificate(derEncoded: CACertificates.bytes(of: $0)) }
            guard !certificates.isEmpty else {
                throw SCEPError(.malformedReply, "the decrypted reply holds no certificate")
            }
            return certificates
        } catch let error as SCEPError { throw error } catch {
            throw SCEPError(.malformedReply, "the decrypted reply is not a certs-only PKCS#7: \(error)")
        }
    }
}
