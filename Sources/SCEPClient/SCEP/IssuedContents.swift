import SwiftASN1
import X509

/// The requested extensions as kept with a pending transaction:
///
/// ```
/// Extensions ::= SEQUENCE SIZE (1..MAX) OF Extension   -- RFC 5280 §4.1
/// ```
///
/// (an empty SEQUENCE when nothing was requested). It holds no secret: the challenge
/// is an attribute of the PKCS#10, not an extension.
enum RequestedExtensions {
    static func encode(_ extensions: Certificate.Extensions) throws -> [UInt8] {
        var serializer = DER.Serializer()
        try serializer.appendConstructedNode(identifier: .sequence) { coder in
            for item in extensions { try coder.serialize(item) }
        }
        return serializer.serializedBytes
    }

    static func decode(_ bytes: [UInt8]) throws -> Certificate.Extensions {
        let node = try DER.parse(bytes)
        let items = try DER.sequence(of: Certificate.Extension.self, identifier: .sequence, rootNode: node)
        return try Certificate.Extensions(items)
    }
}

/// What the CA granted compared with what we asked for. CAs are allowed to change a
/// request (micromdm drops UPN SANs; step-ca adds serverAuth), and the certificate is
/// still ours and verified, but a relying party binding to a SAN or EKU will notice:
/// each difference becomes one warning naming it.
enum IssuedContents {
    static func differences(requested: Certificate.Extensions, issued: Certificate.Extensions) -> [String] {
        var differences: [String] = []
        let askedEKU = ekuNames(requested), gotEKU = ekuNames(issued)
        for name in askedEKU where !gotEKU.contains(name) {
            differences.append("the CA did not grant the extended key usage \(name) that was requested")
        }
        for name in gotEKU where !askedEKU.contains(name) {
            differences.append("the CA added the extended key usage \(name), which was not requested")
        }
        let askedSAN = sanNames(requested), gotSAN = sanNames(issued)
        for name in askedSAN where !gotSAN.contains(name) {
            differences.append("the CA left out the subject alternative name \(name) that was requested")
        }
        for name in gotSAN where !askedSAN.contains(name) {
            differences.append("the CA added the subject alternative name \(name), which was not requested")
        }
        let askedKU = keyUsageNames(requested), gotKU = keyUsageNames(issued)
        if let askedKU, askedKU != gotKU {
            differences.append("the CA changed the key usage from \(askedKU.joined(separator: ", ")) to \(gotKU?.joined(separator: ", ") ?? "(none: unrestricted)")")
        }
        return differences
    }

    static let namedEKUs: [ASN1ObjectIdentifier: String] = [
        [1, 3, 6, 1, 5, 5, 7, 3, 1]: "serverAuth",
        [1, 3, 6, 1, 5, 5, 7, 3, 2]: "clientAuth",
        [1, 3, 6, 1, 5, 5, 7, 3, 3]: "codeSigning",
        [1, 3, 6, 1, 5, 5, 7, 3, 4]: "emailProtection",
        [1, 3, 6, 1, 4, 1, 311, 20, 2, 2]: "smartcardLogon",
    ]

    static func ekuNames(_ extensions: Certificate.Extensions) -> [String] {
        guard let usages = try? extensions.extendedKeyUsage else { return [] }
        return usages.map { usage in let oid = ASN1ObjectIdentifier(usage); return namedEKUs[oid] ?? oid.description }
    }

    static func sanNames(_ extensions: Certificate.Extensions) -> [String] {
        guard let names = try? extensions.subjectAlternativeNames else { return [] }
        return names.map { name in
            switch name {
            case .dnsName(let dns): return "DNS:\(ServerText.escaped(dns))"
            case .rfc822Name(let email): return "email:\(ServerText.escaped(email))"
            case .uniformResourceIdentifier(let uri): return "URI:\(ServerText.escaped(uri))"
            case .otherName(let other) where other.typeID == OID.userPrincipalName:
                let upn = other.value.flatMap { try? ASN1UTF8String(asn1Any: $0) }.map(String.init) ?? "?"
                return "UPN:\(ServerText.escaped(upn))"
            default: return ServerText.escaped("\(name)")
            }
        }
    }

    /// nil when the extensions carry no keyUsage.
    static func keyUsageNames(_ extensions: Certificate.Extensions) -> [String]? {
        guard let usage = try? extensions.keyUsage else { return nil }
        let bits: [(Bool, String)] = [
            (usage.digitalSignature, "digitalSignature"), (usage.nonRepudiation, "nonRepudiation"),
            (usage.keyEncipherment, "keyEncipherment"), (usage.dataEncipherment, "dataEncipherment"),
            (usage.keyAgreement, "keyAgreement"), (usage.keyCertSign, "keyCertSign"), (usage.cRLSign, "cRLSign"),
        ]
        return bits.filter(\.0).map(\.1)
    }
}
