import Foundation

/// A SCEP transaction in flight: persisted before the request is sent, and
/// marked `acknowledged` once the server answers PENDING (RFC 8894 §3.3.2.2).
///
/// Persisted so that a restart polls the same transaction (CertPoll, §3.3.3) instead of
/// enrolling again. Holds only public material: the private key lives in
/// `<profile>/pending/key.pem` (see `ProfileStore.savePendingKey(pem:)`), the challenge
/// is never stored.
public struct PendingTransaction: Codable, Equatable, Sendable {
    /// The transactionID attribute of the request (printable string).
    public var transactionID: String
    /// "PKCSReq" or "RenewalReq": which request is pending.
    public var messageType: String
    /// The certificate that signed the request (self-signed for PKCSReq); CertPoll reuses it.
    public var signerCertificateDER: [UInt8]
    /// Issuer name (DER) for the CertPoll IssuerAndSubject.
    public var issuerDER: [UInt8]
    /// Subject name (DER) for the CertPoll IssuerAndSubject.
    public var subjectDER: [UInt8]
    /// Where the pending key lives ("tpm" or "software").
    public var keyStorage: String
    public var startedAt: Date
    public var pollCount: Int
    public var lastPollAt: Date?
    /// The server answered PENDING: it knows this transaction. Until then the request
    /// may never have reached it (a crash, a broken connection), so a server that
    /// does not recognise it on CertPoll means "send a new request", not "wait".
    public var acknowledged: Bool

    public init(transactionID: String, messageType: String, signerCertificateDER: [UInt8],
                issuerDER: [UInt8], subjectDER: [UInt8], keyStorage: String,
                startedAt: Date, pollCount: Int = 0, lastPollAt: Date? = nil, acknowledged: Bool = false) {
        self.transactionID = transactionID
        self.messageType = messageType
        self.signerCertificateDER = signerCertificateDER
        self.issuerDER = issuerDER
        self.subjectDER = subjectDER
        self.keyStorage = keyStorage
        self.startedAt = startedAt
        self.pollCount = pollCount
        self.lastPollAt = lastPollAt
        self.acknowledged = acknowledged
    }

    private enum CodingKeys: String, CodingKey {
        case transactionID, messageType, signerCertificateDER, issuerDER, subjectDER
        case keyStorage, startedAt, pollCount, lastPollAt, acknowledged
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        transactionID = try container.decode(String.self, forKey: .transactionID)
        messageType = try container.decode(String.self, forKey: .messageType)
        // Data decodes from base64 with the store's decoder: byte arrays stay readable JSON.
        signerCertificateDER = Array(try container.decode(Data.self, forKey: .signerCertificateDER))
        issuerDER = Array(try container.decode(Data.self, forKey: .issuerDER))
        subjectDER = Array(try container.decode(Data.self, forKey: .subjectDER))
        keyStorage = try container.decode(String.self, forKey: .keyStorage)
        startedAt = try container.decode(Date.self, forKey: .startedAt)
        pollCount = try container.decodeIfPresent(Int.self, forKey: .pollCount) ?? 0
        lastPollAt = try container.decodeIfPresent(Date.self, forKey: .lastPollAt)
        acknowledged = try container.decodeIfPresent(Bool.self, forKey: .acknowledged) ?? false
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(transactionID, forKey: .transactionID)
        try container.encode(messageType, forKey: .messageType)
        try container.encode(Data(signerCertificateDER), forKey: .signerCertificateDER)
        try container.encode(Data(issuerDER), forKey: .issuerDER)
        try container.encode(Data(subjectDER), forKey: .subjectDER)
        try container.encode(keyStorage, forKey: .keyStorage)
        try container.encode(startedAt, forKey: .startedAt)
        try container.encode(pollCount, forKey: .pollCount)
        try container.encodeIfPresent(lastPollAt, forKey: .lastPollAt)
        try container.encode(acknowledged, forKey: .acknowledged)
    }
}

/// What the agent remembers about a profile between runs (`<profile>/state.json`).
///
/// Never put a secret here: the file is 0644. Every field is optional or defaulted when
/// decoding, and unknown keys are ignored, so older and newer agents can read each other's
/// files. Dates are stored as ISO 8601 with millisecond precision.
public struct EnrollmentState: Codable, Equatable, Sendable {
    /// A transaction awaiting CertPoll; nil when nothing is in flight.
    public var pending: PendingTransaction?
    /// The last failure, for `status` and logs (no secrets).
    public var lastError: String?
    public var lastErrorAt: Date?
    public var lastSuccessAt: Date?
    /// Drives the retry backoff; reset to 0 on success.
    public var consecutiveFailures: Int
    /// When the scheduler should try again (retry backoff or renewal time).
    public var nextAttemptAt: Date?
    /// Renewal jitter picked once per certificate and persisted, so it is never re-rolled.
    public var renewalJitterSeconds: Double?
    /// Serial (hex) of the certificate `renewalJitterSeconds` belongs to.
    public var jitterForSerial: String?
    /// Where the live key is stored ("tpm" or "software"), shown by `status`.
    public var keyStorage: String?

