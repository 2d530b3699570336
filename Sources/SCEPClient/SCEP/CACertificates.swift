import Foundation
import SwiftASN1
import X509

/// The GetCACert answer (RFC 8894 §4.2.1), checked against the pin, with the
/// roles SCEP needs picked out: who we encrypt to, and who may sign replies.
public struct CACertificates: Sendable {
    /// Everything the server sent, in order.
    public let all: [Certificate]
    /// The pinned CA certificate the chain ends at (the issuer we expect for our certificate).
    public let issuingCA: Certificate
    /// The certificate our request's envelope is encrypted to (the RA, or the CA without an RA).
    public let encryptionRecipient: Certificate
    /// Certificates allowed to sign CertReps: the RA(s) and the CA, each validated against the pin.
    public let replySigners: [Certificate]
    /// Certificates to present as intermediates when validating what the server issues.
    public let chain: [Certificate]

    /// Parses a GetCACert reply body: a single DER certificate
    /// (`application/x-x509-ca-cert`) or a degenerate certs-only PKCS#7
    /// (`application/x-x509-ca-ra-cert`). The content type is only a hint; the
    /// bytes decide. BER is accepted.
    public static func parseReply(_ body: [UInt8]) throws -> [Certificate] {
        guard !body.isEmpty else { throw SCEPError(.malformedReply, "GetCACert returned an empty body") }
        if let single = try? Certificate(derEncoded: body) { return [single] }
        do {
            let contentInfo = try ContentInfo(berEncoded: body)
            guard contentInfo.contentType == OID.signedData else {
                throw SCEPError(.malformedReply, "GetCACert returned a PKCS#7 of type \(contentInfo.contentType), not SignedData")
            }
            let signedData = try SignedData(berEncoded: Self.bytes(of: contentInfo.content))
            let certificates = try (signedData.certificates ?? []).map { try Certificate(derEncoded: Self.bytes(of: $0)) }
            guard !certificates.isEmpty else {
                throw SCEPError(.malformedReply, "GetCACert returned a PKCS#7 without certificates")
            }
            return certificates
        } catch let error as SCEPError {
            throw error
        } catch {
            throw SCEPError(.malformedReply, "GetCACert reply is neither a DER certificate nor a certs-only PKCS#7: \(error)")
        }
    }

    static func bytes(of any: ASN1Any) throws -> [UInt8] {
        var serializer = DER.Serializer()
        try serializer.serialize(any)
        return serializer.serializedBytes
    }

    /// Checks every certificate against the pin and assigns roles.
    ///
    /// NDES-style RAs carry one key usage each: keyEncipherment for the envelope,
    /// digitalSignature for reply signing. Without an RA, the CA does both.
    public static func validated(_ certificates: [Certificate], pin: PinnedCA, at time: Date) async throws -> CACertificates {
        let anchors = pin.anchors(among: certificates)
        var trusted: [Certificate] = []
        for certificate in certificates {
            if (try? await pin.validate(certificate, intermediates: certificates, anchors: anchors, at: time, role: "CA/RA")) != nil {
                trusted.append(certificate)
            }
        }
        // Only certificates the server actually sent and that chain to the pin are used:
        // a pinned CA the server does not present must never become our envelope recipient.
        guard !trusted.isEmpty else {
            throw SCEPError(.untrustedCertificate,
                            "none of the server's CA/RA certificates (\(certificates.map { "\($0.subject)" }.joined(separator: "; "))) "
                            + "is or chains to the pinned CA; check ca_pin_file / ca_pin_sha256 against `enroll-agent ca-info`")
        }
        guard let issuingCA = anchors.first(where: { anchor in trusted.contains { $0 == anchor || $0.issuer == anchor.subject } }) else {
            throw SCEPError(.untrustedCertificate, "no GetCACert certificate is issued by the pinned CA")
        }
        // RA candidates: trusted certificates that are not CAs.
        let raCandidates = trusted.filter { !isCA($0) }
        let encryptionRecipient: Certificate
        if let ra = raCandidates.first(where: { allows($0, \.keyEncipherment) }) {
            encryptionRecipient = ra
        } else if raCandidates.isEmpty, let ca = trusted.first(where: { $0 == issuingCA }) ?? trusted.first(where: isCA) {
            encryptionRecipient = ca
        } else {
            throw SCEPError(.untrustedCertificate,
                            "the server's RA certificates carry no keyEncipherment usage, so no request can be encrypted to them")
        }
        var signers = raCandidates.filter { allows($0, \.digitalSignature) }
        signers.append(contentsOf: trusted.filter { isCA($0) && !signers.contains($0) })
        let chain = trusted.filter { isCA($0) && $0 != issuingCA } + [issuingCA]
        return CACertificates(
            all: certificates, issuingCA: issuingCA, encryptionRecipient: encryptionRecipient,
            replySigners: signers, chain: chain)
    }

    static func isCA(_ certificate: Certificate) -> Bool {
        (try? certificate.extensions.basicConstraints).flatMap { constraints -> Bool? in
            if case .isCertificateAuthority = constraints { return true }
            return false
        } ?? false
    }

    /// True when the certificate has no keyUsage (no restriction) or has the bit.
    static func allows(_ certificate: Certificate, _ bit: KeyPath<KeyUsage, Bool>) -> Bool {
        guard let usage = try? certificate.extensions.keyUsage else { return true }
        return usage[keyPath: bit]
    }
}
