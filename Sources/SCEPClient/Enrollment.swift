import EnrollmentPlan
import Foundation
import SwiftASN1
import KeyInterface
import X509

/// What the server told us about itself, checked against the pin.
public struct ServerProfile: Sendable {
    public let capabilities: CACapabilities
    public let certificates: CACertificates
    public let algorithms: NegotiatedAlgorithms
}

/// A request built and ready to send: the transaction record (persist it and `messageDER`
/// first, then `submit`) and the pkiMessage as it goes on the wire. Rebuilt from the
/// store to send the same request again.
public struct PreparedEnrollment: Sendable {
    public let transaction: SCEPTransaction
    /// The signed pkiMessage (DER); its senderNonce is `transaction.senderNonce`.
    public let messageDER: [UInt8]

    public init(transaction: SCEPTransaction, messageDER: [UInt8]) {
        self.transaction = transaction
        self.messageDER = messageDER
    }
}

extension RequestKind {
    var messageType: MessageType { self == .renewalReq ? .renewalReq : .pkcsReq }
}

/// The certificate the CA issued, verified: our public key, issued by the pinned CA.
public struct IssuedCertificate: Sendable {
    public let certificate: Certificate
    /// The validated path above the certificate, its issuer first, up to and including
    /// the pinned CA (what `chain.pem` holds).
    public let chain: [Certificate]

    public var certificatePEM: String { (try? certificate.serializeAsPEM().pemString).map { $0 + "\n" } ?? "" }
    public var chainPEM: String { chain.compactMap { try? $0.serializeAsPEM().pemString }.map { $0 + "\n" }.joined() }
}

/// How one exchange ended. PENDING and FAILURE are results, not errors.
public enum EnrollmentOutcome: Sendable {
    case issued(IssuedCertificate)
    case pending
    case rejected(FailInfo?, text: String?)

    /// A message for a person, for FAILURE.
    public static func rejectionMessage(_ failInfo: FailInfo?, _ text: String?) -> String {
        var message = "the SCEP server refused the request"
        if let failInfo { message += " (failInfo \(failInfo.name)): \(failInfo.explanation)" }
        if let text, !text.isEmpty { message += "; server says: \"\(ServerText.excerpt(text, limit: 300))\"" }
        return message
    }
}

/// The requester's side of RFC 8894: discover, request, poll, verify.
public struct SCEPEnrollment: Sendable {
    public let service: SCEPService
    public let pin: PinnedCA
    public let preferredCipher: ContentCipher
    public let allowWeakAlgorithms: Bool
    public let now: @Sendable () -> Date
    public let events: SCEPEventHandler
    /// CAs such as micromdm's stamp notBefore with their own "now": a host whose clock
    /// lags by a few seconds would see a fresh certificate (or a fresh CA) as not yet
    /// valid. notBefore is therefore allowed this far ahead of our clock; notAfter is
    /// checked against our clock as it is.
    public var clockSkewTolerance: TimeInterval = 300
    /// Bounds on the work spent on what the server sends before the pin vouches for it.
    public var limits = PathBuildingLimits()

    public init(service: SCEPService, pin: PinnedCA, preferredCipher: ContentCipher = .aes128CBC, allowWeakAlgorithms: Bool = false,
                now: @escaping @Sendable () -> Date = { Date() }, events: @escaping SCEPEventHandler = { _ in }) {
        self.service = service
        self.pin = pin
        self.preferredCipher = preferredCipher
        self.allowWeakAlgorithms = allowWeakAlgorithms
        self.now = now
        self.events = events
    }

    /// GetCACaps + GetCACert, the certificates checked against the pin.
    public func discover() async throws -> ServerProfile {
        let capabilities = try await service.capabilities()
        let algorithms = try capabilities.negotiate(preferredCipher: preferredCipher, allowWeakAlgorithms: allowWeakAlgorithms)
        let raw = try await service.caCertificates()
        let certificates = try await CACertificates.validated(raw, pin: pin, window: validityWindow, limits: limits)
        for ignored in certificates.untrusted {
            events(.ignoredCertificate(subject: ServerText.escaped("\(ignored.certificate.subject)"), sha256: ignored.sha256,
                                       reason: ignored.explanation))
        }
        return ServerProfile(capabilities: capabilities, certificates: certificates, algorithms: algorithms)
    }

