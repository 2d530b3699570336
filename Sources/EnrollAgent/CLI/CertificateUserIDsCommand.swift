import ArgumentParser
import CertStore
import Foundation

/// `certificate-user-ids`: what to put in a Microsoft Entra user's `certificateUserIds`
/// so that the profile's live certificate signs that user in (Entra certificate-based
/// authentication). Reads the store only; contacts nothing.
struct CertificateUserIDsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "certificate-user-ids",
        abstract: "Print the Microsoft Entra certificateUserIds values of each profile's live certificate.",
        discussion: """
            Each value is marked high or low affinity as Entra classifies it: IssuerAndSerialNumber, \
            SubjectKeyIdentifier and SHA1PublicKey are high; PrincipalName, RFC822Name, Subject and \
            IssuerAndSubject are low. --json adds the Microsoft Graph request (PATCH /users/{id}) that sets \
            them; it replaces the user's whole list. Exit 66 when a selected profile has no live certificate.
            """)

    @OptionGroup var options: CommonOptions

    @Flag(name: .long, help: "Print one JSON document, with the Microsoft Graph request body.")
    var json = false

    /// One profile's answer; Encodable for `--json`.
    struct ProfileValues: Encodable {
        struct CertificateSummary: Encodable {
            var subject: String
            var issuer: String
            var serial: String
            var notAfter: Date
            var sha256Fingerprint: String
        }

        var profile: String
        var certificate: CertificateSummary?
        var certificateUserIds: [CertificateUserID]
        var graphRequest: GraphCertificateUserIDsRequest?
        /// Why there are no values (no live certificate, unreadable store).
        var error: String?
    }

    func run() async throws {
        try await runReportingErrors {
            let (config, profiles) = try options.loadProfiles()
            let answers = profiles.map { Self.values(for: $0, stateDirectory: config.stateDirectory) }
            if json {
                struct Document: Encodable { let profiles: [ProfileValues] }
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                encoder.dateEncodingStrategy = .iso8601
                print(String(decoding: try encoder.encode(Document(profiles: answers)), as: UTF8.self))
            } else {
                let shown = answers.filter { $0.certificate != nil }
                if !shown.isEmpty { print(shown.map(Self.text).joined(separator: "\n\n")) }
            }
            let missing = answers.filter { $0.certificate == nil }
            guard let first = missing.first else { return }
            if missing.count == 1 { throw AgentError(.noCertificate, first.error ?? "no live certificate", profile: first.profile) }
            let reasons = missing.map { "profile \"\($0.profile)\": \($0.error ?? "no live certificate")" }
            throw AgentError(.noCertificate, "\(missing.count) of \(answers.count) profiles have no certificate user IDs: " + reasons.joined(separator: "; "))
        }
    }

    static func values(for profile: ProfileConfig, stateDirectory: String) -> ProfileValues {
        var answer = ProfileValues(profile: profile.name, certificateUserIds: [])
        let directory = stateDirectory + "/" + profile.name
        do {
            // Read-only, like status: an administrator runs this as root on the service's store.
            guard FileManager.default.fileExists(atPath: directory),
                  let live = try LiveCertificate.load(from: ProfileStore(readingFrom: directory)) else {
                answer.error = "no live certificate in \(directory)/live; run `enroll-agent enroll --profile \(profile.name)` first"
                return answer
            }
            let certificate = live.certificate
            let ids = CertificateUserIDs(certificate: certificate)
            answer.certificate = .init(subject: "\(certificate.subject)", issuer: "\(certificate.issuer)",
                                       serial: CertificateText.serial(certificate), notAfter: certificate.notValidAfter,
                                       sha256Fingerprint: live.sha256Fingerprint)
            answer.certificateUserIds = ids.values
            answer.graphRequest = GraphCertificateUserIDsRequest(values: ids.values)
        } catch {
            answer.error = "cannot read the live certificate in \(directory): \(error)"
        }
        return answer
    }

    /// `profile device: CN=… (serial …, valid until …)` and one line per value.
    static func text(_ answer: ProfileValues) -> String {
        guard let certificate = answer.certificate else { return "" }
        var lines = ["profile \(answer.profile): \(certificate.subject) (serial \(certificate.serial), valid until \(ProfileStatus.format(certificate.notAfter)))"]
        let width = CertificateUserID.Mapping.allCases.map(\.rawValue.count).max() ?? 0
        for id in answer.certificateUserIds {
            lines.append("  " + id.affinity.rawValue.padding(toLength: 6, withPad: " ", startingAt: 0)
                         + id.mapping.rawValue.padding(toLength: width + 2, withPad: " ", startingAt: 0) + id.value)
        }
        return lines.joined(separator: "\n")
    }
}
