import Foundation
import SwiftASN1
import KeyInterface
import X509

/// What the device asks the CA to certify, already rendered from the profile's
/// templates, in swift-certificates' types (the configuration resolves names and dotted
/// OIDs once, when it is read). The challenge is a secret: it only ever goes into the CSR.
public struct CertificateRequestSpec: Sendable {
    public var subject: DistinguishedName
    public var dnsNames: [String] = []
    public var emailAddresses: [String] = []
    public var uris: [String] = []
    /// Microsoft UPN otherName values (1.3.6.1.4.1.311.20.2.3), bound by Entra CBA and Okta.
    public var userPrincipalNames: [String] = []
    /// The keyUsage extension asked for, exactly; nil asks for none. It says what relying
    /// parties may use the certificate for; the SCEP exchange does not depend on it (the
    /// reply is encrypted to the signer certificate, which always allows key transport).
    public var keyUsage: KeyUsage? = KeyUsage(digitalSignature: true, keyEncipherment: true)
    /// In this order; empty asks for no extendedKeyUsage extension.
    public var extendedKeyUsage: [ExtendedKeyUsage.Usage] = [.clientAuth]
    public var certificatePolicies: [ASN1ObjectIdentifier] = []

    public init(subject: DistinguishedName) { self.subject = subject }

    /// The extensions requested through the PKCS#10 extensionRequest attribute.
    func extensions() throws -> Certificate.Extensions {
        var extensions = Certificate.Extensions()
        var names: [GeneralName] = []
        names += dnsNames.map { .dnsName($0) }
        names += emailAddresses.map { .rfc822Name($0) }
        names += uris.map { .uniformResourceIdentifier($0) }
        for upn in userPrincipalNames {
            let value = try ASN1Any(erasing: ASN1UTF8String(upn))
            names.append(.otherName(.init(typeID: OID.userPrincipalName, value: value)))
        }
        if !names.isEmpty {
            try extensions.append(Certificate.Extension(SubjectAlternativeNames(names), critical: false))
        }
        if let keyUsage {
            try extensions.append(Certificate.Extension(keyUsage, critical: false))
        }
        if !extendedKeyUsage.isEmpty {
            let usages: ExtendedKeyUsage
            do { usages = try ExtendedKeyUsage(extendedKeyUsage) } catch {
                throw SCEPError(.invalidRequest, "the extended key usages \(extendedKeyUsage) repeat one: \(error)")
            }
            try extensions.append(Certificate.Extension(usages, critical: false))
        }
        if !certificatePolicies.isEmpty {
            // certificatePolicies (RFC 5280 §4.2.1.4): SEQUENCE OF PolicyInformation { policyIdentifier }.
            var serializer = DER.Serializer()
            try serializer.appendConstructedNode(identifier: .sequence) { coder in
                for oid in certificatePolicies {
                    try coder.appendConstructedNode(identifier: .sequence) { try $0.serialize(oid) }
                }
            }
            try extensions.append(Certificate.Extension(oid: [2, 5, 29, 32], critical: false, value: serializer.serializedBytes[...]))
        }
        return extensions
    }
}

extension DistinguishedName {
    /// A subject from attributes in encoding order (the `Name` SEQUENCE's, RFC 4514's
    /// reversed), each value in the string type its attribute requires
    /// (``SubjectValueEncoding/required(forOID:)``).
    public init(subjectAttributes attributes: [(type: ASN1ObjectIdentifier, value: String)]) throws {
        var rdns: [RelativeDistinguishedName] = []
        for (type, value) in attributes {
            let dotted = type.description
            let attribute: RelativeDistinguishedName.Attribute
            switch SubjectValueEncoding.required(forOID: dotted) {
            case .printableString:
                do { attribute = try .init(type: type, printableString: value) } catch {
                    throw SCEPError(.invalidRequest, "subject attribute \(dotted) needs a PrintableString value, got \"\(value)\"")
                }
            case .ia5String:
                do { attribute = try .init(type: type, ia5String: value) } catch {
                    throw SCEPError(.invalidRequest, "subject attribute \(dotted) needs an ASCII value, got \"\(value)\"")
                }
            case .utf8String:
                attribute = .init(type: type, utf8String: value)
            }
            rdns.append(RelativeDistinguishedName(attribute))
        }
        self.init(rdns)
    }
}

/// The PKCS#10 request and the self-signed certificate that signs the SCEP
/// message for a new key (RFC 8894 §2.3).
///
/// The CSR is always signed by the new key (proof of possession). The self-signed
/// certificate is the new key's too, unless that key cannot receive the reply (an EC
/// key: SCEP replies use RSA key transport): then it is `envelopeSigner`'s, a temporary
/// RSA key the caller keeps for this one transaction, as RFC 8894 §2.3 allows.
struct PreparedRequest {
    let csrDER: [UInt8]
    let signerCertificate: Certificate
    let subject: DistinguishedName
    /// What the extensionRequest asks for.
    let extensions: Certificate.Extensions

