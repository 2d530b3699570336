import Foundation
import SwiftASN1
import KeyInterface
import X509

// RFC 8894 §4.7.1
//
//   The response consists of a SignedData PKCS #7, signed by the current CA (or RA)
//   signing key. The certificates field of the SignedData contains the new CA
//   certificate(s) (and RA certificates, if any) ... the content of the SignedData is
//   empty (degenerate). Clients MUST validate the signature on the message before
//   trusting any of its contents.
//
// The structures are SignedData / SignerInfo (CMS/); this file is the check.

/// A GetNextCACert answer whose signature was verified with a certificate the pin
/// vouches for (the pinned CA, a CA on its path, or a trusted RA: `CACertificates.replySigners`).
public struct NextCAAnnouncement: Sendable, Equatable {
    /// The announced CA certificates that are not already trusted today (empty: the server
    /// announces no change). Not checked for validity: a next CA may start later.
    public let nextCAs: [Certificate]
    /// The certificate that signed the answer.
    public let signer: Certificate
    /// Certificates of the answer that are not used (end-entity certificates such as the
    /// next CA's RA: trusted later by the usual RA rules, once GetCACert presents them).
    public let ignored: [Certificate]

    /// Parses and verifies a GetNextCACert body. BER accepted; every failure is an
    /// `SCEPError` (`.malformedReply`, `.untrustedCertificate`, `.badSignature`,
    /// `.unsupportedAlgorithm`, `.resourceLimit`), never a crash.
    /// - Parameters:
    ///   - signers: who may sign it (today's trusted CA and RA certificates).
    ///   - current: CA certificates trusted today; announcing one of them again is no change.
    public static func verified(_ body: [UInt8], signers: [Certificate], current: [Certificate],
                                limits: PathBuildingLimits = PathBuildingLimits()) throws -> NextCAAnnouncement {
        guard !body.isEmpty else { throw SCEPError(.malformedReply, "GetNextCACert returned an empty body") }
        let signedData: SignedData
        do {
            let contentInfo = try ContentInfo(berEncoded: body)
            guard contentInfo.contentType == OID.signedData else {
                throw SCEPError(.malformedReply, "GetNextCACert returned a PKCS#7 of type \(contentInfo.contentType), not SignedData")
            }
            signedData = try SignedData(berEncoded: CACertificates.bytes(of: contentInfo.content))
        } catch let error as SCEPError {
            throw error
        } catch {
            throw SCEPError(.malformedReply, "GetNextCACert reply is not a CMS SignedData: \(ServerText.excerpt("\(error)", limit: 200))")
        }
        let encoded = signedData.certificates ?? []
        guard encoded.count <= limits.maxCertificates else {
            throw SCEPError(.resourceLimit, "GetNextCACert sent \(encoded.count) certificates; at most \(limits.maxCertificates) are considered: refused")
        }
        // A degenerate certs-only PKCS#7 with no signer is what GetCACert sends; here it
        // would be an announcement nobody vouches for.
        guard signedData.signerInfos.count == 1, let signerInfo = signedData.signerInfos.first else {
            throw SCEPError(.untrustedCertificate,
                            "GetNextCACert reply has \(signedData.signerInfos.count) signers; RFC 8894 §4.7 requires it signed by the current CA or RA")
        }
        let certificates: [Certificate]
        do {
            certificates = try encoded.map { try Certificate(derEncoded: CACertificates.bytes(of: $0)) }
        } catch {
            throw SCEPError(.malformedReply, "a certificate of the GetNextCACert reply does not parse: \(ServerText.excerpt("\(error)", limit: 200))")
        }
        let signer = try signerInfo.signer(among: signers, embedded: certificates, message: "GetNextCACert reply")
        _ = try signerInfo.verifyRSASignature(content: signedData.encapsulatedContentInfo.content.map { Array($0.bytes) } ?? [],
                                              signer: signer, requireSignedAttributes: false, message: "GetNextCACert reply")

        let currentFingerprints = Set(current.map(PinnedCA.fingerprint(of:)))
        var nextCAs: [Certificate] = []
        var ignored: [Certificate] = []
        for certificate in certificates where certificate != signer {
            if CACertificates.isCA(certificate) {
                if !currentFingerprints.contains(PinnedCA.fingerprint(of: certificate)) && !nextCAs.contains(certificate) {
                    nextCAs.append(certificate)
                }
            } else {
                ignored.append(certificate)
            }
        }
        return NextCAAnnouncement(nextCAs: nextCAs, signer: signer, ignored: ignored)
    }
}

extension SCEPEnrollment {
    /// GetNextCACert (RFC 8894 §4.7) against a server already checked against the pin:
    /// the answer must be signed by one of its trusted signers. Call it only when
    /// `server.capabilities` lists GetNextCACert.
    public func nextCA(server: ServerProfile) async throws -> NextCAAnnouncement {
        let body = try await service.nextCACertificate()
        return try NextCAAnnouncement.verified(body, signers: server.certificates.replySigners,
                                               current: server.certificates.chain, limits: limits)
    }
}

extension CACertificates {
    /// Whether one of today's trusted CA certificates signed `certificate`: false for a
    /// certificate of a CA the server no longer presents (after a rollover).
    public func isIssuedByTrustedCA(_ certificate: Certificate) -> Bool {
        chain.contains { $0.subject == certificate.issuer && $0.publicKey.isValidSignature(certificate.signature, for: certificate) }
    }
}

extension CACertificates {
    /// Every pinned CA the server presents, the issuing CA first: while several CAs are
    /// pinned (old and new during a planned change) the server may issue from any of them.
    public var issuingAnchors: [Certificate] {
        [issuingCA] + classified.filter { $0.role == .pinnedCA && $0.certificate != issuingCA }.map(\.certificate)
    }
}
