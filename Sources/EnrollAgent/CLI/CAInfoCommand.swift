import ArgumentParser
import CertStore
import Foundation
import SCEPClient
import SwiftASN1
import X509

struct CAInfoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ca-info",
        abstract: "Show a SCEP server's capabilities and CA/RA certificates with their SHA-256 fingerprints and roles, to write the pins.",
        discussion: """
            With --profile, the profile's URL and pins are used and each certificate's role says whether the agent \
            would trust it and why. Without pins, roles are shown as they would be with the server's CA pinned: \
            compare the fingerprints with ones obtained out of band before pinning anything.
            """)

    @Argument(help: "The SCEP URL, e.g. https://scep.example.com/scep (default with --profile: its scep_url).")
    var url: String?

    @Option(name: .long, help: "Configuration file (with --profile).")
    var config: String = AgentConfig.defaultPath

    @Option(name: .long, help: "Use this profile's scep_url, pins and tls_ca_file.")
    var profile: String?

    @Option(name: .customLong("ca-pin-sha256"), help: "A CA fingerprint to judge the answer against (repeatable).")
    var caPins: [String] = []

    @Option(name: .customLong("ra-pin-sha256"), help: "An RA fingerprint to treat as pinned (repeatable).")
    var raPins: [String] = []

    @Option(name: .long, help: "PEM bundle to verify the server's HTTPS certificate (default: the system store).")
    var tlsCAFile: String?

    func validate() throws {
        if url == nil && profile == nil {
            throw ValidationError("give the SCEP URL, or --profile NAME to use a profile's scep_url")
        }
        if let url {
            guard let parsed = URL(string: url), let scheme = parsed.scheme?.lowercased(), scheme == "http" || scheme == "https", parsed.host != nil else {
                throw ValidationError("URL \"\(url)\": expected an http:// or https:// SCEP URL")
            }
        }
        for pin in caPins + raPins {
            do { _ = try CAPinFingerprint.normalize(pin) } catch let error as InvalidConfigValue {
                throw ValidationError("--ca-pin-sha256 / --ra-pin-sha256 \"\(pin)\": \(error.message)")
            }
        }
    }

    func run() async throws {
        try await runReportingErrors {
            let target = try resolveTarget()
            var options = CurlTransport.Options()
            options.caBundlePath = target.tlsCAFile
            let service = SCEPService(url: target.url, transport: CurlTransport(options: options))
            do {
                let capabilities = try await service.capabilities()
                let certificates = try await service.caCertificates()
                let hypothetical = target.pin == nil
                let pin = try target.pin ?? PinnedCA(pinnedCertificates: [], fingerprints: certificates.filter(Self.isCA).map(PinnedCA.fingerprint(of:)),
                                                     raFingerprints: raPins)
                let classified = try? await CACertificates.classify(certificates, pin: pin, window: ValidityWindow(now: Date()))
                print("SCEP server \(target.url)")
                print("  capabilities: \(capabilities.advertised.isEmpty ? "(none)" : capabilities.advertised.joined(separator: " "))")
                if hypothetical { print("  (no pin given: roles as they would be with the server's CA certificate pinned)") }
                for (index, certificate) in certificates.enumerated() {
                    print("  certificate \(index + 1):")
                    print("    subject:     \(ServerText.escaped("\(certificate.subject)"))")
                    print("    issuer:      \(ServerText.escaped("\(certificate.issuer)"))")
                    print("    usage:       \(Self.usage(of: certificate))")
                    print("    valid:       \(Self.format(certificate.notValidBefore)) → \(Self.format(certificate.notValidAfter))")
                    print("    sha256:      \(PinnedCA.fingerprint(of: certificate))")
                    let role = classified?[index].explanation ?? "not judged: no certificate of the answer matches the pin"
                    print("    role:        \(role)")
                }
                if let ca = certificates.first(where: Self.isCA), target.pin == nil {
                    print("\nTo pin the issuing CA (after checking the fingerprint out of band):\n  ca_pin_sha256 = \"\(PinnedCA.fingerprint(of: ca))\"")
                }
                if capabilities.contains(.getNextCACert) {
                    await Self.printNextCA(service: service, certificates: certificates, pin: pin)
                }
                if let store = target.storeDirectory {
                    let announced = NextCAInfo.read(from: ProfileStore(readingFrom: store)) ?? []
                    print("\nNext CA on file for profile \(profile ?? ""):")
                    if announced.isEmpty { print("  none announced") }
                    for next in announced { print("  \(next.text)") }
                }
                let untrustedRAs = (classified ?? []).filter { $0.role == .untrustedRA }
                if !untrustedRAs.isEmpty {
                    print("\nThe RA certificates above carry no RA purpose. If they are the server's real RA (check out of band):\n  \(CACertificates.raPinLine(untrustedRAs))")
                }
            } catch {
                throw AgentError.wrap(error, profile: "ca-info")
            }
        }
    }

    /// The URL, pins and TLS bundle: from the profile, overridden by the options.
    private func resolveTarget() throws -> (url: String, pin: PinnedCA?, tlsCAFile: String?, storeDirectory: String?) {
        guard let name = profile else {
            let pin = caPins.isEmpty ? nil : try PinnedCA(pinnedCertificates: [], fingerprints: caPins, raFingerprints: raPins)
            return (url ?? "", pin, tlsCAFile, nil)
        }
        let loaded = try CommonOptions.load(config: config)
        guard let selected = loaded.profile(named: name) else {
            throw AgentError(.usage, "--profile \(name): no such profile in \(config) (profiles: \(loaded.profiles.map(\.name).joined(separator: ", ")))")
        }
        let pemText = try selected.caPin.file.map(PinFile.read)
        let store = loaded.stateDirectory + "/" + name
        // Announced next CAs on file count as the agent counts them (trusted once presented).
        let candidates = (try? ProfileStore(readingFrom: store).loadNextCA())??.candidates
            .compactMap { try? Certificate(pemEncoded: $0.certificatePEM) } ?? []
        let pin = try PinnedCA(pemText: pemText, fingerprints: selected.caPin.sha256Fingerprints + caPins,
                               raFingerprints: selected.caPin.raSHA256Fingerprints + raPins).addingCandidates(candidates)
        return (url ?? selected.scepURL.absoluteString, pin, tlsCAFile ?? selected.tlsCAFile, store)
    }

    /// GetNextCACert, verified as the agent verifies it (signed by a CA or RA the pin vouches for).
    private static func printNextCA(service: SCEPService, certificates: [Certificate], pin: PinnedCA) async {
        print("\nGetNextCACert (the server lists it):")
        do {
            let server = try await CACertificates.validated(certificates, pin: pin, window: ValidityWindow(now: Date()))
            let announcement = try NextCAAnnouncement.verified(try await service.nextCACertificate(), signers: server.replySigners,
                                                               current: server.chain)
            print("  signed by:   \(ServerText.escaped("\(announcement.signer.subject)")) (sha256 \(PinnedCA.fingerprint(of: announcement.signer)))")
            if announcement.nextCAs.isEmpty { print("  next CA:     none announced") }
            for next in announcement.nextCAs {
                print("  next CA:     \(ServerText.escaped("\(next.subject)"))")
                print("    valid:     \(format(next.notValidBefore)) → \(format(next.notValidAfter))")
                print("    sha256:    \(PinnedCA.fingerprint(of: next))")
            }
        } catch {
            print("  not verified, not used: \(error)")
        }
    }

    static func isCA(_ certificate: Certificate) -> Bool {
        if case .isCertificateAuthority = (try? certificate.extensions.basicConstraints) ?? .notCertificateAuthority { return true }
        return false
    }

    private static func usage(of certificate: Certificate) -> String {
        var parts = [isCA(certificate) ? "CA" : "end entity"]
        if let usage = try? certificate.extensions.keyUsage {
            var bits: [String] = []
            if usage.digitalSignature { bits.append("digitalSignature") }
            if usage.keyEncipherment { bits.append("keyEncipherment") }
            if usage.keyCertSign { bits.append("keyCertSign") }
            parts.append("keyUsage " + (bits.isEmpty ? "other" : bits.joined(separator: ", ")))
        }
        if let ekus = try? certificate.extensions.extendedKeyUsage {
            parts.append("EKU " + ekus.map { "\(ASN1ObjectIdentifier($0))" }.joined(separator: ", "))
        }
        return parts.joined(separator: "; ")
    }

    private static func format(_ date: Date) -> String { date.formatted(Date.ISO8601FormatStyle()) }
}
