import Foundation

/// Which SCEP request a transaction is (RFC 8894 §3.3.1).
public enum RequestKind: String, Codable, Sendable, CaseIterable {
    case pkcsReq = "PKCSReq"
    case renewalReq = "RenewalReq"
}

/// The one record of a SCEP transaction in flight: everything a restart needs to poll
/// the same transaction (CertPoll, RFC 8894 §3.3.3) or send the same request again,
/// instead of spending a new one-time challenge.
///
/// Only public material: the new private key is `<profile>/pending/key.pem` and the
/// request as sent (with the encrypted challenge) `<profile>/pending/request.der`, both
/// 0600 in a 0700 directory. The challenge itself is never stored.
public struct SCEPTransaction: Codable, Equatable, Sendable {
    /// The transactionID attribute (hex of the new key's SHA-256).
    public var transactionID: String
    public var kind: RequestKind
    /// The senderNonce of the request on file; a reply to it (or to the same request sent
    /// again) must echo it.
    public var senderNonce: [UInt8]
    /// The certificate that signed the request (self-signed for PKCSReq, the live one for
    /// RenewalReq); CertPoll is signed the same way and the reply is encrypted to its key.
    public var signerCertificateDER: [UInt8]
    /// The CA's and our subject (DER Names): CertPoll's IssuerAndSubject.
    public var issuerDER: [UInt8]
    public var subjectDER: [UInt8]
    /// What the request asked for (DER SEQUENCE OF Extension), to name what the CA did not grant.
    public var requestedExtensionsDER: [UInt8]?
    /// Where the new key lives: "tpm" or "software".
    public var keyStorage: String
    /// When the request was built.
    public var startedAt: Date
    /// The live certificate this request renews, when it was valid at the start: a
    /// pending renewal must end before that certificate does (`EnrollmentPlanner`).
    public var renews: RenewedCertificate?

    public init(transactionID: String, kind: RequestKind, senderNonce: [UInt8], signerCertificateDER: [UInt8],
                issuerDER: [UInt8], subjectDER: [UInt8], requestedExtensionsDER: [UInt8]? = nil,
                keyStorage: String, startedAt: Date, renews: RenewedCertificate? = nil) {
        self.transactionID = transactionID
        self.kind = kind
        self.senderNonce = senderNonce
        self.signerCertificateDER = signerCertificateDER
        self.issuerDER = issuerDER
        self.subjectDER = subjectDER
        self.requestedExtensionsDER = requestedExtensionsDER
        self.keyStorage = keyStorage
        self.startedAt = startedAt
        self.renews = renews
    }

    private enum CodingKeys: String, CodingKey {
        case transactionID, kind, senderNonce, signerCertificateDER, issuerDER, subjectDER
        case requestedExtensionsDER, keyStorage, startedAt, renews
    }

    // Bytes as base64 strings (Data), so state.json stays readable.
    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        transactionID = try container.decode(String.self, forKey: .transactionID)
        kind = try container.decode(RequestKind.self, forKey: .kind)
        senderNonce = Array(try container.decode(Data.self, forKey: .senderNonce))
        signerCertificateDER = Array(try container.decode(Data.self, forKey: .signerCertificateDER))
        issuerDER = Array(try container.decode(Data.self, forKey: .issuerDER))
        subjectDER = Array(try container.decode(Data.self, forKey: .subjectDER))
        requestedExtensionsDER = try container.decodeIfPresent(Data.self, forKey: .requestedExtensionsDER).map(Array.init)
        keyStorage = try container.decode(String.self, forKey: .keyStorage)
        startedAt = try container.decode(Date.self, forKey: .startedAt)
        renews = try container.decodeIfPresent(RenewedCertificate.self, forKey: .renews)
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(transactionID, forKey: .transactionID)
        try container.encode(kind, forKey: .kind)
        try container.encode(Data(senderNonce), forKey: .senderNonce)
        try container.encode(Data(signerCertificateDER), forKey: .signerCertificateDER)
        try container.encode(Data(issuerDER), forKey: .issuerDER)
        try container.encode(Data(subjectDER), forKey: .subjectDER)
        try container.encodeIfPresent(requestedExtensionsDER.map { Data($0) }, forKey: .requestedExtensionsDER)
        try container.encode(keyStorage, forKey: .keyStorage)
        try container.encode(startedAt, forKey: .startedAt)
        try container.encodeIfPresent(renews, forKey: .renews)
    }
}

/// The certificate a renewal replaces: its serial (hex) and end.
public struct RenewedCertificate: Codable, Equatable, Sendable {
    public var serial: String
    public var notAfter: Date

    public init(serial: String, notAfter: Date) {
        self.serial = serial
        self.notAfter = notAfter
    }
}