    /// transactionID derived from the new public key (stable across polls, RFC 8894 §3.2.1.1).
    public static func transactionID(for key: any EnrollmentKey) throws -> String {
        Hex.encode(try CryptoPrimitives.digest(.sha256, key.subjectPublicKeyInfo), uppercase: true)
    }

    /// Builds a PKCSReq (new key, self-signed signer, challenge) or, when
    /// `renewWith` is given, a RenewalReq signed with the current certificate and key.
    ///
    /// A new key that cannot receive the reply (EC: SCEP replies use RSA key transport)
    /// needs `envelopeKey`, a temporary RSA key: it signs the pkiMessage with a self-signed
    /// certificate and opens the reply, while the CSR carries and is signed by the new key
    /// (RFC 8894 §2.3). Keep it with the transaction until the reply is installed.
    public func prepare(
        server: ServerProfile, newKey: any EnrollmentKey, spec: CertificateRequestSpec, challenge: String?,
        renewWith current: (certificate: Certificate, key: any EnrollmentKey)? = nil, renews: RenewedCertificate? = nil,
        envelopeKey: (any EnrollmentKey)? = nil
    ) async throws -> PreparedEnrollment {
        if let current, !current.key.algorithm.canDecryptEnvelopes {
            throw SCEPError(.invalidRequest,
                            "a RenewalReq is signed by the current certificate's key and its reply encrypted to it; an \(current.key.algorithm) key cannot receive RSA key transport: renew with a PKCSReq")
        }
        // The key that signs the pkiMessage of a PKCSReq and receives the reply, when the new key cannot.
        var usedEnvelopeKey: (any EnrollmentKey)?
        if current == nil, !newKey.algorithm.canDecryptEnvelopes {
            guard let envelopeKey, envelopeKey.algorithm.canDecryptEnvelopes else {
                throw SCEPError(.invalidRequest,
                                "an \(newKey.algorithm) key cannot receive the SCEP reply (RSA key transport): the request needs a temporary RSA envelope key")
            }
            usedEnvelopeKey = envelopeKey
        }
        let signer = try EnrollmentKeySigner(newKey)
        let request = try await PreparedRequest.make(spec: spec, challenge: challenge, signer: signer,
                                                     envelopeSigner: try usedEnvelopeKey.map(EnrollmentKeySigner.init), now: now())
        let transactionID = try Self.transactionID(for: newKey)
        let messageType: MessageType = current == nil ? .pkcsReq : .renewalReq
        let signerCertificate = current?.certificate ?? request.signerCertificate
        let signerKey = current?.key ?? usedEnvelopeKey ?? newKey
        let message = try OutgoingPKIMessage.build(
            messageType: messageType, transactionID: transactionID, messageData: request.csrDER,
            recipient: server.certificates.encryptionRecipient, signerCertificate: signerCertificate, signerKey: signerKey,
            algorithms: server.algorithms)
        let transaction = SCEPTransaction(
            transactionID: transactionID, kind: messageType == .renewalReq ? .renewalReq : .pkcsReq,
            senderNonce: message.senderNonce,
            signerCertificateDER: try Self.der(signerCertificate),
            issuerDER: try Self.der(server.certificates.issuingCA.subject),
            subjectDER: try Self.der(request.subject),
            requestedExtensionsDER: try RequestedExtensions.encode(request.extensions),
            keyStorage: newKey.storage.rawValue, startedAt: now(), renews: renews)
        return PreparedEnrollment(transaction: transaction, messageDER: message.der)
    }

    /// Sends a prepared request and verifies the answer.
    /// - Parameters:
    ///   - replyKey: the key the reply is encrypted to (the signer's key).
    ///   - newKey: the key the issued certificate must carry.
    /// Sending the same prepared request again (the CA did not know it) is the same call:
    /// the reply must echo the same senderNonce.
    public func submit(_ prepared: PreparedEnrollment, server: ServerProfile, replyKey: any EnrollmentKey, newKey: any EnrollmentKey) async throws -> EnrollmentOutcome {
        let message = OutgoingPKIMessage(messageType: prepared.transaction.kind.messageType, transactionID: prepared.transaction.transactionID,
                                         senderNonce: prepared.transaction.senderNonce, der: prepared.messageDER)
        return try await exchange(message, transaction: prepared.transaction, server: server, replyKey: replyKey, newKey: newKey)
    }

