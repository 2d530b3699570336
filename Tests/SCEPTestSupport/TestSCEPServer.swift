import Foundation
import SwiftASN1
import X509
import KeyInterface
import TPMKeys
import TestSupport
@testable import SCEPClient

// A SCEP responder (RFC 8894) of our own, on a loopback `TestHTTPServer`, for
// what the real scepserver cannot show: RAs, PENDING, every failInfo, BER,
// and replies that are wrong on purpose. It parses requests with the client's
// CMS types and builds CertReps with them, but checks everything itself.

/// Something a CertRep gets wrong on purpose; the client must refuse it.
enum CertRepFault: String, Sendable, CaseIterable {
    /// Signed by the rogue CA (its certificate embedded), not by the server's CA/RA.
    case signedByRogueCA
    /// A byte of the signature flipped.
    case brokenSignature
    /// recipientNonce is not the request's senderNonce.
    case wrongRecipientNonce
    /// transactionID is not the request's.
    case wrongTransactionID
    /// The issued certificate carries another public key.
    case certificateForAnotherKey
    /// The issued certificate is signed by the rogue CA.
    case issuedByRogueCA
    /// The content was changed after its messageDigest was signed.
    case messageDigestMismatch
    /// The issued certificate is a CA certificate (basicConstraints cA=TRUE).
    case issuedAsCA
    /// The issued certificate expired a minute ago.
    case issuedExpired
    /// The issued certificate is valid for two more minutes only (still valid: accepted).
    case issuedExpiringSoon
    /// The CA grants other than asked: no SANs, and serverAuth added to the EKUs.
    case grantsDifferently
    /// The GCM authentication tag is changed (with `PlannedReply.gcm`).
    case brokenGCMTag
    /// The SUCCESS envelope names a content cipher the client does not implement (RC2).
    case unsupportedCipher
}

/// How a CertRep is encoded on the wire.
enum ReplyEncoding: Sendable {
    case der
    /// Indefinite lengths and constructed OCTET STRINGs in the outer structures
    /// (signed attributes and certificates stay DER, as RFC 5652 requires).
    case ber
}

/// One planned CertRep.
struct PlannedReply: Sendable {
    enum Status: Sendable {
        case success
        case pending
        case failure(FailInfo, text: String?)
    }

    var status: Status
    var encoding: ReplyEncoding = .der
    /// Content encryption of the SUCCESS envelope (scepserver: DES-CBC).
    var cipher: ContentCipher = .aes128CBC
    /// Digest of the reply signature (scepserver: SHA-1).
    var digest: DigestAlgorithm = .sha256
    var fault: CertRepFault?
    /// Send only the first half of the encoded CertRep.
    var truncated = false
    /// Encrypt the SUCCESS envelope with AES-GCM instead of `cipher`: in an EnvelopedData
    /// with the tag after the ciphertext (step-ca), or in an AuthEnvelopedData (RFC 5083).
    var gcm: AuthenticatedCipher?
    var authEnveloped = false
    /// The string type of failInfoText.
    var failInfoTextType: TextType = .utf8

    enum TextType: Sendable { case utf8, printable, ia5, bmp }

    static var success: PlannedReply { PlannedReply(status: .success) }
    static var pending: PlannedReply { PlannedReply(status: .pending) }
    static func failure(_ failInfo: FailInfo, text: String?) -> PlannedReply {
        PlannedReply(status: .failure(failInfo, text: text))
    }

    /// A SUCCESS carrying `fault`.
    static func faulty(_ fault: CertRepFault) -> PlannedReply {
        PlannedReply(status: .success, fault: fault)
    }

    /// As scepserver answers: DES-CBC envelope, SHA-1 signature.
    static var scepserverStyle: PlannedReply {
        PlannedReply(status: .success, cipher: .desCBC, digest: .sha1)
    }
}

/// The answer to one PKIOperation: a CertRep, or a raw HTTP answer (garbage,
/// empty body, HTTP 500…).
enum PlannedAnswer: Sendable {
    case certRep(PlannedReply)
    case http(TestHTTPResponse)
}

/// How the challengePassword was encoded in the CSR.
enum ChallengeEncoding: Sendable, Equatable {
    case printableString
    case utf8String
}

/// A pkiMessage the server received, decoded and verified.
struct ReceivedPKIOperation: Sendable {
    /// "GET" or "POST".
    let httpMethod: String
    /// For GET: the `message` query parameter exactly as sent (percent-encoded).
    let rawMessageParameter: String?
    let messageType: MessageType
    let transactionID: String
    let senderNonce: [UInt8]
    /// Digest of the request's signature.
    let digest: DigestAlgorithm
    /// Content encryption of the request's envelope.
    let cipher: ContentCipher
    /// Who the envelope was addressed to.
    let recipient: IssuerAndSerialNumber
    /// The certificate that signed the request (self-signed for PKCSReq).
    let signerCertificate: Certificate
    /// PKCSReq / RenewalReq: the PKCS#10.
    let csr: CertificateSigningRequest?
    let challenge: String?
    let challengeEncoding: ChallengeEncoding?
    /// CertPoll: the IssuerAndSubject.
    let issuerAndSubject: IssuerAndSubject?
}

