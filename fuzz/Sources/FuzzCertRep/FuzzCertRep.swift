// libFuzzer harness: a PKIOperation reply (CertRep) all the way the agent takes it. Every input
// is tried as
//   1. a CertRep: ParsedCertRep, then verified(...) against fixed expectations (signer,
//      transactionID, senderNonce), then, for SUCCESS, the envelope opened with the throwaway
//      client key (fuzz/capture/client-key.pem);
//   2. an EnvelopedData / AuthEnvelopedData ContentInfo opened with that key
//      (CertRepEnvelope.openCertificates: AES-CBC, 3DES, DES, AES-GCM with the tag appended,
//      RFC 5083 AES-GCM);
//   3. a decrypted certs-only PKCS#7 (CertRepEnvelope.certificates(inDegenerate:)).
// Each stage rejects foreign input within a few bytes, so one target covers all three.
//
// The expectations: the two captured scepserver exchanges (fuzz/capture/, capture-scep-seeds.sh:
// signed by the captured CA), and the fuzz PKI's exchange (fuzz/capture/pki/, make-pki-seeds.sh),
// whose allowed signers are what CACertificates.validated makes of the fuzz CA's GetCACert
// answer with its RAs: the CA, the cmcRA RA, the NDES signing RA and the pinned RA.
import Foundation
import FuzzFixtures
@testable import SCEPClient
import SwiftASN1
import TPMKeys
import X509

/// The fuzz PKI's exchange: make-pki-seeds.sh signs its CertReps with these (keep in step).
private let fuzzPKITransactionID = "FUZZ-PKI-TRANSACTION-0001"
private let fuzzPKISenderNonce = Array("enroll-agentfuzz".utf8)

private let clientKey: SoftwareKey = {
    do { return try SoftwareKey(pem: FuzzFixtures.text("client-key.pem")) } catch { fatalError("cannot load the client key: \(error)") }
}()

private let expectations: [ReplyExpectation] = {
    do {
        let capturedCA = try PinnedCA(pemText: FuzzFixtures.text("ca.pem"), fingerprints: [])
        // Our captured requests are pkiMessages too: their signed attributes hold the
        // transactionID and the senderNonce the CertRep must echo.
        let captured = try ["pkcsreq-success.der", "pkcsreq-failure.der"].map { name -> ReplyExpectation in
            let request = try ParsedCertRep(Array(FuzzFixtures.read(name)))
            guard let transactionID = try request.printableAttribute(OID.scepTransactionID, "transactionID"),
                  let nonce = try request.octetAttribute(OID.scepSenderNonce, "senderNonce") else {
                fatalError("\(name) has no transactionID or senderNonce")
            }
            return ReplyExpectation(transactionID: transactionID, senderNonce: nonce, allowedSigners: capturedCA.pinnedCertificates)
        }
        let answer = FuzzFixtures.certificates("pki/ca.pem", "pki/ra.pem", "pki/ra-sign.pem", "pki/ra-encrypt.pem", "pki/pinned-ra.pem")
        let pin = try PinnedCA(pinnedCertificates: FuzzFixtures.certificates("pki/ca.pem"), fingerprints: [],
                               raFingerprints: FuzzFixtures.certificates("pki/pinned-ra.pem").map(PinnedCA.fingerprint(of:)))
        let validated = FuzzFixtures.blocking { try? await CACertificates.validated(answer, pin: pin, window: FuzzFixtures.window) }
        guard let signers = validated?.replySigners,
              FuzzFixtures.certificates("pki/ra.pem", "pki/ra-sign.pem").allSatisfy(signers.contains) else {
            fatalError("the fuzz PKI's RAs are not reply signers; regenerate it with fuzz/make-pki-seeds.sh")
        }
        return captured + [ReplyExpectation(transactionID: fuzzPKITransactionID, senderNonce: fuzzPKISenderNonce, allowedSigners: signers)]
    } catch {
        fatalError("cannot load the expectations from \(FuzzFixtures.captureDirectory.path): \(error)")
    }
}()

