import SwiftASN1

/// Object identifiers used by CMS (RFC 5652) and SCEP (RFC 8894).
enum OID {
    // RFC 5652 content types
    static let data: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 7, 1]
    static let signedData: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 7, 2]
    static let envelopedData: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 7, 3]
    /// id-ct-authEnvelopedData, RFC 5083
    static let authEnvelopedData: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 9, 16, 1, 23]

    // RFC 5652 §11 attributes
    static let contentType: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 9, 3]
    static let messageDigest: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 9, 4]
    static let signingTime: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 9, 5]

    // RFC 8894 §3.2.1 (id-VeriSign 2.16.840.1.113733, id-attributes 1.9)
    static let scepMessageType: ASN1ObjectIdentifier = [2, 16, 840, 1, 113733, 1, 9, 2]
    static let scepPKIStatus: ASN1ObjectIdentifier = [2, 16, 840, 1, 113733, 1, 9, 3]
    static let scepFailInfo: ASN1ObjectIdentifier = [2, 16, 840, 1, 113733, 1, 9, 4]
    static let scepSenderNonce: ASN1ObjectIdentifier = [2, 16, 840, 1, 113733, 1, 9, 5]
    static let scepRecipientNonce: ASN1ObjectIdentifier = [2, 16, 840, 1, 113733, 1, 9, 6]
    static let scepTransactionID: ASN1ObjectIdentifier = [2, 16, 840, 1, 113733, 1, 9, 7]
    /// id-scep-failInfoText, RFC 8894 §3.2.1.4
    static let scepFailInfoText: ASN1ObjectIdentifier = [1, 3, 6, 1, 5, 5, 7, 24, 1]

    // PKCS#9 challengePassword (RFC 2985)
    static let challengePassword: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 9, 7]

    // Digests
    static let sha1: ASN1ObjectIdentifier = [1, 3, 14, 3, 2, 26]
    static let sha256: ASN1ObjectIdentifier = [2, 16, 840, 1, 101, 3, 4, 2, 1]
    static let sha384: ASN1ObjectIdentifier = [2, 16, 840, 1, 101, 3, 4, 2, 2]
    static let sha512: ASN1ObjectIdentifier = [2, 16, 840, 1, 101, 3, 4, 2, 3]

    // RSA
    static let rsaEncryption: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 1, 1]
    static let sha1WithRSA: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 1, 5]
    static let sha256WithRSA: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 1, 11]
    static let sha384WithRSA: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 1, 12]
    static let sha512WithRSA: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 1, 13]

    // Content encryption
    static let desCBC: ASN1ObjectIdentifier = [1, 3, 14, 3, 2, 7]
    static let desEDE3CBC: ASN1ObjectIdentifier = [1, 2, 840, 113549, 3, 7]
    static let aes128CBC: ASN1ObjectIdentifier = [2, 16, 840, 1, 101, 3, 4, 1, 2]
    static let aes192CBC: ASN1ObjectIdentifier = [2, 16, 840, 1, 101, 3, 4, 1, 22]
    static let aes256CBC: ASN1ObjectIdentifier = [2, 16, 840, 1, 101, 3, 4, 1, 42]
    // RFC 5084 §3.2
    static let aes128GCM: ASN1ObjectIdentifier = [2, 16, 840, 1, 101, 3, 4, 1, 6]
    static let aes192GCM: ASN1ObjectIdentifier = [2, 16, 840, 1, 101, 3, 4, 1, 26]
    static let aes256GCM: ASN1ObjectIdentifier = [2, 16, 840, 1, 101, 3, 4, 1, 46]

    // UPN otherName (Microsoft)
    static let userPrincipalName: ASN1ObjectIdentifier = [1, 3, 6, 1, 4, 1, 311, 20, 2, 3]
}