/// The test SCEP server. Answers PKIOperations from a queue of planned
/// answers; when the queue is empty it issues (SUCCESS).
final class TestSCEPServer: @unchecked Sendable {
    struct Configuration: Sendable {
        /// The GetCACaps text.
        var capabilities = "POSTPKIOperation\nSHA-256\nAES\nSCEPStandard\nRenewal\n"
        /// RA certificates served with the CA (degenerate PKCS#7); empty: CA only (bare DER).
        var raCertificates: [TestIdentity] = []
        var acceptsPOST = true
        var acceptsGET = true
        /// When set, a PKCSReq without this challengePassword gets FAILURE badRequest.
        var challenge: String?
        /// Signs replies instead of the usual signer (the digitalSignature RA, else the CA).
        var replySignerOverride: TestIdentity?
        /// Every CertPoll gets this answer instead of a CertRep (micromdm: HTTP 500, it does
        /// not implement CertPoll).
        var certPollAnswer: TestHTTPResponse?
        /// A request answered with a planned raw HTTP answer (a dropped connection) is not
        /// remembered: a CertPoll for it gets FAILURE badCertId.
        var forgetsRequestsAnsweredWithHTTP = false
        /// Listed first in GetCACert, before the RAs, but never used by the server itself
        /// (what a machine in the middle adds: another host's certificate posing as the RA).
        var advertisedFirst: [TestIdentity] = []
        /// Issued certificates carry a CRL distribution point: `.served` is this server's
        /// `/crl` (the CA's CRL, see `crl`), `.urls` names others (LDAP, unreachable…).
        var crlDistributionPoint: CRLDistributionPoint?
        /// Announced by GetNextCACert (listed in GetCACaps while set) until `switchToNextCA()`.
        var nextCA: TestCA?
        /// Signs the GetNextCACert answer instead of the usual reply signer (a forgery: the rogue CA).
        var nextCAAnnouncementSigner: TestIdentity?
    }

    enum CRLDistributionPoint: Sendable {
        case served
        case urls([String])
    }

    let configuration: Configuration
    let ca: TestCA
    private let http: TestHTTPServer
    private let responder: SCEPResponder

    /// The SCEP URL, e.g. "http://127.0.0.1:PORT/scep".
    var url: String { http.urlString + "/scep" }

    /// The CRL URL, "http://127.0.0.1:PORT/crl".
    var crlURL: String { http.urlString + "/crl" }

    /// The CA's CRL as served at `/crl`: `crl.revoke(serial)` revokes a certificate.
    var crl: TestCRLPublisher { responder.crl }

    init(ca: TestCA, configuration: Configuration = Configuration(), plan: [PlannedAnswer] = []) throws {
        self.ca = ca
        self.configuration = configuration
        let responder = try SCEPResponder(ca: ca, configuration: configuration, plan: plan)
        self.responder = responder
        http = try TestHTTPServer { request in responder.handle(request) }
        switch configuration.crlDistributionPoint {
        case .served?: responder.setDistributionPoint(try TestCRLPublisher.distributionPoint([crlURL]))
        case .urls(let urls)?: responder.setDistributionPoint(try TestCRLPublisher.distributionPoint(urls))
        case nil: break
        }
    }

    deinit { http.stop() }

    func stop() { http.stop() }

    /// The CA rollover: from now on GetCACert presents `configuration.nextCA` (alone), which
    /// issues and signs every reply; GetNextCACert is no longer offered.
    func switchToNextCA() { responder.switchToNextCA() }

    /// The CA that issues now (`ca` until `switchToNextCA()`).
    var currentCA: TestCA { responder.ca }

    /// Adds answers to the end of the plan.
    func enqueue(_ answers: PlannedAnswer...) { responder.enqueue(answers) }

    /// Every PKIOperation that decoded and verified, in order.
    var pkiOperations: [ReceivedPKIOperation] { responder.received }

    /// PKIOperations the server could not decode or verify (a client bug).
    var decodeFailures: [String] { responder.failures }

    /// The CertRep bodies sent, in order (as sent: BER, truncated…).
    var sentCertReps: [[UInt8]] { responder.sentCertReps }

    /// Every HTTP request, including GetCACaps / GetCACert.
    var httpRequests: [TestHTTPRequest] { http.requests }

    /// The `operation=` of every HTTP request, in order.
    var operations: [String] { http.requests.map { $0.query("operation") ?? "(none)" } }

    /// The identity that decrypts requests: the keyEncipherment RA, else the CA.
    var decryptionIdentity: TestIdentity { responder.decryptionIdentity }

    /// The identity that signs replies: the digitalSignature RA, else the CA.
    var signingIdentity: TestIdentity { responder.signingIdentity }
}

/// The server's logic and state; runs on the HTTP server's connection threads.
private final class SCEPResponder: @unchecked Sendable {
    let rogue: TestCA
    let strangerKey: SoftwareKey
    let configuration: Configuration
    typealias Configuration = TestSCEPServer.Configuration