/// Collects the events one call reports.
private final class EventLog: @unchecked Sendable {
    var events: [SCEPEvent] = []
    var handler: SCEPEventHandler { { event in self.events.append(event) } }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCertRep(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let body = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []

    if let reply = scepResult({ try ParsedCertRep(body) }) {
        checkStableDER(reply.signedData)
        for expectation in expectations { check(reply, against: expectation) }
    }
    if let certificates = scepResult({ try CertRepEnvelope.openCertificates(body, key: clientKey, events: { _ in }) }) {
        checkIssued(certificates)
    }
    if let contentInfo = try? ContentInfo(berEncoded: body) {
        checkStableDER(contentInfo)
        let inner = try? CACertificates.bytes(of: contentInfo.content)
        if let enveloped = inner.flatMap({ try? EnvelopedData(berEncoded: $0) }) { checkStableDER(enveloped) }
        if let enveloped = inner.flatMap({ try? AuthEnvelopedData(berEncoded: $0) }) { checkStableDER(enveloped) }
    }
    if let certificates = scepResult({ try CertRepEnvelope.certificates(inDegenerate: body) }) {
        checkIssued(certificates)
    }
    return 0
}

private func check(_ reply: ParsedCertRep, against expectation: ReplyExpectation) {
    let log = EventLog()
    let verified: VerifiedCertRep
    do {
        verified = try reply.verified(against: expectation, events: log.handler)
    } catch let error as SCEPError {
        checkMessage(error.message)
        switch error.code {
        case .untrustedCertificate, .badSignature, .unsupportedAlgorithm:
            // Nothing of an unverified reply is reported, not even its weak algorithms.
            precondition(log.events.isEmpty, "an unverified reply reported \(log.events)")
        default:
            break
        }
        return
    } catch {
        preconditionFailure("verified(against:) threw something other than an SCEPError: \(error)")
    }
    // It verified: one allowed signer alone must do, and each check must be one that holds.
    precondition(expectation.allowedSigners.contains { signer in
        (try? reply.verified(against: ReplyExpectation(transactionID: expectation.transactionID, senderNonce: expectation.senderNonce,
                                                       allowedSigners: [signer]), events: { _ in })) != nil
    }, "a reply verified, but against none of its allowed signers alone")
    expectFailure(.untrustedCertificate, reply, ReplyExpectation(transactionID: expectation.transactionID,
                                                                 senderNonce: expectation.senderNonce, allowedSigners: []))
    var otherNonce = expectation.senderNonce
    otherNonce.append(0)
    expectFailure(.replyMismatch, reply, ReplyExpectation(transactionID: expectation.transactionID, senderNonce: otherNonce,
                                                          allowedSigners: expectation.allowedSigners))
    expectFailure(.replyMismatch, reply, ReplyExpectation(transactionID: expectation.transactionID + "0", senderNonce: expectation.senderNonce,
                                                          allowedSigners: expectation.allowedSigners))
    if case .success(let envelope) = verified {
        precondition(!envelope.isEmpty, "a SUCCESS reply without content verified")
        if let certificates = scepResult({ try CertRepEnvelope.openCertificates(envelope, key: clientKey, events: { _ in }) }) {
            checkIssued(certificates)
        }
    }
    if case .failure(_, let text?) = verified { _ = ServerText.excerpt(text) }
}

private func expectFailure(_ code: SCEPError.Code, _ reply: ParsedCertRep, _ expectation: ReplyExpectation) {
    do {
        _ = try reply.verified(against: expectation, events: { _ in })
        preconditionFailure("a reply verified against an expectation it does not meet (expected \(code))")
    } catch let error as SCEPError {
        precondition(error.code == code, "expected \(code), got \(error.code): \(error.message)")
    } catch {
        preconditionFailure("verified(against:) threw something other than an SCEPError: \(error)")
    }
}

/// The value, or nil for an SCEPError; any other error is a bug (the agent maps SCEPErrors to
/// messages and exit codes; anything else would be an internal error).
private func scepResult<T>(_ body: () throws -> T) -> T? {
    do {
        return try body()
    } catch let error as SCEPError {
        checkMessage(error.message)
        return nil
    } catch {
        preconditionFailure("threw something other than an SCEPError: \(type(of: error)): \(error)")
    }
}

/// What the agent installs: at least one certificate, each surviving a DER round trip.
private func checkIssued(_ certificates: [Certificate]) {
    precondition(!certificates.isEmpty, "an envelope opened to no certificate")
    for certificate in certificates {
        var serializer = DER.Serializer()
        try! serializer.serialize(certificate)
        precondition((try? Certificate(derEncoded: serializer.serializedBytes)) == certificate,
                     "an issued certificate does not survive a DER round trip")
    }
}

/// A parsed CMS structure re-encodes, and its re-encoding is stable (DER of DER is itself).
private func checkStableDER<T: BERImplicitlyTaggable>(_ value: T) {
    func der(_ value: T) -> [UInt8] {
        var serializer = DER.Serializer()
        do { try serializer.serialize(value) } catch { preconditionFailure("a parsed \(T.self) does not serialize: \(error)") }
        return serializer.serializedBytes
    }
    let first = der(value)
    guard let reparsed = try? T(berEncoded: first) else {
        preconditionFailure("a parsed \(T.self) does not parse again after re-encoding")
    }
    precondition(der(reparsed) == first, "the re-encoding of a \(T.self) is not stable")
}

/// Server text in a message is escaped: no line breaks, control characters or bidi overrides.
private func checkMessage(_ message: String) {
    precondition(!message.isEmpty, "an empty message")
    precondition(!message.unicodeScalars.contains(where: ServerText.needsEscaping),
                 "a message with unescaped control or bidi characters: \(message.debugDescription)")
}
