import CertStore
import EnrollmentPlan
import Foundation
import KeyInterface
import Logging
import Renewal
import SCEPClient
import SwiftASN1
import X509

/// What `status` reports for one profile; Encodable for `status --json`.
struct ProfileStatus: Encodable {
    struct CertificateInfo: Encodable {
        var subject: String
        var subjectAlternativeNames: [String]
        var serial: String
        var issuer: String
        var notBefore: Date
        var notAfter: Date
        var sha256Fingerprint: String
        var certificatePath: String
        var keyPath: String
    }

    /// The transaction on file, if any.
    struct PendingInfo: Encodable {
        var transactionID: String
        var messageType: String
        /// prepared | submitted | pending | reply-unreadable
        var phase: String
        var startedAt: Date
        /// How long the request has been open, e.g. "2d3h".
        var age: String
        var pollCount: Int
        /// When the request on file is given up (pending_max_age, or before the renewed certificate ends).
        var abandonAt: Date
    }

    struct AbandonedInfo: Encodable {
        var transactionID: String
        var reason: String
        var at: Date
    }

    var profile: String
    /// valid | revoked | expired | not-yet-valid | none | broken
    var state: String
    /// What the agent does next for this profile, as the planner decides it for `renew`:
    /// not due | due | expired | none | pending | submitted | failing | abandoning | reply-unreadable
    var renewal: String = "none"
    /// When the agent next acts for this profile (renewal time, retry time, or now).
    var nextRenewal: Date?
    /// The enrollment phase on file (idle | prepared | submitted | pending | reply-unreadable).
    var phase: String = "idle"
    var certificate: CertificateInfo?
    /// The live certificate's Microsoft Entra `certificateUserIds` values
    /// (as `certificate-user-ids` prints them).
    var certificateUserIds: [CertificateUserID]?
    /// tpm | software (from the installed key file)
    var keyStorage: String?
    /// The certificate's key: "RSA-2048", "EC P-256", "EC P-384".
    var keyType: String?
    var pending: PendingInfo?
    var lastAbandoned: AbandonedInfo?
    /// The live certificate's last CRL check (`RevocationStatusInfo`).
    var revocation: RevocationStatusInfo?
    /// The next CA the SCEP server announced (GetNextCACert), from the store.
    var nextCA: [NextCAInfo]?
    var lastError: String?
    var lastErrorAt: Date?
    var lastSuccessAt: Date?
    var lastAttemptAt: Date?
    var consecutiveFailures: Int

    static func read(profile: ProfileConfig, stateDirectory: String, now: Date) -> ProfileStatus {
        var status = ProfileStatus(profile: profile.name, state: "none", consecutiveFailures: 0)
        let directory = stateDirectory + "/" + profile.name
        guard FileManager.default.fileExists(atPath: directory) else { return status }
        // Read-only: status (often run by an administrator as root) changes nothing in the store.
        let store = ProfileStore(readingFrom: directory)
        do {
            if let live = try LiveCertificate.load(from: store) {
                let certificate = live.certificate
                status.state = live.lifetime.isValid(at: now) ? "valid" : (certificate.notValidBefore > now ? "not-yet-valid" : "expired")
                status.keyStorage = live.keyKind.rawValue
                status.keyType = KeyAlgorithm(publicKey: certificate.publicKey)?.description
                status.certificate = CertificateInfo(
                    subject: "\(certificate.subject)",
                    subjectAlternativeNames: subjectAlternativeNames(of: certificate),
                    serial: CertificateText.serial(certificate),
                    issuer: "\(certificate.issuer)",
                    notBefore: certificate.notValidBefore, notAfter: certificate.notValidAfter,
                    sha256Fingerprint: live.sha256Fingerprint,
                    certificatePath: store.liveCertificatePath, keyPath: store.liveKeyPath)
                status.certificateUserIds = CertificateUserIDs(certificate: certificate).values
            }
        } catch {
            status.state = "broken"
            status.lastError = "\(error)"
        }
        status.nextCA = NextCAInfo.read(from: store)
        if let state = try? store.loadState() {
            status.lastError = status.lastError ?? state.lastError
            status.lastErrorAt = state.lastErrorAt
            status.lastSuccessAt = state.lastSuccessAt
            status.lastAttemptAt = state.lastAttemptAt
            status.consecutiveFailures = state.failures
            status.lastAbandoned = state.lastAbandoned.map { AbandonedInfo(transactionID: $0.transactionID, reason: $0.reason, at: $0.at) }
            let live = (try? LiveCertificate.load(from: store)).flatMap { $0 }
            status.describe(profile: profile, state: state, live: live, now: now)
            status.describeRevocation(profile: profile, state: state, live: live)
        }
        return status
    }

