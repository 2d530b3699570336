import CertStore
import EnrollmentPlan
import Foundation
import Logging
import SCEPClient

extension ProfileRunner {
    /// The `checkRevocation` action: the live certificate against its CRL, verified
    /// against the pinned path; a verified CRL is cached in the store. Changes no
    /// installed file, and never throws for a CRL that cannot be used: that is a check
    /// without a verdict.
    func checkRevocation(_ live: LiveCertificate, store: ProfileStore) async throws -> RevocationCheck {
        let serial = CertificateText.serialHex(live.certificate)
        let pin: PinnedCA
        do {
            pin = try loadPin()
        } catch {
            return RevocationCheck(serial: serial, result: .unavailable(cause: "the pinned CA cannot be read: \(AgentError.wrap(error, profile: profile.name).message)"))
        }
        let transport: any HTTPTransport
        do {
            transport = try environment.makeCRLTransport(profile)
        } catch {
            return RevocationCheck(serial: serial, result: .unavailable(cause: AgentError.wrap(error, profile: profile.name).message))
        }
        let checker = RevocationChecker(transport: transport, pin: pin)
        let cached = try? store.loadCRL()
        let report = await checker.check(live.certificate, chain: live.chain, now: environment.clock.now(), cachedCRL: cached ?? nil)
        try Task.checkCancellation()  // shutdown, not a verdict
        var note: String?
        if let cause = report.cachedBecause {
            let text = "no CRL could be fetched (\(cause)); the cached CRL was used, current until \(report.crl?.nextUpdate.map(ProfileStatus.format) ?? "-")"
            logger.warning("\(text)")
            note = text
        } else if let crl = report.crl {
            do { try store.saveCRL(crl.der) } catch {
                logger.warning("the verified CRL could not be cached: \(AgentError.wrap(error, profile: profile.name).message)")
            }
        }
        for case .notFetched(let uri, let reason) in report.notFetched {
            logger.notice("CRL distribution point not fetched: \(reason)", metadata: ["url": "\(uri)"])
        }
        return RevocationCheck(serial: serial, result: Self.result(of: report.verdict),
                               crlNextUpdate: report.crl?.nextUpdate, crlURL: report.url ?? (note == nil ? nil : store.crlCachePath), note: note)
    }

    static func result(of verdict: RevocationReport.Verdict) -> RevocationCheckResult {
        switch verdict {
        case .good: return .good
        case .revoked(let entry):
            return .revoked(Revocation(revokedAt: entry.revocationDate, reason: entry.reason?.name, invalidityDate: entry.invalidityDate))
        case .unavailable(let cause): return .unavailable(cause: cause)
        }
    }
}

/// The log lines of a revocation check: an error for a revoked certificate, a warning for
/// a check without a verdict (the certificate stays installed), info otherwise.
enum RevocationLog {
    static func report(_ check: RevocationCheck, onRevoked: RevokedCertificatePolicy, logger: Logger) {
        switch check.result {
        case .good:
            logger.info("the certificate is not revoked", metadata: [
                "serial": "\(check.serial)", "crl": "\(check.crlURL ?? "-")",
                "crlNextUpdate": "\(check.crlNextUpdate.map(ProfileStatus.format) ?? "-")"])
        case .revoked(let revocation):
            let next = onRevoked == .reenroll
                ? "enrolling anew with a new key and a fresh challenge (on_revoked = \"reenroll\")"
                : "it stays installed (on_revoked = \"report\")"
            var metadata: Logger.Metadata = [
                "serial": "\(check.serial)", "revokedAt": "\(ProfileStatus.format(revocation.revokedAt))",
                "reason": "\(revocation.reason ?? "unspecified")", "crl": "\(check.crlURL ?? "-")"]
            if let invalidity = revocation.invalidityDate { metadata["invalidSince"] = "\(ProfileStatus.format(invalidity))" }
            logger.error("the certificate has been revoked by the CA; \(next)", metadata: metadata)
        case .unavailable(let cause):
            logger.warning("the revocation check failed; the certificate stays installed: \(cause)", metadata: ["serial": "\(check.serial)"])
        }
    }
}

extension ProfileEnroller {
    /// When the daemon must wake up for the next CRL check (nil: none of its own), read
    /// from the store without the lock: a stale answer only moves a wake-up.
    func nextRevocationCheck() -> Date? {
        let store = ProfileStore(readingFrom: storeDirectory)
        guard let live = try? LiveCertificate.load(from: store), let state = try? store.loadState() else { return nil }
        return RevocationSchedule.nextCheck(state: state, live: runner.facts(live), interval: profile.revocation.checkInterval)
    }
}
