import Foundation

/// Where one profile's enrollment stands, persisted in `state.json` after every step
/// (certmonger's "doing" states). The live certificate is not part of it: it is read
/// from the store, and `EnrollmentPlanner` decides from both what comes next.
///
/// ```
///  idle ──startRequest──▶ prepared ──send──▶ submitted ──poll──▶ pending ──poll──▶ idle (installed)
///   ▲                        │                  │  ▲ resend (once)   │
///   │                        │                  └──┘                 │
///   └──── FAILURE / abandon ◀┴──────────────────┴────────────────────┘
///                        replyUnreadable ──poll (≤ 3)──▶ …
/// ```
/// (docs/enrollment-states.md has the full table.)
public enum EnrollmentPhase: Equatable, Sendable {
    /// Nothing in flight.
    case idle
    /// A key and a request are on file, not yet sent.
    case prepared(SCEPTransaction)
    /// The request went out (or may have), without a verified answer yet: a dropped
    /// connection, a timeout, a crash.
    case submitted(Submission)
    /// The CA answered PENDING (verified): it knows the transaction.
    case pending(PendingProgress)
    /// A verified SUCCESS whose content could not be opened (unsupported cipher,
    /// decryption failure): not pending, not installed.
    case replyUnreadable(UnreadableReply)

    public var transaction: SCEPTransaction? {
        switch self {
        case .idle: return nil
        case .prepared(let transaction): return transaction
        case .submitted(let submission): return submission.transaction
        case .pending(let progress): return progress.transaction
        case .replyUnreadable(let reply): return reply.transaction
        }
    }

    /// The spelling in `status` and logs.
    public var name: String {
        switch self {
        case .idle: return "idle"
        case .prepared: return "prepared"
        case .submitted: return "submitted"
        case .pending: return "pending"
        case .replyUnreadable: return "reply-unreadable"
        }
    }
}

public struct Submission: Codable, Equatable, Sendable {
    public var transaction: SCEPTransaction
    public var sentAt: Date
    /// How often the same request was sent again because the CA did not know it.
    public var resends: Int
    /// The CA said it does not know the transaction (verified badCertId), or answered
    /// CertPoll with an HTTP error before ever acknowledging it (micromdm does not
    /// implement CertPoll): send the same request again, once.
    public var unrecognized: Bool

    public init(transaction: SCEPTransaction, sentAt: Date, resends: Int = 0, unrecognized: Bool = false) {
        self.transaction = transaction
        self.sentAt = sentAt
        self.resends = resends
        self.unrecognized = unrecognized
    }
}

public struct PendingProgress: Codable, Equatable, Sendable {
    public var transaction: SCEPTransaction
    /// The first PENDING.
    public var since: Date
    public var polls: Int
    public var lastPollAt: Date?

    public init(transaction: SCEPTransaction, since: Date, polls: Int = 0, lastPollAt: Date? = nil) {
        self.transaction = transaction
        self.since = since
        self.polls = polls
        self.lastPollAt = lastPollAt
    }
}

public struct UnreadableReply: Codable, Equatable, Sendable {
    public var transaction: SCEPTransaction
    public var reason: String
    public var attempts: Int

    public init(transaction: SCEPTransaction, reason: String, attempts: Int) {
        self.transaction = transaction
        self.reason = reason
        self.attempts = attempts
    }
}

extension EnrollmentPhase: Codable {
    private enum CodingKeys: String, CodingKey { case name, transaction, submission, pending, unreadable }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        switch try container.decode(String.self, forKey: .name) {
        case "idle": self = .idle
        case "prepared": self = .prepared(try container.decode(SCEPTransaction.self, forKey: .transaction))
        case "submitted": self = .submitted(try container.decode(Submission.self, forKey: .submission))
        case "pending": self = .pending(try container.decode(PendingProgress.self, forKey: .pending))
        case "reply-unreadable": self = .replyUnreadable(try container.decode(UnreadableReply.self, forKey: .unreadable))
        case let other:
            throw DecodingError.dataCorruptedError(forKey: .name, in: container, debugDescription: "unknown phase \"\(other)\"")
        }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(name, forKey: .name)
        switch self {
        case .idle: break
        case .prepared(let transaction): try container.encode(transaction, forKey: .transaction)
        case .submitted(let submission): try container.encode(submission, forKey: .submission)
        case .pending(let progress): try container.encode(progress, forKey: .pending)
        case .replyUnreadable(let reply): try container.encode(reply, forKey: .unreadable)
        }
    }
}
