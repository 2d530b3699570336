import CertStore
import Foundation
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

    struct PendingInfo: Encodable {
        var transactionID: String
        var messageType: String
        var startedAt: Date
        var pollCount: Int
    }

    var profile: String
    /// valid | expired | not-yet-valid | none | broken
    var state: String
    /// Why the next renewal happens when it does:
    /// not due | due | expired | none | pending | failing
    var renewal: String = "none"
    /// When the agent next acts for this profile (renewal time, retry time, or now).
    var nextRenewal: Date?
    var certificate: CertificateInfo?
    /// tpm | software (from the installed key file)
    var keyStorage: String?
    var pending: PendingInfo?
    var lastError: String?
    var lastErrorAt: Date?
    var lastSuccessAt: Date?
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
                status.state = certificate.notValidAfter <= now ? "expired" : (certificate.notValidBefore > now ? "not-yet-valid" : "valid")
                status.keyStorage = live.keyKind.rawValue
                status.certificate = CertificateInfo(
                    subject: "\(certificate.subject)",
                    subjectAlternativeNames: subjectAlternativeNames(of: certificate),
                    serial: CertificateText.serial(certificate),
                    issuer: "\(certificate.issuer)",
                    notBefore: certificate.notValidBefore, notAfter: certificate.notValidAfter,
                    sha256Fingerprint: live.sha256Fingerprint,
                    certificatePath: store.liveCertificatePath, keyPath: store.liveKeyPath)
            }
        } catch {
            status.state = "broken"
            status.lastError = "\(error)"
        }
        if let state = try? store.loadState() {
            if let pending = state.pending {
                status.pending = PendingInfo(transactionID: pending.transactionID, messageType: pending.messageType,
                                             startedAt: pending.startedAt, pollCount: pending.pollCount)
            }
            status.lastError = status.lastError ?? state.lastError
            status.lastErrorAt = state.lastErrorAt
            status.lastSuccessAt = state.lastSuccessAt
            status.consecutiveFailures = state.consecutiveFailures
            status.describeRenewal(profile: profile, state: state, now: now)
        }
        return status
    }

    /// Same arithmetic as the agent, read-only: a jitter not yet picked counts as 0.
    mutating func describeRenewal(profile: ProfileConfig, state: EnrollmentState, now: Date) {
        let lifetime = certificate.map { CertificateLifetime(notBefore: $0.notBefore, notAfter: $0.notAfter) }
        let policy = RenewalPolicy(renewBefore: profile.renewBefore, maximumJitter: profile.renewJitter)
        let jitter = state.jitterForSerial == nil ? 0 : (state.renewalJitterSeconds ?? 0)
        let decision = RenewalSchedule.decision(now: now, lifetime: lifetime, policy: policy, jitter: jitter)
        renewal = decision.reason
        nextRenewal = decision.nextCheck(now: now)
        if state.pending != nil {
            renewal = "pending"
        } else if state.consecutiveFailures > 0, let retry = state.nextAttemptAt {
            renewal = "failing"
            nextRenewal = retry
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
        if let keyStorage { row("key storage", keyStorage == "software" ? "software (private key is a file on disk)" : keyStorage) }
        if let pending { row("pending", "\(pending.messageType) \(pending.transactionID) since \(Self.format(pending.startedAt)), \(pending.pollCount) polls") }
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