    /// What the planner decides for `renew` now, in words: the same function the agent
    /// runs, so `status` cannot disagree with it.
    mutating func describe(profile: ProfileConfig, state: ProfileState, live: LiveCertificate?, now: Date) {
        let runner = ProfileRunner(config: AgentConfig(stateDirectory: "/", profiles: [profile]), profile: profile,
                                   environment: AgentEnvironment(), logger: Logger(label: "status"))
        let facts = live.map(runner.facts)
        phase = state.phase.name
        if let transaction = state.phase.transaction {
            var polls = 0
            if case .pending(let progress) = state.phase { polls = progress.polls }
            pending = PendingInfo(
                transactionID: transaction.transactionID, messageType: transaction.kind.rawValue, phase: state.phase.name,
                startedAt: transaction.startedAt, age: DurationText.format(now.timeIntervalSince(transaction.startedAt)),
                pollCount: polls, abandonAt: EnrollmentPlanner.deadline(for: transaction, live: facts, policy: runner.policy))
        }
        // What follows the revocation check, which `status` reports on its own (`revocation`).
        switch EnrollmentPlanner.next(state: state, live: facts, policy: runner.policy, intent: .renew(), now: now, revocationCheckedThisRun: true) {
        case .wait(let until, let reason):
            nextRenewal = until
            switch reason {
            case .notDue: renewal = "not due"
            case .certificateValid: renewal = "not due"
            case .backingOff: renewal = "failing"
            case .pollScheduled: renewal = "pending"
            case .retryScheduled: renewal = state.phase.name == "pending" ? "pending" : "failing"
            }
        case .startRequest(let purpose):
            nextRenewal = now
            switch purpose {
            case .initial, .afterAbandon: renewal = "none"
            case .replaceExpired: renewal = "expired"
            case .renewal, .forced, .replaceRevoked: renewal = "due"
            }
        case .send, .poll, .resend:
            nextRenewal = now
            renewal = state.phase.name
        case .abandon:
            nextRenewal = now
            renewal = "abandoning"
        case .checkRevocation:
            nextRenewal = now
            renewal = "not due"
        }
    }

    static func subjectAlternativeNames(of certificate: Certificate) -> [String] {
        guard let names = try? certificate.extensions.subjectAlternativeNames else { return [] }
        return names.map { name in
            switch name {
            case .dnsName(let dns): return "DNS:\(dns)"
            case .rfc822Name(let email): return "email:\(email)"
            case .uniformResourceIdentifier(let uri): return "URI:\(uri)"
            case .ipAddress(let bytes): return "IP:\(bytes.bytes.map { String($0) }.joined(separator: "."))"
            case .otherName(let other):
                if other.typeID == [1, 3, 6, 1, 4, 1, 311, 20, 2, 3], let value = other.value,
                   let upn = try? ASN1UTF8String(asn1Any: value) {
                    return "UPN:\(String(upn))"
                }
                return "otherName:\(other.typeID)"
            default: return "\(name)"
            }
        }
    }

    /// The human table.
    var text: String {
        var lines = ["profile \(profile): \(state)"]
        func row(_ label: String, _ value: String) { lines.append("  " + label.padding(toLength: 14, withPad: " ", startingAt: 0) + value) }
        if let certificate {
            row("subject", certificate.subject)
            if !certificate.subjectAlternativeNames.isEmpty { row("SANs", certificate.subjectAlternativeNames.joined(separator: ", ")) }
            row("issuer", certificate.issuer)
            row("serial", certificate.serial)
            row("valid", "\(Self.format(certificate.notBefore)) → \(Self.format(certificate.notAfter))")
            row("sha256", certificate.sha256Fingerprint)
            row("certificate", certificate.certificatePath)
            row("key", certificate.keyPath)
        }
        row("renewal", renewal + (nextRenewal.map { " (next: \(Self.format($0)))" } ?? ""))
        if let keyType { row("key type", keyType) }
        if let keyStorage { row("key storage", keyStorage == "software" ? "software (private key is a file on disk)" : keyStorage) }
        if let pending {
            row("request", "\(pending.messageType) \(pending.transactionID), \(pending.phase) since \(Self.format(pending.startedAt)) (\(pending.age)), \(pending.pollCount) polls; abandoned at \(Self.format(pending.abandonAt)) if still open")
        }
        revocationRows(row)
        for next in nextCA ?? [] { row("next CA", next.text) }
        if let lastAbandoned { row("abandoned", "\(lastAbandoned.transactionID) at \(Self.format(lastAbandoned.at)): \(lastAbandoned.reason)") }
        if let lastSuccessAt { row("last success", Self.format(lastSuccessAt)) }
        if let lastError {
            row("last error", lastError + (lastErrorAt.map { " (at \(Self.format($0)), \(consecutiveFailures) in a row)" } ?? ""))
        }
        return lines.joined(separator: "\n")
    }

    static func format(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle())
    }
}