    private let lock = NSLock()
    private var activeCA: TestCA
    private var rolledOver = false
    var ca: TestCA { lock.withLock { activeCA } }
    /// The keyEncipherment RA, else the CA.
    var decryptionIdentity: TestIdentity {
        configuration.raCertificates.first { Self.usage($0.certificate)?.keyEncipherment ?? true } ?? ca.identity
    }
    /// The digitalSignature RA, else the CA.
    var signingIdentity: TestIdentity {
        configuration.replySignerOverride
            ?? configuration.raCertificates.first { Self.usage($0.certificate)?.digitalSignature ?? true } ?? ca.identity
    }

    func switchToNextCA() {
        lock.withLock {
            guard let next = configuration.nextCA else { return }
            activeCA = next
            rolledOver = true
        }
    }

    private var plan: [PlannedAnswer]
    private var receivedOperations: [ReceivedPKIOperation] = []
    private var decodeFailures: [String] = []
    private var sent: [[UInt8]] = []
    /// transactionID → the CSR of a PKCSReq, so a CertPoll can be answered.
    private var transactions: [String: CertificateSigningRequest] = [:]
    let crl: TestCRLPublisher
    /// Added to every certificate issued (set once the server's port is known).
    private var distributionPoint: Certificate.Extension?

    func setDistributionPoint(_ point: Certificate.Extension) { lock.withLock { distributionPoint = point } }

    init(ca: TestCA, configuration: Configuration, plan: [PlannedAnswer]) throws {
        self.activeCA = ca
        self.rogue = try TestPKI.rogue()
        self.strangerKey = try TestPKI.strangerKey()
        self.configuration = configuration
        self.plan = plan
        crl = TestCRLPublisher(ca: ca)
    }

    static func usage(_ certificate: Certificate) -> KeyUsage? { (try? certificate.extensions.keyUsage) ?? nil }

    func enqueue(_ answers: [PlannedAnswer]) {
        lock.lock()
        plan.append(contentsOf: answers)
        lock.unlock()
    }

    var received: [ReceivedPKIOperation] {
        lock.lock()
        defer { lock.unlock() }
        return receivedOperations
    }

    var failures: [String] {
        lock.lock()
        defer { lock.unlock() }
        return decodeFailures
    }

    var sentCertReps: [[UInt8]] {
        lock.lock()
        defer { lock.unlock() }
        return sent
    }

    // MARK: - HTTP

    func handle(_ request: TestHTTPRequest) -> TestHTTPResponse {
        if request.path == "/crl" { return crl.response() }
        switch request.query("operation") {
        case "GetCACaps":
            let announcing = configuration.nextCA != nil && !lock.withLock { rolledOver }
            return .text(configuration.capabilities + (announcing ? "GetNextCACert\n" : ""))
        case "GetCACert":
            return getCACert()
        case "GetNextCACert":
            return getNextCACert()
        case "PKIOperation":
            return pkiOperation(request)
        default:
            return .text("unknown operation\n", status: 400)
        }
    }

    /// RFC 8894 §4.7: a SignedData signed by the current reply signer (or the configured
    /// forger), holding the next CA certificate, with no content.
    private func getNextCACert() -> TestHTTPResponse {
        guard let next = configuration.nextCA, !lock.withLock({ rolledOver }) else {
            return .text("no next CA\n", status: 404)
        }
        do {
            let body = try CMSBuilder.signedCertificates([next.certificate], signer: configuration.nextCAAnnouncementSigner ?? signingIdentity)
            return .ok(body, contentType: "application/x-x509-next-ca-cert")
        } catch {
            return .text("cannot encode GetNextCACert: \(error)\n", status: 500)
        }
    }

    private func getCACert() -> TestHTTPResponse {
        let ca = self.ca
        do {
            if configuration.raCertificates.isEmpty && configuration.advertisedFirst.isEmpty {
                return .ok(ca.identity.der, contentType: "application/x-x509-ca-cert")
            }
            let certificates = (configuration.advertisedFirst + configuration.raCertificates).map(\.certificate) + [ca.certificate]
            return .ok(try CMSBuilder.degenerate(certificates), contentType: "application/x-x509-ca-ra-cert")
        } catch {
            return .text("cannot encode GetCACert: \(error)\n", status: 500)
        }
    }

