import Foundation

/// What the SCEP server announced as its next CA (RFC 8894 §4.7 GetNextCACert), kept in
/// `<profile>/next-ca.json` (0644: certificates and fingerprints are public): the
/// candidate pins, and when the server was last asked. Written only after the announcement
/// verified against the pinned CA; the agent trusts a candidate as if pinned from the
/// moment the server's GetCACert presents it (a CA rollover).
public struct NextCARecord: Codable, Equatable, Sendable {
    /// One announced CA certificate.
    public struct Candidate: Codable, Equatable, Sendable {
        /// Lowercase hex SHA-256 of the certificate's DER.
        public var sha256: String
        public var subject: String
        public var notBefore: Date
        public var notAfter: Date
        /// The certificate, PEM (what an administrator copies into `ca_pin_file`).
        public var certificatePEM: String
        /// When the server first announced it.
        public var announcedAt: Date
        /// SHA-256 of the CA the server issued from when it announced this one.
        public var announcedWhileCA: String
        /// SHA-256 of the certificate that signed the announcement (that CA, or its RA).
        public var signedBy: String
        /// When GetCACert first presented it (the rollover); nil while only announced.
        public var inUseSince: Date?

        public init(sha256: String, subject: String, notBefore: Date, notAfter: Date, certificatePEM: String,
                    announcedAt: Date, announcedWhileCA: String, signedBy: String, inUseSince: Date? = nil) {
            self.sha256 = sha256
            self.subject = subject
            self.notBefore = notBefore
            self.notAfter = notAfter
            self.certificatePEM = certificatePEM
            self.announcedAt = announcedAt
            self.announcedWhileCA = announcedWhileCA
            self.signedBy = signedBy
            self.inUseSince = inUseSince
        }
    }

    /// The format written.
    public var version = 1
    /// When a GetNextCACert answer last verified (the cache time: asked again a day later).
    public var checkedAt: Date?
    /// Whether GetCACaps listed GetNextCACert at the last contact: only then does a run
    /// with nothing else to do contact the server for it.
    public var serverOffersNextCA: Bool
    public var candidates: [Candidate]

    public init(checkedAt: Date? = nil, serverOffersNextCA: Bool = false, candidates: [Candidate] = []) {
        self.checkedAt = checkedAt
        self.serverOffersNextCA = serverOffersNextCA
        self.candidates = candidates
    }

    static func encode(_ record: NextCARecord) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return Array(try encoder.encode(record)) + [UInt8(ascii: "\n")]
    }

    static func decode(_ bytes: [UInt8]) throws -> NextCARecord {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try decoder.decode(NextCARecord.self, from: Data(bytes))
    }
}
