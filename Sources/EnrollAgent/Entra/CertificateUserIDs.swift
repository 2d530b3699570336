import Crypto
import SCEPClient
import SwiftASN1
import X509

/// Every `certificateUserIds` value Microsoft Entra accepts for one certificate, in the
/// exact forms of Microsoft's documentation ("Supported patterns for certificate user
/// IDs"; "Test the username binding policy" for the issuer and serial number). Pure:
/// the certificate in, the values out.
///
/// A mapping whose field the certificate does not carry (no UPN, no e-mail SAN, no
/// subject key identifier extension, an empty subject) gives no value: Entra skips a
/// binding whose field "isn't on the presented certificate", so there is nothing to match.
struct CertificateUserIDs: Sendable {
    /// In the order of Microsoft's table: PN, RFC822, I+SR, SKI, SHA1-PUKEY, S, I+S.
    let values: [CertificateUserID]

    init(certificate: Certificate) {
        let issuer = EntraDistinguishedName.format(certificate.issuer)
        let subject = EntraDistinguishedName.format(certificate.subject)
        var values: [CertificateUserID] = []
        func add(_ mapping: CertificateUserID.Mapping, _ value: String) {
            values.append(CertificateUserID(mapping: mapping, value: value))
        }
        let names = Self.subjectAlternativeNames(of: certificate)
        for upn in names.principalNames { add(.principalName, "X509:<PN>" + upn) }
        for email in names.rfc822Names { add(.rfc822Name, "X509:<RFC822>" + email) }
        add(.issuerAndSerialNumber, "X509:<I>" + issuer + "<SR>" + Self.serialNumber(certificate.serialNumber.bytes))
        if let ski = Self.subjectKeyIdentifier(of: certificate) { add(.subjectKeyIdentifier, "X509:<SKI>" + ski) }
        add(.sha1PublicKey, "X509:<SHA1-PUKEY>" + Self.sha1PublicKey(certificate.publicKey))
        if !subject.isEmpty {
            add(.subject, "X509:<S>" + subject)
            add(.issuerAndSubject, "X509:<I>" + issuer + "<S>" + subject)
        }
        self.values = values
    }

    /// The IssuerAndSerialNumber value: high affinity, and present on every certificate,
    /// so the one value a fleet's tooling can rely on (`ENROLL_AGENT_CERTIFICATE_USER_ID`).
    var issuerAndSerialNumber: CertificateUserID {
        values.first { $0.mapping == .issuerAndSerialNumber }!
    }

    var highAffinity: [CertificateUserID] { values.filter { $0.affinity == .high } }

    // MARK: The fields, each as Microsoft writes it

    /// The serial as `certutil -dump` lists its bytes: the certificate's serial bytes in
    /// reverse order, lowercase hex, no separators. Microsoft's example: serial
    /// `48efa06ba8127299499b069f133441b2` → `b24134139f069b49997212a86ba0ef48`. (Windows
    /// keeps serials little-endian; Microsoft's own PowerShell helper un-reverses them and
    /// so writes the serial in certificate order, which this follows the documentation against.)
    static func serialNumber<Bytes: Collection>(_ bigEndian: Bytes) -> String where Bytes.Element == UInt8 {
        Hex.encode(bigEndian.reversed())
    }

    /// The subject key identifier extension's key identifier, lowercase hex
    /// (`X509:<SKI>eec6b88788d2770a01e01775ce71f1125cd6ad0f` in Microsoft's Graph example).
    /// None without the extension: the SKI binding matches the extension's value, and
    /// an identifier computed here could differ from the one a CA would have written.
    static func subjectKeyIdentifier(of certificate: Certificate) -> String? {
        guard let extensionValue = try? certificate.extensions.subjectKeyIdentifier else { return nil }
        return Hex.encode(extensionValue.keyIdentifier)
    }

    /// "SHA1 hash of public key" ([MS-PKCA] 3.1.5.2.1.3): SHA-1 over the subjectPublicKey
    /// BIT STRING's contents (the key itself, as RFC 5280 §4.2.1.2 method 1 hashes it), in
    /// lowercase hex. Not the certificate's SHA-1 thumbprint, which some tools write here.
    static func sha1PublicKey(_ publicKey: Certificate.PublicKey) -> String {
        Hex.encode(Insecure.SHA1.hash(data: Array(publicKey.subjectPublicKeyInfoBytes)))
    }

    /// The UPN otherName (1.3.6.1.4.1.311.20.2.3, a UTF8String) and RFC 822 SANs, in
    /// certificate order.
    static func subjectAlternativeNames(of certificate: Certificate) -> (principalNames: [String], rfc822Names: [String]) {
        guard let names = try? certificate.extensions.subjectAlternativeNames else { return ([], []) }
        var principalNames: [String] = []
        var rfc822Names: [String] = []
        for name in names {
            switch name {
            case .otherName(let other) where other.typeID == Self.userPrincipalName:
                if let value = other.value, let upn = try? ASN1UTF8String(asn1Any: value) { principalNames.append(String(upn)) }
            case .rfc822Name(let email):
                rfc822Names.append(email)
            default:
                continue
            }
        }
        return (principalNames, rfc822Names)
    }

    static let userPrincipalName: ASN1ObjectIdentifier = [1, 3, 6, 1, 4, 1, 311, 20, 2, 3]
}