    private func pkiOperation(_ request: TestHTTPRequest) -> TestHTTPResponse {
        let message: [UInt8]
        var rawParameter: String? = nil
        switch request.method {
        case "POST":
            guard configuration.acceptsPOST else { return .text("POST PKIOperation not supported\n", status: 405) }
            message = request.body
        case "GET":
            guard configuration.acceptsGET else { return .text("GET PKIOperation not supported\n", status: 405) }
            guard let item = request.queryItems.first(where: { $0.name == "message" }),
                  let data = Data(base64Encoded: item.value) else {
                return recordFailure("GET PKIOperation without a base64 message parameter")
            }
            rawParameter = item.rawValue
            message = Array(data)
        default:
            return .text("method not allowed\n", status: 405)
        }

        let operation: ReceivedPKIOperation
        do {
            operation = try RequestDecoder(decryptionIdentity: decryptionIdentity)
                .decode(message, httpMethod: request.method, rawMessageParameter: rawParameter)
        } catch {
            return recordFailure("\(error)")
        }

        lock.lock()
        receivedOperations.append(operation)
        if operation.messageType == .certPoll, let answer = configuration.certPollAnswer {
            lock.unlock()
            return answer
        }
        let answer: PlannedAnswer = plan.isEmpty ? .certRep(.success) : plan.removeFirst()
        var remember = true
        if case .http = answer, configuration.forgetsRequestsAnsweredWithHTTP { remember = false }
        if let csr = operation.csr, remember { transactions[operation.transactionID] = csr }
        let csr = transactions[operation.transactionID]
        lock.unlock()

        var reply: PlannedReply
        switch answer {
        case .http(let response): return response
        case .certRep(let planned): reply = planned
        }
        if let expected = configuration.challenge, operation.messageType == .pkcsReq, operation.challenge != expected {
            reply = .failure(.badRequest, text: "wrong or missing challenge")
        }
        do {
            let extraExtensions = lock.withLock { distributionPoint.map { [$0] } ?? [] }
            var body = try CertRepBuilder(ca: ca, rogue: rogue, strangerKey: strangerKey, signer: signingIdentity, extraExtensions: extraExtensions)
                .build(reply, for: operation, csr: csr)
            if reply.truncated { body = Array(body.prefix(body.count / 2)) }
            lock.lock()
            sent.append(body)
            lock.unlock()
            return .ok(body, contentType: "application/x-pki-message")
        } catch {
            return .text("cannot build the CertRep: \(error)\n", status: 500)
        }
    }

    private func recordFailure(_ reason: String) -> TestHTTPResponse {
        lock.lock()
        decodeFailures.append(reason)
        lock.unlock()
        return .text("cannot decode the pkiMessage: \(reason)\n", status: 400)
    }
}

/// Why the server could not accept a request (the client built it wrong).
struct TestSCEPServerError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Decodes and verifies a client's pkiMessage: signature with the embedded
/// signer certificate, messageDigest, envelope addressed to us, then the
/// PKCS#10 or IssuerAndSubject inside.
private struct RequestDecoder {
    let decryptionIdentity: TestIdentity

    func decode(_ message: [UInt8], httpMethod: String, rawMessageParameter: String?) throws -> ReceivedPKIOperation {
        // The client promises DER: parse strictly.
        let contentInfo = try ContentInfo(derEncoded: message)
        guard contentInfo.contentType == OID.signedData else { throw TestSCEPServerError("not SignedData") }
        let signedData = try SignedData(derEncoded: CACertificates.bytes(of: contentInfo.content))
        guard signedData.signerInfos.count == 1, let signerInfo = signedData.signerInfos.first,
              let attributes = signerInfo.signedAttributes, let signedBytes = signerInfo.signedAttributesSignedBytes else {
            throw TestSCEPServerError("expected one signer with signed attributes")
        }
        guard case .issuerAndSerialNumber(let signerID) = signerInfo.signerIdentifier else {
            throw TestSCEPServerError("signer not identified by issuerAndSerialNumber")
        }
        let certificates = try (signedData.certificates ?? []).map { try Certificate(derEncoded: CACertificates.bytes(of: $0)) }
        guard let signerCertificate = certificates.first(where: { signerID.matches($0) }) else {
            throw TestSCEPServerError("the signer certificate is not in the message")
        }
        guard let digest = DigestAlgorithm(objectIdentifier: signerInfo.digestAlgorithm.algorithm) else {
            throw TestSCEPServerError("unknown digest \(signerInfo.digestAlgorithm.algorithm)")
        }
        let spki = try signerCertificate.publicKey.subjectPublicKeyInfoDER()
        guard try CryptoPrimitives.verifyRSASignature(Array(signerInfo.signature.bytes), over: signedBytes, digest: digest, subjectPublicKeyInfo: spki) else {
            throw TestSCEPServerError("the request's signature does not verify")
        }
        let content = signedData.encapsulatedContentInfo.content.map { Array($0.bytes) } ?? []
        guard let digestValue = try attributes.singleValue(OID.messageDigest),
              Array(try ASN1OctetString(asn1Any: digestValue).bytes) == (try CryptoPrimitives.digest(digest, content)) else {
            throw TestSCEPServerError("messageDigest does not match the content")
        }
        guard let typeText = try Self.printable(attributes, OID.scepMessageType), let messageType = MessageType(rawValue: typeText) else {
            throw TestSCEPServerError("no valid messageType")
        }
        guard let transactionID = try Self.printable(attributes, OID.scepTransactionID) else {
            throw TestSCEPServerError("no transactionID")
        }
        guard let nonceValue = try attributes.singleValue(OID.scepSenderNonce) else { throw TestSCEPServerError("no senderNonce") }
        let senderNonce = Array(try ASN1OctetString(asn1Any: nonceValue).bytes)

        let (recipient, cipher, plaintext) = try openEnvelope(content)
        var csr: CertificateSigningRequest? = nil
        var challenge: String? = nil
        var challengeEncoding: ChallengeEncoding? = nil
        var issuerAndSubject: IssuerAndSubject? = nil
        switch messageType {
        case .pkcsReq, .renewalReq:
            let request = try CertificateSigningRequest(derEncoded: plaintext)
            if let value = request.attributes[oid: OID.challengePassword]?.values.first {
                if let printable = try? ASN1PrintableString(asn1Any: value) {
                    challenge = String(printable)
                    challengeEncoding = .printableString
                } else if let utf8 = try? ASN1UTF8String(asn1Any: value) {
                    challenge = String(utf8)
                    challengeEncoding = .utf8String
                } else {
                    throw TestSCEPServerError("challengePassword is neither PrintableString nor UTF8String")
                }
            }
            csr = request
        case .certPoll:
            issuerAndSubject = try IssuerAndSubject(derEncoded: plaintext)
        default:
            throw TestSCEPServerError("unexpected messageType \(messageType.name)")
        }
        return ReceivedPKIOperation(
            httpMethod: httpMethod, rawMessageParameter: rawMessageParameter, messageType: messageType,
            transactionID: transactionID, senderNonce: senderNonce, digest: digest, cipher: cipher,
            recipient: recipient, signerCertificate: signerCertificate, csr: csr, challenge: challenge,
            challengeEncoding: challengeEncoding, issuerAndSubject: issuerAndSubject)
    }

