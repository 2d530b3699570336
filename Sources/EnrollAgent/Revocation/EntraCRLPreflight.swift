import Foundation
import SCEPClient
import X509

/// One rule of the pre-flight, and what the live certificate's CRL made of it.
struct PreflightFinding: Equatable, Encodable {
    enum Verdict: String, Encodable {
        case pass = "ok"
        case fail = "FAIL"
        /// Could not be judged because an earlier rule failed.
        case skipped = "skipped"
    }

    var rule: String
    var verdict: Verdict
    var detail: String

    var line: String { "[\(verdict.rawValue)] \(rule): \(detail)" }
}

/// What Microsoft Entra certificate-based authentication requires of the issuing CA's
/// CRL, checked for the live certificate (`enroll-agent doctor`).
///
/// Sources (Microsoft Learn, "Frequently asked questions about Microsoft Entra
/// certificate-based authentication", learn.microsoft.com/entra/identity/authentication/
/// certificate-based-authentication-faq): "Can I use a non-HTTP URL for a CDP? No. CDP
/// supports only HTTP URLs"; "only one CRL distribution point (CDP) is supported per
/// certificate authority"; and its entry "Is there a limit for CRL size?" (the limits used
/// here: 20 MB, downloaded within 10 seconds, as issue 10 states them). The CRL concept
/// page (concept-certificate-based-authentication-certificate-revocation-list) adds that
/// when Entra ID cannot fetch the CRL, sign-in fails, and that a CRL not signed by the CA
/// fails with AADSTS2205015.
enum EntraCBARule {
    static let distributionPoint = "Entra CBA: the certificate must name a CRL distribution point"
    static let http = "Entra CBA: the CRL distribution point must be an HTTP URL"
    static let reachable = "Entra CBA: the CRL must be reachable"
    static let size = "Entra CBA: the CRL must be at most 20 MB"
    static let downloadTime = "Entra CBA: the CRL must be downloadable within 10 seconds"
    static let signature = "Entra CBA: the CRL must be signed by the issuing CA (verified against the pin)"
    static let current = "the CRL must be current (thisUpdate ≤ now ≤ nextUpdate)"
    static let notRevoked = "the live certificate must not be revoked"

    static let maximumBytes = RevocationChecker.maximumCRLBytes
    static let maximumSeconds: Double = 10
}

/// Runs the rules against the live certificate's first HTTP distribution point, with a
/// transport whose total timeout is Entra's 10 seconds. Reads only; writes nothing.
struct EntraCRLPreflight {
    let transport: any HTTPTransport
    let pin: PinnedCA
    let now: Date

