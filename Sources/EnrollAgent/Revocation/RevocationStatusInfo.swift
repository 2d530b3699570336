import EnrollmentPlan
import Foundation

/// `status`'s account of the live certificate's revocation: the last check's result, and
/// a revocation a verified CRL stated (which a later check without a verdict does not undo).
struct RevocationStatusInfo: Encodable {
    /// good | revoked | unavailable (the last check; "unavailable": no CRL could be used)
    var lastResult: String
    var checkedAt: Date
    /// Why the last check gave no verdict.
    var cause: String?
    var revokedAt: Date?
    /// CRLReason (RFC 5280 §5.3.1), "unspecified" when the CRL gave none.
    var reason: String?
    var invalidityDate: Date?
    var crlURL: String?
    var crlNextUpdate: Date?
    /// When the next check is due (nil: on every run).
    var nextCheck: Date?
}

extension ProfileStatus {
    mutating func describeRevocation(profile config: ProfileConfig, state: ProfileState, live: LiveCertificate?) {
        guard let live else { return }
        let facts = ProfileRunner(config: AgentConfig(stateDirectory: "/", profiles: [config]), profile: config,
                                  environment: AgentEnvironment(), logger: .init(label: "status")).facts(live)
        guard let record = RevocationSchedule.record(state, for: facts) else { return }
        revocation = RevocationStatusInfo(
            lastResult: record.lastResult.rawValue, checkedAt: record.checkedAt, cause: record.lastCause,
            revokedAt: record.revoked?.revokedAt, reason: record.revoked.map { $0.reason ?? "unspecified" },
            invalidityDate: record.revoked?.invalidityDate, crlURL: record.crlURL, crlNextUpdate: record.crlNextUpdate,
            nextCheck: RevocationSchedule.nextCheck(state: state, live: facts, interval: config.revocation.checkInterval))
        if record.revoked != nil, self.state == "valid" { self.state = "revoked" }
    }

    func revocationRows(_ row: (String, String) -> Void) {
        guard let revocation else { return }
        if let revokedAt = revocation.revokedAt {
            row("revoked", "at \(Self.format(revokedAt)), reason \(revocation.reason ?? "unspecified")"
                + (revocation.crlURL.map { " (CRL \($0))" } ?? ""))
        }
        var last = "\(revocation.lastResult) at \(Self.format(revocation.checkedAt))"
        if let cause = revocation.cause { last += ": \(cause)" }
        if let next = revocation.nextCheck { last += "; next check \(Self.format(next))" }
        row("CRL check", last)
    }
}
