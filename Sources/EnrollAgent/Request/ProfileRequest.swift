import Foundation
import SCEPClient
import X509

/// Turns a profile's templates into the concrete request, with the variables
/// known at enrollment time (built-ins, profile, endpoint).
enum ProfileRequest {
    static func spec(for profile: ProfileConfig, host: HostIdentity, endpointVariables: [String: String]) throws -> CertificateRequestSpec {
        let renderer = TemplateRenderer(host: host, profileVariables: profile.variables, endpointVariables: endpointVariables)
        do {
            let subject = try renderer.renderSubject(profile.subjectTemplate)
            var spec = CertificateRequestSpec(subject: try subject.distinguishedName())
            spec.userPrincipalNames = try renderer.render(profile.subjectAlternativeNames.upn)
            spec.dnsNames = try renderer.render(profile.subjectAlternativeNames.dns)
            spec.emailAddresses = try renderer.render(profile.subjectAlternativeNames.email)
            spec.uris = try renderer.render(profile.subjectAlternativeNames.uri)
            spec.keyUsage = profile.keyUsage
            spec.extendedKeyUsage = profile.extendedKeyUsage
            spec.certificatePolicies = profile.certificatePolicies
            return spec
        } catch {
            throw AgentError(.config, "cannot render the subject/SAN templates: \(error)")
        }
    }
}

extension ContentEncryption {
    var cipher: ContentCipher { self == .aes256 ? .aes256CBC : .aes128CBC }
}