    func run(certificate: Certificate, chain: [Certificate]) async -> [PreflightFinding] {
        typealias R = EntraCBARule
        var findings: [PreflightFinding] = []
        func add(_ rule: String, _ verdict: PreflightFinding.Verdict, _ detail: String) {
            findings.append(PreflightFinding(rule: rule, verdict: verdict, detail: detail))
        }
        func skipRest(from rules: [String], because reason: String) -> [PreflightFinding] {
            for rule in rules { add(rule, .skipped, reason) }
            return findings
        }
        let fetchRules = [R.reachable, R.size, R.downloadTime, R.signature, R.current, R.notRevoked]

        let locations: [CRLLocation]
        do {
            guard let found = try RevocationChecker.locations(of: certificate), !found.isEmpty else {
                add(R.distributionPoint, .fail, "the certificate has no CRL distribution point extension; ask the CA operator to add one")
                return skipRest(from: [R.http] + fetchRules, because: "no distribution point")
            }
            locations = found
        } catch {
            add(R.distributionPoint, .fail, RevocationChecker.describe(error))
            return skipRest(from: [R.http] + fetchRules, because: "no readable distribution point")
        }
        add(R.distributionPoint, .pass, locations.map(\.uri).joined(separator: ", "))

        let others = locations.compactMap { location in location.notFetchedReason.map { "\(location.uri) (\($0))" } }
        guard case .http(let url)? = locations.first(where: { if case .http = $0 { return true } else { return false } }) else {
            add(R.http, .fail, "no HTTP URL among them: " + others.joined(separator: "; "))
            return skipRest(from: fetchRules, because: "no HTTP distribution point")
        }
        add(R.http, .pass, url + (others.isEmpty ? "" : "; not used by Entra: " + others.joined(separator: "; ")))

        let clock = ContinuousClock()
        let started = clock.now
        let crl: CertificateRevocationList
        do {
            crl = try await RevocationChecker(transport: transport, pin: pin).fetch(url)
        } catch {
            let seconds = Self.seconds(clock.now - started)
            let cause = RevocationChecker.describe(error)
            switch Self.failure(of: error, after: seconds) {
            case .tooLarge:
                add(R.reachable, .pass, "\(url) answered")
                add(R.size, .fail, cause)
                add(R.downloadTime, .skipped, "the download was stopped at the size limit after \(Self.format(seconds)) s")
                return skipRest(from: [R.signature, R.current, R.notRevoked], because: "the CRL is too large")
            case .tooSlow:
                add(R.reachable, .skipped, "no complete answer from \(url) within \(Self.format(R.maximumSeconds)) s (see the next rules)")
                add(R.size, .skipped, "not downloaded")
                add(R.downloadTime, .fail, "not downloaded within \(Self.format(R.maximumSeconds)) s: \(cause)")
                return skipRest(from: [R.signature, R.current, R.notRevoked], because: "the CRL was not downloaded")
            case .notACRL:
                add(R.reachable, .pass, "\(url) answered")
                add(R.size, .pass, "within the limit")
                add(R.downloadTime, .pass, "\(Self.format(seconds)) s")
                add(R.signature, .fail, cause)
                return skipRest(from: [R.current, R.notRevoked], because: "the CRL cannot be read")
            case .unreachable:
                add(R.reachable, .fail, cause)
                return skipRest(from: [R.size, R.downloadTime, R.signature, R.current, R.notRevoked], because: "the CRL was not downloaded")
            }
        }
        let seconds = Self.seconds(clock.now - started)
        add(R.reachable, .pass, "\(url) answered HTTP 200")
        add(R.size, .pass, "\(crl.der.count) bytes")
        add(R.downloadTime, seconds <= R.maximumSeconds ? .pass : .fail, "\(Self.format(seconds)) s")

        do {
            let issuer = try await CRLValidation.issuer(of: certificate, chain: chain, pin: pin, now: now)
            do {
                try CRLValidation.verifyIssuer(crl, issuer: issuer, for: certificate)
                add(R.signature, .pass, "issued and signed by \"\(issuer.subject)\"")
            } catch {
                add(R.signature, .fail, RevocationChecker.describe(error))
                add(R.current, .skipped, "the CRL does not verify")
                return skipRest(from: [R.notRevoked], because: "the CRL does not verify")
            }
            do {
                try CRLValidation.verifyCurrent(crl, now: now)
                add(R.current, .pass, "thisUpdate \(ProfileStatus.format(crl.thisUpdate)), nextUpdate \(crl.nextUpdate.map(ProfileStatus.format) ?? "none")")
            } catch {
                add(R.current, .fail, RevocationChecker.describe(error))
                return skipRest(from: [R.notRevoked], because: "the CRL is not current")
            }
        } catch {
            add(R.signature, .fail, "the live certificate's issuer is not on the pinned path: \(RevocationChecker.describe(error))")
            return skipRest(from: [R.current, R.notRevoked], because: "no pinned issuer")
        }
        do {
            if let entry = try CRLValidation.entry(for: certificate, in: crl) {
                add(R.notRevoked, .fail, "revoked at \(ProfileStatus.format(entry.revocationDate)), reason \(entry.reason?.name ?? "unspecified")")
            } else {
                add(R.notRevoked, .pass, "not listed (\(crl.revokedCount) certificates revoked)")
            }
        } catch {
            add(R.notRevoked, .fail, RevocationChecker.describe(error))
        }
        return findings
    }

    enum FetchFailure { case tooLarge, tooSlow, notACRL, unreachable }

    /// Which rule a failed download breaks: the transport reports the size limit as a
    /// malformed reply, a body that is no CRL is an unusable CRL, and a transfer cut off at
    /// the 10 s total timeout is libcurl's "Timeout was reached".
    static func failure(of error: Error, after seconds: Double) -> FetchFailure {
        guard let scep = error as? SCEPError else { return .unreachable }
        switch scep.code {
        case .malformedReply: return .tooLarge
        case .unusableCRL: return .notACRL
        case .transport, .unreachable:
            return seconds >= EntraCBARule.maximumSeconds - 0.05 || scep.message.contains("Timeout") ? .tooSlow : .unreachable
        default: return .unreachable
        }
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    static func format(_ seconds: Double) -> String { String(format: "%.2f", seconds) }
}