    private func openEnvelope(_ content: [UInt8]) throws -> (IssuerAndSerialNumber, ContentCipher, [UInt8]) {
        let contentInfo = try ContentInfo(derEncoded: content)
        guard contentInfo.contentType == OID.envelopedData else { throw TestSCEPServerError("content is not EnvelopedData") }
        let enveloped = try EnvelopedData(derEncoded: CACertificates.bytes(of: contentInfo.content))
        guard enveloped.recipientInfos.count == 1, case .keyTransport(let recipientInfo) = enveloped.recipientInfos[0],
              case .issuerAndSerialNumber(let recipient) = recipientInfo.recipient else {
            throw TestSCEPServerError("expected one key-transport recipient identified by issuerAndSerialNumber")
        }
        guard recipient.matches(decryptionIdentity.certificate) else {
            throw TestSCEPServerError("the envelope is not addressed to \(decryptionIdentity.certificate.subject)")
        }
        let encryption = enveloped.encryptedContentInfo
        guard let cipher = ContentCipher(objectIdentifier: encryption.contentEncryptionAlgorithm.algorithm),
              let ivValue = encryption.contentEncryptionAlgorithm.parameters,
              let ciphertext = encryption.encryptedContent else {
            throw TestSCEPServerError("unknown cipher or missing IV/content")
        }
        let iv = Array(try ASN1OctetString(asn1Any: ivValue).bytes)
        let contentKey = try decryptionIdentity.key.decrypt(Array(recipientInfo.encryptedKey.bytes))
        let plaintext = try CryptoPrimitives.decrypt(Array(ciphertext.bytes), cipher: cipher, key: contentKey, iv: iv)
        return (recipient, cipher, plaintext)
    }

    static func printable(_ attributes: [CMSAttribute], _ oid: ASN1ObjectIdentifier) throws -> String? {
        guard let value = try attributes.singleValue(oid) else { return nil }
        return String(try ASN1PrintableString(asn1Any: value))
    }
}

/// Builds CertReps (RFC 8894 §3.3.2) with the CMS types.
private struct CertRepBuilder {
    let ca: TestCA
    let rogue: TestCA
    let strangerKey: SoftwareKey
    let signer: TestIdentity
    /// Added to the certificates issued normally (the CRL distribution point).
    var extraExtensions: [Certificate.Extension] = []

