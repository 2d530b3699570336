/// One value for a Microsoft Entra user's `certificateUserIds` attribute: the text Entra
/// compares with the certificate a user signs in with, and the binding that reads it.
///
/// Microsoft Learn, "Mapping to the certificateUserIds attribute in Microsoft Entra ID"
/// (supported patterns; the `X509:<Mapping>` prefixes are case-sensitive) and
/// "Microsoft Entra certificate-based authentication technical deep dive" (the affinity
/// of each mapping).
struct CertificateUserID: Hashable, Sendable, Encodable {
    /// The certificate mapping field, named as the username binding policy names it
    /// (Microsoft Graph `x509CertificateField`).
    enum Mapping: String, CaseIterable, Sendable, Encodable {
        /// `X509:<PN>`: the UPN in a SAN otherName (1.3.6.1.4.1.311.20.2.3).
        case principalName = "PrincipalName"
        /// `X509:<RFC822>`: an RFC 822 name (e-mail) SAN.
        case rfc822Name = "RFC822Name"
        /// `X509:<I>…<SR>…`: issuer DN and serial number.
        case issuerAndSerialNumber = "IssuerAndSerialNumber"
        /// `X509:<SKI>`: the subject key identifier extension.
        case subjectKeyIdentifier = "SubjectKeyIdentifier"
        /// `X509:<SHA1-PUKEY>`: the SHA-1 hash of the public key.
        case sha1PublicKey = "SHA1PublicKey"
        /// `X509:<S>`: the subject DN.
        case subject = "Subject"
        /// `X509:<I>…<S>…`: issuer and subject DN.
        case issuerAndSubject = "IssuerAndSubject"

        /// Entra's classification: identifiers that cannot be reused by another
        /// certificate (key identifiers, issuer + serial) are high affinity; names and
        /// e-mail addresses, which a second certificate can carry too, are low affinity.
        var affinity: Affinity {
            switch self {
            case .issuerAndSerialNumber, .subjectKeyIdentifier, .sha1PublicKey: return .high
            case .principalName, .rfc822Name, .subject, .issuerAndSubject: return .low
            }
        }
    }

    /// What a tenant's "required affinity binding" accepts: with `high`, Entra drops
    /// every low-affinity binding before matching.
    enum Affinity: String, Sendable, Encodable {
        case high, low
    }

    let mapping: Mapping
    /// The whole value, prefix included: `X509:<SKI>3f9a…`.
    let value: String

    var affinity: Affinity { mapping.affinity }

    private enum CodingKeys: String, CodingKey { case value, affinity, mapping }

    func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(value, forKey: .value)
        try container.encode(affinity, forKey: .affinity)
        try container.encode(mapping, forKey: .mapping)
    }
}
