import SwiftASN1

// RFC 8894 §3.3.3 (CertPoll, formerly GetCertInitial)
//
// IssuerAndSubject ::= SEQUENCE {
//   issuer Name,
//   subject Name }
struct IssuerAndSubject: BERImplicitlyTaggable, Hashable, Sendable {
    static var defaultIdentifier: ASN1Identifier { .sequence }

    var issuer: ASN1Any
    var subject: ASN1Any

    init(issuer: ASN1Any, subject: ASN1Any) {
        self.issuer = issuer
        self.subject = subject
    }

    init(derEncoded node: ASN1Node, withIdentifier identifier: ASN1Identifier) throws {
        try self.init(berEncoded: node, withIdentifier: identifier)
    }

    init(berEncoded node: ASN1Node, withIdentifier identifier: ASN1Identifier) throws {
        self = try BER.sequence(node, identifier: identifier) { nodes in
            guard let issuer = nodes.next(), issuer.identifier == .sequence,
                  let subject = nodes.next(), subject.identifier == .sequence else {
                throw ASN1Error.invalidASN1Object(reason: "IssuerAndSubject: two Names expected")
            }
            return IssuerAndSubject(issuer: ASN1Any(berEncoded: issuer), subject: ASN1Any(berEncoded: subject))
        }
    }

    func serialize(into coder: inout DER.Serializer, withIdentifier identifier: ASN1Identifier) throws {
        try coder.appendConstructedNode(identifier: identifier) { coder in
            try coder.serialize(issuer)
            try coder.serialize(subject)
        }
    }
}
