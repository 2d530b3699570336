import EnrollmentPlan
import Foundation

/// `state.json` written by the first release (format version 1): a `pending` transaction
/// and the bookkeeping around it. Read so that an upgrade resumes a transaction in
/// flight; never written.
struct LegacyPendingTransaction: Decodable {
    /// The transactionID attribute of the request (printable string).
    var transactionID: String
    /// "PKCSReq" or "RenewalReq": which request is pending.
    var messageType: String
    /// The certificate that signed the request (self-signed for PKCSReq); CertPoll reuses it.
    var signerCertificateDER: [UInt8]
    /// Issuer name (DER) for the CertPoll IssuerAndSubject.
    var issuerDER: [UInt8]
    /// Subject name (DER) for the CertPoll IssuerAndSubject.
    var subjectDER: [UInt8]
    /// Where the pending key lives ("tpm" or "software").
    var keyStorage: String
    var startedAt: Date
    var pollCount: Int
    var lastPollAt: Date?
    /// The server answered PENDING: it knows this transaction. Until then the request
    /// may never have reached it (a crash, a broken connection), so a server that
    /// does not recognise it on CertPoll means "send a new request", not "wait".
    var acknowledged: Bool


    private enum CodingKeys: String, CodingKey {
        case transactionID, messageType, signerCertificateDER, issuerDER, subjectDER
        case keyStorage, startedAt, pollCount, lastPollAt, acknowledged
    }

    init(from decoder: Decoder) throws {
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

}

struct LegacyStateV1: Decodable {
    var pending: LegacyPendingTransaction?
    var lastError: String?
    var lastErrorAt: Date?
    var lastSuccessAt: Date?
    var consecutiveFailures: Int?
    var nextAttemptAt: Date?
    var renewalJitterSeconds: Double?
    var jitterForSerial: String?
    var keyStorage: String?

    /// The same facts as a version 2 state: an acknowledged transaction is pending, an
    /// unacknowledged one submitted (the planner then polls it, and sends it again if the
    /// CA does not know it).
    var migrated: ProfileState {
        var state = ProfileState(retryAt: nextAttemptAt, failures: consecutiveFailures ?? 0, lastError: lastError,
                                 lastErrorAt: lastErrorAt, lastSuccessAt: lastSuccessAt, keyStorage: keyStorage)
        if let serial = jitterForSerial, let seconds = renewalJitterSeconds {
            // Version 1 wrote swift-certificates' spelling, "7f:a:0:45"; now "7f0a0045".
            let hex = serial.split(separator: ":").map { $0.count == 1 ? "0" + $0 : String($0) }.joined().lowercased()
            state.renewalJitter = RenewalJitter(serial: hex, seconds: seconds)
        }
        if let pending {
            let transaction = SCEPTransaction(
                transactionID: pending.transactionID, kind: RequestKind(rawValue: pending.messageType) ?? .pkcsReq,
                senderNonce: [], signerCertificateDER: pending.signerCertificateDER, issuerDER: pending.issuerDER,
                subjectDER: pending.subjectDER, keyStorage: pending.keyStorage, startedAt: pending.startedAt)
            if pending.acknowledged {
                state.phase = .pending(PendingProgress(transaction: transaction, since: pending.startedAt,
                                                       polls: pending.pollCount, lastPollAt: pending.lastPollAt))
            } else {
                state.phase = .submitted(Submission(transaction: transaction, sentAt: pending.startedAt))
            }
        }
        return state
    }
}

/// JSON coding for `state.json`: sorted keys for stable diffs, ISO 8601 dates with
/// milliseconds (plain ISO 8601 without them is accepted too), bytes as base64.
enum StateFileCoding {
    /// The format written: 3 (`ProfileState` with `revocation`). Version 2 files read as
    /// they are (every field added since is optional); version 1 files are migrated.
    static let formatVersion = 3

    static func encode(_ state: ProfileState) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dataEncodingStrategy = .base64
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            // The style truncates to milliseconds; half a millisecond makes that rounding,
            // so a date that is a whole number of milliseconds survives the round trip.
            try container.encode(date.addingTimeInterval(0.0005).formatted(withFractions))
        }
        var bytes = Array(try encoder.encode(VersionedState(version: formatVersion, state: state)))
        bytes.append(UInt8(ascii: "\n"))
        return bytes
    }

    static func decode(_ bytes: [UInt8]) throws -> ProfileState {
        let decoder = JSONDecoder()
        decoder.dataDecodingStrategy = .base64
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            guard let date = (try? withFractions.parse(text)) ?? (try? withoutFractions.parse(text)) else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "not an ISO 8601 date: \(text)")
            }
            guard writableDates.contains(date) else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "date outside the years 1 to 9999: \(text)")
            }
            return date
        }
        let version = try decoder.decode(VersionOnly.self, from: Data(bytes)).version ?? 1
        // A newer agent's file is read as far as this one understands it (every field is
        // optional, unknown keys are ignored): a downgrade keeps the request on file.
        if version <= 1 { return try decoder.decode(LegacyStateV1.self, from: Data(bytes)).migrated }
        return try decoder.decode(ProfileState.self, from: Data(bytes))
    }

    private struct VersionOnly: Decodable { var version: Int? }

    /// The state with its format version beside its own keys.
    private struct VersionedState: Encodable {
        let version: Int
        let state: ProfileState
        func encode(to encoder: Encoder) throws {
            try state.encode(to: encoder)
            var container = encoder.container(keyedBy: Key.self)
            try container.encode(version, forKey: .version)
        }
        private enum Key: String, CodingKey { case version }
    }

    // Format styles are values (thread-safe) and, unlike ISO8601DateFormatter,
    // do not load ICU: 0.2 ms instead of 3.7 ms and 6 MB (benchmarks/results/diagnosis.txt).
    private static let withFractions = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
    private static let withoutFractions = Date.ISO8601FormatStyle()

    /// The four-digit years. Past them the text is not ISO 8601's, and from some 70000 years
    /// on a double is too coarse for the half-millisecond rounding in `encode`, so each rewrite
    /// of the file would move the date (found by the statefile fuzzer).
    private static let writableDates: ClosedRange<Date> = {
        let first = try! withoutFractions.parse("0001-01-01T00:00:00Z")
        let last = try! withFractions.parse("9999-12-31T23:59:59.999Z")
        return first...last
    }()

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