    static func make(spec: CertificateRequestSpec, challenge: String?, signer: EnrollmentKeySigner,
                     envelopeSigner: EnrollmentKeySigner? = nil, now: Date) async throws -> PreparedRequest {
        let subject = spec.subject
        var attributes = CertificateSigningRequest.Attributes()
        if let challenge {
            attributes.insert(try challengePasswordAttribute(challenge))
        }
        let extensions = try spec.extensions()
        attributes.insert(try CertificateSigningRequest.Attribute(ExtensionRequest(extensions: extensions)))
        let privateKey = Certificate.PrivateKey(signer)
        let csr = try CertificateSigningRequest(
            version: .v1, subject: subject, privateKey: privateKey, attributes: attributes,
            signatureAlgorithm: signer.defaultSignatureAlgorithm)
        var serializer = DER.Serializer()
        try serializer.serialize(csr)

        let signerCertificate = try await makeSignerCertificate(subject: subject, signer: envelopeSigner ?? signer, now: now)
        return PreparedRequest(csrDER: serializer.serializedBytes, signerCertificate: signerCertificate, subject: subject,
                               extensions: extensions)
    }

    /// challengePassword (RFC 2985 §5.4.1): DirectoryString; PrintableString when it fits, else UTF8String.
    static func challengePasswordAttribute(_ challenge: String) throws -> CertificateSigningRequest.Attribute {
        let value: ASN1Any
        if let printable = try? ASN1PrintableString(challenge) {
            value = try ASN1Any(erasing: printable)
        } else {
            value = try ASN1Any(erasing: ASN1UTF8String(challenge))
        }
        return CertificateSigningRequest.Attribute(oid: OID.challengePassword, values: [value])
    }

    /// A short-lived self-signed certificate for the new key, with the CSR's
    /// subject, usable for signing and key transport (the CertRep is encrypted to it,
    /// RFC 8894 §3.3.2) whatever key usage the request asks for: it is never installed.
    static func makeSignerCertificate(subject: DistinguishedName, signer: EnrollmentKeySigner, now: Date) async throws -> Certificate {
        var extensions = Certificate.Extensions()
        try extensions.append(Certificate.Extension(KeyUsage(digitalSignature: true, keyEncipherment: true), critical: false))
        return try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(),
            publicKey: signer.publicKey,
            notValidBefore: now.addingTimeInterval(-300), notValidAfter: now.addingTimeInterval(30 * 86_400),
            issuer: subject, subject: subject,
            signatureAlgorithm: signer.defaultSignatureAlgorithm, extensions: extensions,
            issuerPrivateKey: Certificate.PrivateKey(signer))
    }
}

/// The ASN.1 string type a subject attribute value is encoded with.
///
/// RFC 5280 §4.1.2.4 asks for UTF8String for DirectoryString attributes; a few attribute types
/// are not DirectoryStrings and allow one type only (X.520, RFC 5280 Appendix A, PKCS #9).
public enum SubjectValueEncoding: String, Sendable, CaseIterable {
    case utf8String = "UTF8String"
    case printableString = "PrintableString"
    case ia5String = "IA5String"

    /// Attribute types whose syntax is PrintableString: countryName (2.5.4.6),
    /// serialNumber (2.5.4.5), dnQualifier (2.5.4.46), telephoneNumber (2.5.4.20).
    static let printableOIDs: Set<String> = ["2.5.4.6", "2.5.4.5", "2.5.4.46", "2.5.4.20"]
    /// Attribute types whose syntax is IA5String: emailAddress (PKCS #9, 1.2.840.113549.1.9.1),
    /// domainComponent (RFC 4519, 0.9.2342.19200300.100.1.25), and unstructuredName
    /// (PKCS #9 1.2.840.113549.1.9.2, a PKCS9String for which IA5String is what CAs expect).
    static let ia5OIDs: Set<String> = ["1.2.840.113549.1.9.1", "0.9.2342.19200300.100.1.25", "1.2.840.113549.1.9.2"]

    /// The encoding the attribute type `oid` (dotted) requires; UTF8String for any other type.
    public static func required(forOID oid: String) -> SubjectValueEncoding {
        if printableOIDs.contains(oid) { return .printableString }
        if ia5OIDs.contains(oid) { return .ia5String }
        return .utf8String
    }

    /// Whether `value` can be written in this string type.
    public func canEncode(_ value: String) -> Bool {
        switch self {
        case .utf8String: return true
        case .printableString: return (try? ASN1PrintableString(value)) != nil
        case .ia5String: return (try? ASN1IA5String(value)) != nil
        }
    }
}