    func build(_ plan: PlannedReply, for request: ReceivedPKIOperation, csr: CertificateSigningRequest?) throws -> [UInt8] {
        var status = plan.status
        var content: [UInt8]? = nil
        if case .success = status {
            if let csr {
                let issued = try issue(for: csr, fault: plan.fault)
                var degenerate = try CMSBuilder.degenerate([issued])
                if plan.encoding == .ber { degenerate = try BERConverter.convert(degenerate, keepingDER: [SCEPEnrollment.der(issued)]) }
                var envelope: [UInt8]
                if let gcm = plan.gcm {
                    envelope = try CMSBuilder.gcmEnvelope(degenerate, to: request.signerCertificate, cipher: gcm,
                                                          authEnveloped: plan.authEnveloped, breakTag: plan.fault == .brokenGCMTag)
                } else {
                    envelope = try CMSBuilder.envelope(degenerate, to: request.signerCertificate, cipher: plan.cipher)
                }
                if plan.fault == .unsupportedCipher { envelope = try CMSBuilder.renamingCipher(envelope, to: [1, 2, 840, 113549, 3, 2]) }
                if plan.encoding == .ber { envelope = try BERConverter.convert(envelope, keepingDER: []) }
                content = envelope
            } else {
                status = .failure(.badCertID, text: "no such transaction")  // CertPoll for a request we never saw
            }
        }

        let replySigner = plan.fault == .signedByRogueCA ? rogue.identity : signer
        let digestedContent = content ?? []
        if plan.fault == .messageDigestMismatch, var tampered = content, let last = tampered.indices.last {
            tampered[last] ^= 0x01  // the last byte is ciphertext: the structure still parses
            content = tampered
        }

        var attributes: [CMSAttribute] = [
            CMSAttribute(type: OID.contentType, values: [try ASN1Any(erasing: OID.data)]),
            CMSAttribute(type: OID.messageDigest, values: [try ASN1Any(erasing: ASN1OctetString(contentBytes: try CryptoPrimitives.digest(plan.digest, digestedContent)[...]))]),
            CMSAttribute(type: OID.scepMessageType, values: [try ASN1Any(erasing: ASN1PrintableString(MessageType.certRep.rawValue))]),
        ]
        let pkiStatus: PKIStatus
        switch status {
        case .success: pkiStatus = .success
        case .pending: pkiStatus = .pending
        case .failure(let failInfo, let text):
            pkiStatus = .failure
            attributes.append(CMSAttribute(type: OID.scepFailInfo, values: [try ASN1Any(erasing: ASN1PrintableString(failInfo.rawValue))]))
            if let text {
                let value: ASN1Any
                switch plan.failInfoTextType {
                case .utf8: value = try ASN1Any(erasing: ASN1UTF8String(text))
                case .printable: value = try ASN1Any(erasing: ASN1PrintableString(text))
                case .ia5: value = try ASN1Any(erasing: ASN1IA5String(text))
                case .bmp:
                    let utf16 = Array(text.utf16).flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
                    value = try ASN1Any(erasing: ASN1BMPString(contentBytes: utf16[...]))
                }
                attributes.append(CMSAttribute(type: OID.scepFailInfoText, values: [value]))
            }
        }
        attributes.append(CMSAttribute(type: OID.scepPKIStatus, values: [try ASN1Any(erasing: ASN1PrintableString(pkiStatus.rawValue))]))
        let transactionID = plan.fault == .wrongTransactionID ? "0123456789ABCDEF-not-yours" : request.transactionID
        attributes.append(CMSAttribute(type: OID.scepTransactionID, values: [try ASN1Any(erasing: ASN1PrintableString(transactionID))]))
        let recipientNonce = plan.fault == .wrongRecipientNonce ? try CryptoPrimitives.randomBytes(16) : request.senderNonce
        attributes.append(CMSAttribute(type: OID.scepRecipientNonce, values: [try ASN1Any(erasing: ASN1OctetString(contentBytes: recipientNonce[...]))]))
        attributes.append(CMSAttribute(type: OID.scepSenderNonce, values: [try ASN1Any(erasing: ASN1OctetString(contentBytes: try CryptoPrimitives.randomBytes(16)[...]))]))

        let signedBytes = try SignerInfo.signedBytes(of: attributes)
        var signature = try replySigner.key.sign(digest: try CryptoPrimitives.digest(plan.digest, signedBytes), algorithm: plan.digest)
        if plan.fault == .brokenSignature { signature[signature.count / 2] ^= 0x01 }
        let signerInfo = try SignerInfo(
            version: 1,
            signerIdentifier: .issuerAndSerialNumber(try IssuerAndSerialNumber(certificate: replySigner.certificate)),
            digestAlgorithm: AlgorithmIdentifier(algorithm: plan.digest.objectIdentifier),
            signedAttributes: attributes,
            signatureAlgorithm: .withNullParameters(OID.rsaEncryption),
            signature: ASN1OctetString(contentBytes: signature[...]))
        let signedData = SignedData(
            version: 1,
            digestAlgorithms: [AlgorithmIdentifier(algorithm: plan.digest.objectIdentifier)],
            encapsulatedContentInfo: EncapsulatedContentInfo(contentType: OID.data, content: content.map { ASN1OctetString(contentBytes: $0[...]) }),
            certificates: [try ASN1Any(erasing: replySigner.certificate)],
            signerInfos: [signerInfo])
        let der = try SCEPEnrollment.der(ContentInfo(contentType: OID.signedData, content: try ASN1Any(erasing: signedData)))
        guard plan.encoding == .ber else { return der }
        return try BERConverter.convert(der, keepingDER: [SCEPEnrollment.der(signerInfo), replySigner.der])
    }

    private func issue(for csr: CertificateSigningRequest, fault: CertRepFault?) throws -> Certificate {
        switch fault {
        case .certificateForAnotherKey:
            let extensions = try csr.attributes.extensionRequest?.extensions ?? Certificate.Extensions()
            return try ca.issue(publicKey: Certificate.PublicKey(derEncoded: strangerKey.subjectPublicKeyInfo),
                                subject: csr.subject, extensions: extensions)
        case .issuedByRogueCA:
            return try rogue.issue(for: csr)
        case .issuedAsCA:
            var extensions = Certificate.Extensions()
            try extensions.append(Certificate.Extension(BasicConstraints.isCertificateAuthority(maxPathLength: 0), critical: true))
            return try ca.issue(publicKey: csr.publicKey, subject: csr.subject, extensions: extensions)
        case .issuedExpired:
            return try ca.issue(publicKey: csr.publicKey, subject: csr.subject, extensions: Certificate.Extensions(), validity: -60)
        case .issuedExpiringSoon:
            let requested = try csr.attributes.extensionRequest?.extensions ?? Certificate.Extensions()
            return try ca.issue(publicKey: csr.publicKey, subject: csr.subject, extensions: requested, validity: 120)
        case .grantsDifferently:
            var extensions = Certificate.Extensions()
            try extensions.append(Certificate.Extension(KeyUsage(digitalSignature: true, keyEncipherment: true), critical: true))
            try extensions.append(Certificate.Extension(ExtendedKeyUsage([.clientAuth, .serverAuth]), critical: false))
            return try ca.issue(publicKey: csr.publicKey, subject: csr.subject, extensions: extensions)
        default:
            var extensions = try csr.attributes.extensionRequest?.extensions ?? Certificate.Extensions()
            for ext in extraExtensions { try extensions.append(ext) }
            return try ca.issue(publicKey: csr.publicKey, subject: csr.subject, extensions: extensions)
        }
    }
}

