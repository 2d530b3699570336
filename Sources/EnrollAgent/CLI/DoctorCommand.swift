import ArgumentParser
import CertStore
import Foundation
import SCEPClient

struct DoctorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Pre-flight what Microsoft Entra certificate-based authentication requires of the issuing CA, for each live certificate.",
        discussion: "Fetches the CRL named in the live certificate's CRL distribution point (network; changes nothing) and prints one line per rule. Exit codes: 0 every rule passes; 1 a rule fails; 78 configuration error.")

    @OptionGroup var options: CommonOptions

    func run() async throws {
        var failed = false
        try await runReportingErrors {
            let (config, profiles) = try options.loadProfiles()
            for profile in profiles {
                print("profile \(profile.name):")
                for finding in await Self.findings(profile: profile, stateDirectory: config.stateDirectory) {
                    print("  " + finding.line)
                    if finding.verdict == .fail { failed = true }
                }
            }
        }
        if failed { throw ExitCode(1) }
    }

    static func findings(profile: ProfileConfig, stateDirectory: String, environment: AgentEnvironment = AgentEnvironment()) async -> [PreflightFinding] {
        // Read-only: the store is opened for reading, no lock, no state written.
        let store = ProfileStore(readingFrom: stateDirectory + "/" + profile.name)
        let live: LiveCertificate
        do {
            guard let found = try LiveCertificate.load(from: store) else {
                return [PreflightFinding(rule: "a certificate must be installed", verdict: .fail, detail: "none in \(store.directory); run `enroll-agent enroll` first")]
            }
            live = found
        } catch {
            return [PreflightFinding(rule: "a certificate must be installed", verdict: .fail, detail: "\(error)")]
        }
        let pin: PinnedCA
        do {
            let pemText = try profile.caPin.file.map(PinFile.read)
            pin = try PinnedCA(pemText: pemText, fingerprints: profile.caPin.sha256Fingerprints, raFingerprints: profile.caPin.raSHA256Fingerprints)
        } catch {
            return [PreflightFinding(rule: "the CA pin must be readable", verdict: .fail, detail: AgentError.wrap(error, profile: profile.name).message)]
        }
        // The profile's transport (CA bundle, proxy), with Entra's limits.
        var options: CurlTransport.Options
        do {
            options = try CurlTransport.Options(profile: profile)
        } catch {
            return [PreflightFinding(rule: "the proxy credentials must be readable", verdict: .fail, detail: AgentError.wrap(error, profile: profile.name).message)]
        }
        options.totalTimeout = EntraCBARule.maximumSeconds
        options.connectTimeout = min(EntraCBARule.maximumSeconds, profile.httpTimeout)
        options.maxResponseBytes = EntraCBARule.maximumBytes
        let preflight = EntraCRLPreflight(transport: CurlTransport(options: options),
                                          pin: pin, now: environment.clock.now())
        return await preflight.run(certificate: live.certificate, chain: live.chain)
    }
}