    public init(pending: PendingTransaction? = nil, lastError: String? = nil, lastErrorAt: Date? = nil,
                lastSuccessAt: Date? = nil, consecutiveFailures: Int = 0, nextAttemptAt: Date? = nil,
                renewalJitterSeconds: Double? = nil, jitterForSerial: String? = nil,
                keyStorage: String? = nil) {
        self.pending = pending
        self.lastError = lastError
        self.lastErrorAt = lastErrorAt
        self.lastSuccessAt = lastSuccessAt
        self.consecutiveFailures = consecutiveFailures
        self.nextAttemptAt = nextAttemptAt
        self.renewalJitterSeconds = renewalJitterSeconds
        self.jitterForSerial = jitterForSerial
        self.keyStorage = keyStorage
    }

    private enum CodingKeys: String, CodingKey {
        case version, pending, lastError, lastErrorAt, lastSuccessAt, consecutiveFailures
        case nextAttemptAt, renewalJitterSeconds, jitterForSerial, keyStorage
    }

    /// Written into the file so a future format change can be recognised.
    static let formatVersion = 1

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        pending = try container.decodeIfPresent(PendingTransaction.self, forKey: .pending)
        lastError = try container.decodeIfPresent(String.self, forKey: .lastError)
        lastErrorAt = try container.decodeIfPresent(Date.self, forKey: .lastErrorAt)
        lastSuccessAt = try container.decodeIfPresent(Date.self, forKey: .lastSuccessAt)
        consecutiveFailures = try container.decodeIfPresent(Int.self, forKey: .consecutiveFailures) ?? 0
        nextAttemptAt = try container.decodeIfPresent(Date.self, forKey: .nextAttemptAt)
        renewalJitterSeconds = try container.decodeIfPresent(Double.self, forKey: .renewalJitterSeconds)
        jitterForSerial = try container.decodeIfPresent(String.self, forKey: .jitterForSerial)
        keyStorage = try container.decodeIfPresent(String.self, forKey: .keyStorage)
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(Self.formatVersion, forKey: .version)
        try container.encodeIfPresent(pending, forKey: .pending)
        try container.encodeIfPresent(lastError, forKey: .lastError)
        try container.encodeIfPresent(lastErrorAt, forKey: .lastErrorAt)
        try container.encodeIfPresent(lastSuccessAt, forKey: .lastSuccessAt)
        try container.encode(consecutiveFailures, forKey: .consecutiveFailures)
        try container.encodeIfPresent(nextAttemptAt, forKey: .nextAttemptAt)
        try container.encodeIfPresent(renewalJitterSeconds, forKey: .renewalJitterSeconds)
        try container.encodeIfPresent(jitterForSerial, forKey: .jitterForSerial)
        try container.encodeIfPresent(keyStorage, forKey: .keyStorage)
    }
}

/// JSON coding for `state.json`: sorted keys for stable diffs, ISO 8601 dates with
/// milliseconds (plain ISO 8601 without them is accepted too), bytes as base64.
enum StateFileCoding {
    static func encode(_ state: EnrollmentState) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dataEncodingStrategy = .base64
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            // The style truncates to milliseconds; half a millisecond makes that rounding,
            // so a date that is a whole number of milliseconds survives the round trip.
            try container.encode(date.addingTimeInterval(0.0005).formatted(withFractions))
        }
        var bytes = Array(try encoder.encode(state))
        bytes.append(UInt8(ascii: "\n"))
        return bytes
    }

    static func decode(_ bytes: [UInt8]) throws -> EnrollmentState {
        let decoder = JSONDecoder()
        decoder.dataDecodingStrategy = .base64
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            if let date = (try? withFractions.parse(text)) ?? (try? withoutFractions.parse(text)) {
                return date
            }
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "not an ISO 8601 date: \(text)")
        }
        return try decoder.decode(EnrollmentState.self, from: Data(bytes))
    }

    // Format styles are values (thread-safe) and, unlike ISO8601DateFormatter,
    // do not load ICU: 0.2 ms instead of 3.7 ms and 6 MB (benchmarks/results/diagnosis.txt).
    private static let withFractions = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
    private static let withoutFractions = Date.ISO8601FormatStyle()

    /// A one-line account of why decoding failed, for the error message.
    static func describe(_ error: Error) -> String {
        guard let decodingError = error as? DecodingError else { return String(describing: error) }
        func path(_ context: DecodingError.Context) -> String {
            let keys = context.codingPath.map(\.stringValue).joined(separator: ".")
            return keys.isEmpty ? "" : " at \(keys)"
        }
        switch decodingError {
        case .dataCorrupted(let context):
            return "invalid data\(path(context)): \(context.debugDescription)"
        case .keyNotFound(let key, let context):
            return "missing key \(key.stringValue)\(path(context))"
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            return "wrong type\(path(context)): \(context.debugDescription)"
        @unknown default:
            return String(describing: decodingError)
        }
    }
}