    /// CertPoll (RFC 8894 §3.3.3) for a pending transaction, signed like the original request.
    public func poll(_ transaction: SCEPTransaction, server: ServerProfile, signerKey: any EnrollmentKey, newKey: any EnrollmentKey) async throws -> EnrollmentOutcome {
        let signerCertificate = try Certificate(derEncoded: transaction.signerCertificateDER)
        let issuerAndSubject = IssuerAndSubject(
            issuer: try ASN1Any(derEncoded: transaction.issuerDER), subject: try ASN1Any(derEncoded: transaction.subjectDER))
        var serializer = DER.Serializer()
        try serializer.serialize(issuerAndSubject)
        let message = try OutgoingPKIMessage.build(
            messageType: .certPoll, transactionID: transaction.transactionID, messageData: serializer.serializedBytes,
            recipient: server.certificates.encryptionRecipient, signerCertificate: signerCertificate, signerKey: signerKey,
            algorithms: server.algorithms)
        return try await exchange(message, transaction: transaction, server: server, replyKey: signerKey, newKey: newKey)
    }

    private func exchange(_ message: OutgoingPKIMessage, transaction: SCEPTransaction, server: ServerProfile,
                          replyKey: any EnrollmentKey, newKey: any EnrollmentKey) async throws -> EnrollmentOutcome {
        events(.sent(messageType: message.messageType, transactionID: message.transactionID, bytes: message.der.count,
                     method: server.algorithms.usePOST ? "POST" : "GET"))
        let body = try await service.pkiOperation(message.der, usePOST: server.algorithms.usePOST)
        let reply = try ParsedCertRep(body)
        let expectation = ReplyExpectation(transactionID: message.transactionID, senderNonce: message.senderNonce,
                                           allowedSigners: server.certificates.replySigners)
        switch try reply.verified(against: expectation, events: events) {
        case .pending:
            return .pending
        case .failure(let failInfo, let text):
            return .rejected(failInfo, text: text)
        case .success(let envelope):
            // The reply is verified from here on: what fails now is an answer we cannot
            // use, not an answer we cannot trust (the caller keeps them apart).
            let issued: IssuedCertificate
            do {
                let certificates = try CertRepEnvelope.openCertificates(envelope, key: replyKey, events: events)
                issued = try await verifyIssued(certificates, server: server, newKey: newKey)
            } catch var error as SCEPError {
                error.concernsVerifiedReply = true
                throw error
            }
            if let requested = transaction.requestedExtensionsDER.flatMap({ try? RequestedExtensions.decode($0) }) {
                for difference in IssuedContents.differences(requested: requested, issued: issued.certificate.extensions) {
                    events(.issuedDiffers(difference))
                }
            }
            return .issued(issued)
        }
    }

    /// The issued certificate must carry our new public key, be an end-entity certificate
    /// valid now, and chain to the pinned CA; `chain` is the path that was validated.
    func verifyIssued(_ certificates: [Certificate], server: ServerProfile, newKey: any EnrollmentKey) async throws -> IssuedCertificate {
        let ourKey = try Certificate.PublicKey(derEncoded: newKey.subjectPublicKeyInfo)
        guard let issued = certificates.first(where: { $0.publicKey == ourKey }) else {
            let got = certificates.prefix(5).map { CertificatePathBuilder.name($0) }.joined(separator: "; ")
            throw SCEPError(.wrongCertificate, "the reply holds no certificate for our public key (got: \(got)); nothing was installed")
        }
        if CACertificates.isCA(issued) {
            throw SCEPError(.wrongCertificate,
                            "the issued certificate \(CertificatePathBuilder.name(issued)) is a CA certificate (basicConstraints cA=TRUE); an enrollment certificate must not be one: nothing was installed")
        }
        let path: [Certificate]
        do {
            let builder = try CertificatePathBuilder(
                anchors: server.certificates.issuingAnchors, candidates: server.certificates.chain + certificates.filter { $0 != issued },
                window: validityWindow, limits: limits)
            path = try await builder.path(from: issued, role: "issued")
        } catch let error as SCEPError where error.code == .untrustedCertificate {
            throw SCEPError(.wrongCertificate, "\(error.message); nothing was installed")
        }
        return IssuedCertificate(certificate: issued, chain: Array(path.dropFirst()))
    }

    private var validityWindow: ValidityWindow { ValidityWindow(now: now(), notBeforeTolerance: clockSkewTolerance) }

    static func der<T: DERSerializable>(_ value: T) throws -> [UInt8] {
        var serializer = DER.Serializer()
        try serializer.serialize(value)
        return serializer.serializedBytes
    }
}
