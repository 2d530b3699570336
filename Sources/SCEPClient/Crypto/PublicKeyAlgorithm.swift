import KeyInterface
import SwiftASN1
import X509

extension KeyAlgorithm {
    /// The algorithm of a certificate's public key: RSA with its modulus size, or EC on
    /// P-256 or P-384; nil for anything else (Ed25519, other curves, malformed).
    public init?(publicKey: Certificate.PublicKey) {
        var serializer = DER.Serializer()
        guard (try? serializer.serialize(publicKey)) != nil else { return nil }
        self.init(subjectPublicKeyInfo: serializer.serializedBytes)
    }

    /// The same from DER SubjectPublicKeyInfo (RFC 5280 §4.1.2.7).
    public init?(subjectPublicKeyInfo der: [UInt8]) {
        guard let found = try? Self.parse(der) else { return nil }
        self = found
    }

    static let rsaEncryption: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 1, 1]
    static let ecPublicKey: ASN1ObjectIdentifier = [1, 2, 840, 10045, 2, 1]
    static let secp256r1: ASN1ObjectIdentifier = [1, 2, 840, 10045, 3, 1, 7]
    static let secp384r1: ASN1ObjectIdentifier = [1, 3, 132, 0, 34]

    /// SubjectPublicKeyInfo ::= SEQUENCE { algorithm AlgorithmIdentifier, subjectPublicKey BIT STRING }
    private static func parse(_ der: [UInt8]) throws -> KeyAlgorithm? {
        try DER.sequence(try DER.parse(der), identifier: .sequence) { nodes -> KeyAlgorithm? in
            guard let algorithmNode = nodes.next() else { return nil }
            let (oid, parameters) = try DER.sequence(algorithmNode, identifier: .sequence) { inner in
                (try ASN1ObjectIdentifier(derEncoded: &inner), inner.next())
            }
            let key = try ASN1BitString(derEncoded: &nodes)
            switch oid {
            case ecPublicKey:
                guard let parameters else { return nil }
                switch try ASN1ObjectIdentifier(derEncoded: parameters) {
                case secp256r1: return .ec(.p256)
                case secp384r1: return .ec(.p384)
                default: return nil
                }
            case rsaEncryption:
                // RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }
                let modulus = try DER.sequence(try DER.parse(Array(key.bytes)), identifier: .sequence) { inner in
                    let modulus = try ArraySlice<UInt8>(derEncoded: &inner)
                    _ = try ArraySlice<UInt8>(derEncoded: &inner)  // publicExponent
                    return modulus
                }
                return .rsa(bits: modulus.drop(while: { $0 == 0 }).count * 8)
            default:
                return nil
            }
        }
    }
}
