import ArgumentParser
import Foundation
import SCEPClient
import SwiftASN1
import X509

struct CAInfoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ca-info",
        abstract: "Show a SCEP server's capabilities and CA/RA certificates with their SHA-256 fingerprints, to write the pin.",
        discussion: "Nothing here is trusted yet: compare the fingerprint with one obtained out of band before pinning it.")

    @Argument(help: "The SCEP URL, e.g. https://scep.example.com/scep")
    var url: String

    @Option(name: .long, help: "PEM bundle to verify the server's HTTPS certificate (default: the system store).")
    var tlsCAFile: String?

    func validate() throws {
        guard let parsed = URL(string: url), let scheme = parsed.scheme?.lowercased(), scheme == "http" || scheme == "https", parsed.host != nil else {
            throw ValidationError("URL \"\(url)\": expected an http:// or https:// SCEP URL")
        }
    }

    func run() async throws {
        try await runReportingErrors {
            var options = CurlTransport.Options()
            options.caBundlePath = tlsCAFile
            let service = SCEPService(url: url, transport: CurlTransport(options: options))
            do {
                let capabilities = try await service.capabilities()
                let certificates = try await service.caCertificates()
                print("SCEP server \(url)")
                print("  capabilities: \(capabilities.advertised.isEmpty ? "(none)" : capabilities.advertised.joined(separator: " "))")
                for (index, certificate) in certificates.enumerated() {
                    print("  certificate \(index + 1):")
                    print("    subject:     \(certificate.subject)")
                    print("    issuer:      \(certificate.issuer)")
                    print("    role:        \(role(of: certificate))")
                    print("    valid until: \(certificate.notValidAfter)")
                    print("    sha256:      \(fingerprint(certificate))")
                }
                if let ca = certificates.first(where: isCA) {
                    print("\nTo pin the issuing CA (after checking the fingerprint out of band):\n  ca_pin_sha256 = \"\(fingerprint(ca))\"")
                }
            } catch {
                throw AgentError.wrap(error, profile: "ca-info")
            }
        }
    }

    private func isCA(_ certificate: Certificate) -> Bool {
        if case .isCertificateAuthority = (try? certificate.extensions.basicConstraints) ?? .notCertificateAuthority { return true }
        return false
    }

    private func role(of certificate: Certificate) -> String {
        var parts = [isCA(certificate) ? "CA" : "RA"]
        if let usage = try? certificate.extensions.keyUsage {
            var bits: [String] = []
            if usage.digitalSignature { bits.append("digitalSignature") }
            if usage.keyEncipherment { bits.append("keyEncipherment") }
            if usage.keyCertSign { bits.append("keyCertSign") }
            parts.append("keyUsage: " + (bits.isEmpty ? "other" : bits.joined(separator: ", ")))
        }
        return parts.joined(separator: ", ")
    }

    private func fingerprint(_ certificate: Certificate) -> String {
        var serializer = DER.Serializer()
        try? serializer.serialize(certificate)
        return (try? Fingerprint.sha256(serializer.serializedBytes)) ?? "?"
    }
}