/// CMS structures the server sends.
enum CMSBuilder {
    /// A degenerate certs-only SignedData (RFC 8894 §3.4): no content, no signers.
    /// A SignedData without content whose certificates are `certificates` and whose one
    /// signer signs the attributes contentType and messageDigest (of the empty content):
    /// a GetNextCACert answer (RFC 8894 §4.7).
    static func signedCertificates(_ certificates: [Certificate], signer: TestIdentity, digest: DigestAlgorithm = .sha256) throws -> [UInt8] {
        let attributes = [
            CMSAttribute(type: OID.contentType, values: [try ASN1Any(erasing: OID.data)]),
            CMSAttribute(type: OID.messageDigest, values: [try ASN1Any(erasing: ASN1OctetString(contentBytes: try CryptoPrimitives.digest(digest, [])[...]))]),
        ]
        let signature = try signer.key.sign(digest: try CryptoPrimitives.digest(digest, try SignerInfo.signedBytes(of: attributes)), algorithm: digest)
        let signerInfo = try SignerInfo(
            version: 1, signerIdentifier: .issuerAndSerialNumber(try IssuerAndSerialNumber(certificate: signer.certificate)),
            digestAlgorithm: AlgorithmIdentifier(algorithm: digest.objectIdentifier), signedAttributes: attributes,
            signatureAlgorithm: .withNullParameters(OID.rsaEncryption), signature: ASN1OctetString(contentBytes: signature[...]))
        let signedData = SignedData(
            version: 1, digestAlgorithms: [AlgorithmIdentifier(algorithm: digest.objectIdentifier)],
            encapsulatedContentInfo: EncapsulatedContentInfo(contentType: OID.data, content: nil),
            certificates: try (certificates + [signer.certificate]).map { try ASN1Any(erasing: $0) },
            signerInfos: [signerInfo])
        return try SCEPEnrollment.der(ContentInfo(contentType: OID.signedData, content: try ASN1Any(erasing: signedData)))
    }

    static func degenerate(_ certificates: [Certificate]) throws -> [UInt8] {
        let signedData = SignedData(
            version: 1, digestAlgorithms: [],
            encapsulatedContentInfo: EncapsulatedContentInfo(contentType: OID.data, content: nil),
            certificates: try certificates.map { try ASN1Any(erasing: $0) },
            signerInfos: [])
        return try SCEPEnrollment.der(ContentInfo(contentType: OID.signedData, content: try ASN1Any(erasing: signedData)))
    }

    /// ContentInfo(EnvelopedData) with one RSA key-transport recipient (RFC 5652 §6).
    static func envelope(_ plaintext: [UInt8], to recipient: Certificate, cipher: ContentCipher) throws -> [UInt8] {
        let contentKey = try CryptoPrimitives.randomBytes(cipher.keyLength)
        let iv = try CryptoPrimitives.randomBytes(cipher.ivLength)
        let ciphertext = try CryptoPrimitives.encrypt(plaintext, cipher: cipher, key: contentKey, iv: iv)
        let encryptedKey = try CryptoPrimitives.rsaEncrypt(contentKey, to: recipient.publicKey.subjectPublicKeyInfoDER())
        let enveloped = EnvelopedData(
            version: 0,
            recipientInfos: [.keyTransport(KeyTransRecipientInfo(
                version: 0,
                recipient: .issuerAndSerialNumber(try IssuerAndSerialNumber(certificate: recipient)),
                keyEncryptionAlgorithm: .withNullParameters(OID.rsaEncryption),
                encryptedKey: ASN1OctetString(contentBytes: encryptedKey[...])))],
            encryptedContentInfo: EncryptedContentInfo(
                contentType: OID.data,
                contentEncryptionAlgorithm: AlgorithmIdentifier(
                    algorithm: cipher.objectIdentifier, parameters: try ASN1Any(erasing: ASN1OctetString(contentBytes: iv[...]))),
                encryptedContent: ASN1OctetString(contentBytes: ciphertext[...])))
        return try SCEPEnrollment.der(ContentInfo(contentType: OID.envelopedData, content: try ASN1Any(erasing: enveloped)))
    }
}

