import Foundation

/// `on_revoked`: what a revoked live certificate leads to.
public enum RevokedCertificatePolicy: String, CaseIterable, Equatable, Sendable {
    /// A fresh PKCSReq with a new key and a new challenge (never a RenewalReq signed
    /// with the revoked certificate).
    case reenroll
    /// Only reported (log, `status`); the certificate stays and is renewed as usual, with a PKCSReq.
    case report
}

/// The revocation of the live certificate, as a verified CRL stated it.
public struct Revocation: Codable, Equatable, Sendable {
    public var revokedAt: Date
    /// CRLReason name (RFC 5280 §5.3.1), nil when the CRL gave none.
    public var reason: String?
    public var invalidityDate: Date?

    public init(revokedAt: Date, reason: String? = nil, invalidityDate: Date? = nil) {
        self.revokedAt = revokedAt
        self.reason = reason
        self.invalidityDate = invalidityDate
    }
}

/// What one revocation check found.
public enum RevocationCheckResult: Equatable, Sendable {
    /// A verified CRL does not list the certificate.
    case good
    case revoked(Revocation)
    /// No CRL could be fetched and verified; nothing is known. Never a verdict.
    case unavailable(cause: String)
}

/// One check, as the runner hands it to the transitions.
public struct RevocationCheck: Equatable, Sendable {
    /// Serial (hex) of the certificate checked.
    public var serial: String
    public var result: RevocationCheckResult
    /// The nextUpdate of the CRL that gave the verdict (cached in the store).
    public var crlNextUpdate: Date?
    public var crlURL: String?
    /// With a verdict: what went wrong on the way (no CRL could be fetched, the cached one was used).
    public var note: String?

    public init(serial: String, result: RevocationCheckResult, crlNextUpdate: Date? = nil, crlURL: String? = nil, note: String? = nil) {
        self.serial = serial
        self.result = result
        self.crlNextUpdate = crlNextUpdate
        self.crlURL = crlURL
        self.note = note
    }
}

/// How the last check ended, as `status` shows it.
public enum RevocationCheckStatus: String, Codable, Equatable, Sendable {
    /// A verified CRL does not list the certificate.
    case good
    /// A verified CRL lists it.
    case revoked
    /// No CRL could be fetched and verified.
    case unavailable
}

/// What `state.json` keeps about the live certificate's revocation (`revocation`).
public struct RevocationRecord: Codable, Equatable, Sendable {
    /// Serial (hex) of the certificate this is about; a record for another serial is stale.
    public var serial: String
    public var checkedAt: Date
    /// The last check's result.
    public var lastResult: RevocationCheckStatus
    /// Why the last check gave no verdict, or (with one) what went wrong on the way.
    public var lastCause: String?
    /// Set by a verified CRL that lists the certificate; kept through checks that give no
    /// verdict, cleared only by a verified CRL that does not list it.
    public var revoked: Revocation?
    /// nextUpdate of the last verified CRL: a check is due once it has passed.
    public var crlNextUpdate: Date?
    public var crlURL: String?
    /// When a verified CRL last gave a verdict.
    public var verifiedAt: Date?

    public init(serial: String, checkedAt: Date, lastResult: RevocationCheckStatus, lastCause: String? = nil, revoked: Revocation? = nil,
                crlNextUpdate: Date? = nil, crlURL: String? = nil, verifiedAt: Date? = nil) {
        self.serial = serial
        self.checkedAt = checkedAt
        self.lastResult = lastResult
        self.lastCause = lastCause
        self.revoked = revoked
        self.crlNextUpdate = crlNextUpdate
        self.crlURL = crlURL
        self.verifiedAt = verifiedAt
    }

    /// The record after `check` at `now`.
    public static func after(_ check: RevocationCheck, previous: RevocationRecord?, now: Date) -> RevocationRecord {
        var record = previous.flatMap { $0.serial == check.serial ? $0 : nil }
            ?? RevocationRecord(serial: check.serial, checkedAt: now, lastResult: .unavailable)
        record.checkedAt = now
        record.lastCause = check.note
        switch check.result {
        case .good:
            record.lastResult = .good
            record.revoked = nil
        case .revoked(let revocation):
            record.lastResult = .revoked
            record.revoked = revocation
        case .unavailable(let cause):
            // Nothing is known: what the last verified CRL said stands.
            record.lastResult = .unavailable
            record.lastCause = cause
            return record
        }
        record.crlNextUpdate = check.crlNextUpdate
        record.crlURL = check.crlURL
        record.verifiedAt = now
        return record
    }
}

/// When the live certificate's CRL is looked at (pure, like the renewal time).
public enum RevocationSchedule {
    public static let defaultInterval: TimeInterval = 12 * 3600

    /// The record that belongs to the live certificate, if any.
    public static func record(_ state: ProfileState, for live: LiveCertificateFacts?) -> RevocationRecord? {
        guard let live, let record = state.revocation, record.serial == live.serial else { return nil }
        return record
    }

    /// The revocation a verified CRL stated for the live certificate.
    public static func revocation(_ state: ProfileState, for live: LiveCertificateFacts?) -> Revocation? {
        record(state, for: live)?.revoked
    }

    /// When the next check is due: `revocation_check_interval` after the last one, or
    /// when the last verified CRL's nextUpdate passes, whichever is first; nil when the
    /// certificate names no distribution point. With an interval of 0 every run checks,
    /// so there is no time of its own to wake up for (nil too, unless nextUpdate says so).
    public static func nextCheck(state: ProfileState, live: LiveCertificateFacts?, interval: TimeInterval) -> Date? {
        guard let live, live.hasCRLDistributionPoint else { return nil }
        guard let record = record(state, for: live) else { return live.lifetime.notBefore }  // never checked: now
        var times: [Date] = []
        if interval > 0 { times.append(record.checkedAt.addingTimeInterval(interval)) }
        if let nextUpdate = record.crlNextUpdate, nextUpdate > record.checkedAt { times.append(nextUpdate) }
        return times.min()
    }

    /// Whether a run that has not checked yet should check now.
    public static func isDue(state: ProfileState, live: LiveCertificateFacts?, interval: TimeInterval, now: Date) -> Bool {
        guard let live, live.hasCRLDistributionPoint, live.lifetime.isValid(at: now) else { return false }
        guard record(state, for: live) != nil else { return true }
        if interval <= 0 { return true }
        return nextCheck(state: state, live: live, interval: interval).map { $0 <= now } ?? false
    }
}
