import Foundation

/// What the agent remembers about a profile between runs (`<profile>/state.json`): the
/// phase, and the bookkeeping around it. Saved once per step.
///
/// Never put a secret here: the file is 0644.
public struct ProfileState: Codable, Equatable, Sendable {
    public var phase: EnrollmentPhase
    /// No step before this time (retry backoff, the next poll). Nil: act when the planner says.
    public var retryAt: Date?
    /// Consecutive failed steps; drives the backoff; 0 after a success.
    public var failures: Int
    public var lastError: String?
    public var lastErrorAt: Date?
    public var lastSuccessAt: Date?
    /// The last step that talked to a server (success or not).
    public var lastAttemptAt: Date?
    /// The renewal jitter, picked once per certificate and kept (never re-rolled).
    public var renewalJitter: RenewalJitter?
    /// Where the live key is: "tpm" or "software".
    public var keyStorage: String?
    /// The last transaction given up on, and why (shown by `status`).
    public var lastAbandoned: Abandonment?
    /// The last revocation check of the live certificate (CRL), and a revocation it found.
    public var revocation: RevocationRecord?

    public init(phase: EnrollmentPhase = .idle, retryAt: Date? = nil, failures: Int = 0, lastError: String? = nil,
                lastErrorAt: Date? = nil, lastSuccessAt: Date? = nil, lastAttemptAt: Date? = nil,
                renewalJitter: RenewalJitter? = nil, keyStorage: String? = nil, lastAbandoned: Abandonment? = nil,
                revocation: RevocationRecord? = nil) {
        self.phase = phase
        self.retryAt = retryAt
        self.failures = failures
        self.lastError = lastError
        self.lastErrorAt = lastErrorAt
        self.lastSuccessAt = lastSuccessAt
        self.lastAttemptAt = lastAttemptAt
        self.renewalJitter = renewalJitter
        self.keyStorage = keyStorage
        self.lastAbandoned = lastAbandoned
        self.revocation = revocation
    }
}

extension ProfileState {
    private enum CodingKeys: String, CodingKey {
        case phase, retryAt, failures, lastError, lastErrorAt, lastSuccessAt, lastAttemptAt, renewalJitter, keyStorage, lastAbandoned, revocation
    }

    /// Every field may be missing (older and newer agents read each other's files).
    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            phase: try container.decodeIfPresent(EnrollmentPhase.self, forKey: .phase) ?? .idle,
            retryAt: try container.decodeIfPresent(Date.self, forKey: .retryAt),
            failures: try container.decodeIfPresent(Int.self, forKey: .failures) ?? 0,
            lastError: try container.decodeIfPresent(String.self, forKey: .lastError),
            lastErrorAt: try container.decodeIfPresent(Date.self, forKey: .lastErrorAt),
            lastSuccessAt: try container.decodeIfPresent(Date.self, forKey: .lastSuccessAt),
            lastAttemptAt: try container.decodeIfPresent(Date.self, forKey: .lastAttemptAt),
            renewalJitter: try container.decodeIfPresent(RenewalJitter.self, forKey: .renewalJitter),
            keyStorage: try container.decodeIfPresent(String.self, forKey: .keyStorage),
            lastAbandoned: try container.decodeIfPresent(Abandonment.self, forKey: .lastAbandoned),
            // A record this agent cannot read (a newer agent's) is dropped, not fatal: the
            // next check writes a fresh one.
            revocation: (try? container.decodeIfPresent(RevocationRecord.self, forKey: .revocation)) ?? nil)
    }
}

public struct RenewalJitter: Codable, Equatable, Sendable {
    /// Serial (hex) of the certificate the jitter belongs to.
    public var serial: String
    public var seconds: TimeInterval

    public init(serial: String, seconds: TimeInterval) {
        self.serial = serial
        self.seconds = seconds
    }
}

public struct Abandonment: Codable, Equatable, Sendable {
    public var transactionID: String
    public var reason: String
    public var at: Date

    public init(transactionID: String, reason: String, at: Date) {
        self.transactionID = transactionID
        self.reason = reason
        self.at = at
    }
}