extension CMSBuilder {
    /// The same EnvelopedData with its content-encryption algorithm OID replaced.
    static func renamingCipher(_ envelope: [UInt8], to oid: ASN1ObjectIdentifier) throws -> [UInt8] {
        let contentInfo = try ContentInfo(derEncoded: envelope)
        var enveloped = try EnvelopedData(derEncoded: CACertificates.bytes(of: contentInfo.content))
        enveloped.encryptedContentInfo.contentEncryptionAlgorithm.algorithm = oid
        return try SCEPEnrollment.der(ContentInfo(contentType: OID.envelopedData, content: try ASN1Any(erasing: enveloped)))
    }

    /// ContentInfo(EnvelopedData) with AES-GCM, the tag appended to the ciphertext as
    /// step-ca (Go's crypto/cipher) does, or ContentInfo(AuthEnvelopedData) (RFC 5083)
    /// with the tag as its mac.
    static func gcmEnvelope(_ plaintext: [UInt8], to recipient: Certificate, cipher: AuthenticatedCipher,
                            authEnveloped: Bool, breakTag: Bool) throws -> [UInt8] {
        let contentKey = try CryptoPrimitives.randomBytes(cipher.keyLength)
        let nonce = try CryptoPrimitives.randomBytes(12)
        let sealed = try CryptoPrimitives.encryptGCM(plaintext, cipher: cipher, key: contentKey, nonce: nonce, tagLength: 16)
        var tag = sealed.tag
        if breakTag { tag[0] ^= 0x01 }
        let encryptedKey = try CryptoPrimitives.rsaEncrypt(contentKey, to: recipient.publicKey.subjectPublicKeyInfoDER())
        let recipients: [EnvelopedData.RecipientInfo] = [.keyTransport(KeyTransRecipientInfo(
            version: 0, recipient: .issuerAndSerialNumber(try IssuerAndSerialNumber(certificate: recipient)),
            keyEncryptionAlgorithm: .withNullParameters(OID.rsaEncryption),
            encryptedKey: ASN1OctetString(contentBytes: encryptedKey[...])))]
        let algorithm = AlgorithmIdentifier(algorithm: cipher.objectIdentifier,
                                            parameters: try ASN1Any(erasing: GCMParameters(nonce: nonce, icvLength: 16)))
        if authEnveloped {
            let enveloped = AuthEnvelopedData(
                version: 0, recipientInfos: recipients,
                authEncryptedContentInfo: EncryptedContentInfo(contentType: OID.data, contentEncryptionAlgorithm: algorithm,
                                                               encryptedContent: ASN1OctetString(contentBytes: sealed.ciphertext[...])),
                mac: tag)
            return try SCEPEnrollment.der(ContentInfo(contentType: OID.authEnvelopedData, content: try ASN1Any(erasing: enveloped)))
        }
        let content = sealed.ciphertext + tag
        let enveloped = EnvelopedData(
            version: 0, recipientInfos: recipients,
            encryptedContentInfo: EncryptedContentInfo(contentType: OID.data, contentEncryptionAlgorithm: algorithm,
                                                       encryptedContent: ASN1OctetString(contentBytes: content[...])))
        return try SCEPEnrollment.der(ContentInfo(contentType: OID.envelopedData, content: try ASN1Any(erasing: enveloped)))
    }
}

/// Re-encodes DER as BER the way some SCEP servers (Java/BouncyCastle, NDES)
/// send it: constructed nodes with indefinite lengths, and long OCTET STRINGs
/// (universal, or the [0] IMPLICIT encryptedContent) split into constructed
/// chunks. Subtrees whose DER is listed in `keepingDER` are copied as they are.
enum BERConverter {
    static func convert(_ der: [UInt8], keepingDER keep: [[UInt8]], chunkSize: Int = 64) throws -> [UInt8] {
        let root = try DER.parse(der)
        var out: [UInt8] = []
        write(root, keep: Set(keep), chunkSize: chunkSize, into: &out)
        return out
    }

    private static func write(_ node: ASN1Node, keep: Set<[UInt8]>, chunkSize: Int, into out: inout [UInt8]) {
        let encoded = Array(node.encodedBytes)
        // Multi-byte tags do not occur in CMS; copy them rather than re-tag.
        guard !keep.contains(encoded), let tagByte = encoded.first, tagByte & 0x1F != 0x1F else {
            out += encoded
            return
        }
        switch node.content {
        case .constructed(let children):
            out += [tagByte | 0x20, 0x80]
            for child in children { write(child, keep: keep, chunkSize: chunkSize, into: &out) }
            out += [0x00, 0x00]
        case .primitive(let bytes):
            let octets = node.identifier == .octetString
                || node.identifier == ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)
            guard octets, bytes.count > chunkSize else {
                out += encoded
                return
            }
            out += [tagByte | 0x20, 0x80]
            var start = bytes.startIndex
            while start < bytes.endIndex {
                let end = min(start + chunkSize, bytes.endIndex)
                out.append(0x04)
                appendLength(end - start, into: &out)
                out += bytes[start..<end]
                start = end
            }
            out += [0x00, 0x00]
        }
    }

    private static func appendLength(_ length: Int, into out: inout [UInt8]) {
        if length < 0x80 {
            out.append(UInt8(length))
        } else if length <= 0xFF {
            out += [0x81, UInt8(length)]
        } else {
            out += [0x82, UInt8(length >> 8), UInt8(length & 0xFF)]
        }
    }
}
