// libFuzzer harness: a PKIOperation reply (CertRep) all the way the agent takes it. Every input
// is tried as
//   1. a CertRep: ParsedCertRep, then verified(...) against the fixed expectations of the two
//      captured scepserver exchanges (signature by the captured CA, transactionID, nonce), then,
//      for SUCCESS, the envelope opened with the captured (throwaway) client key;
//   2. an EnvelopedData ContentInfo opened with that key (CertRepEnvelope.openCertificates);
//   3. a decrypted certs-only PKCS#7 (CertRepEnvelope.certificates(inDegenerate:)).
// Each stage rejects foreign input within a few bytes, so one target covers all three.
// The expectations come from fuzz/capture/ (made by fuzz/capture-scep-seeds.sh).
import Foundation
@testable import SCEPClient
import TPMKeys

/// What the harness checks replies against, loaded once from fuzz/capture/.
private struct CapturedExchange {
    let expectations: [ReplyExpectation]
    let clientKey: SoftwareKey

    static func load() -> CapturedExchange {
        let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../capture").standardizedFileURL
        func read(_ name: String) -> Data {
            guard let data = try? Data(contentsOf: directory.appendingPathComponent(name)) else {
                fatalError("cannot read \(directory.path)/\(name); run fuzz/capture-scep-seeds.sh")
            }
            return data
        }
        do {
            let ca = try PinnedCA(pemText: String(decoding: read("ca.pem"), as: UTF8.self), fingerprints: [])
            let key = try SoftwareKey(pem: String(decoding: read("client-key.pem"), as: UTF8.self))
            // Our requests are pkiMessages too: their signed attributes hold the transactionID and
            // the senderNonce the CertRep must echo.
            let expectations = try ["pkcsreq-success.der", "pkcsreq-failure.der"].map { name -> ReplyExpectation in
                let request = try ParsedCertRep(Array(read(name)))
                guard let transactionID = try request.printableAttribute(OID.scepTransactionID, "transactionID"),
                      let nonce = try request.octetAttribute(OID.scepSenderNonce, "senderNonce") else {
                    fatalError("\(name) has no transactionID or senderNonce")
                }
                return ReplyExpectation(transactionID: transactionID, senderNonce: nonce,
                                        allowedSigners: ca.pinnedCertificates)
            }
            return CapturedExchange(expectations: expectations, clientKey: key)
        } catch {
            fatalError("cannot load the captured exchange from \(directory.path): \(error)")
        }
    }
}

private let exchange = CapturedExchange.load()
private let ignoreEvents: SCEPEventHandler = { _ in }

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCertRep(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let body = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []

    if let reply = try? ParsedCertRep(body) {
        for expectation in exchange.expectations {
            if case .success(let envelope)? = try? reply.verified(against: expectation, events: ignoreEvents) {
                _ = try? CertRepEnvelope.openCertificates(envelope, key: exchange.clientKey, events: ignoreEvents)
            }
        }
    }
    _ = try? CertRepEnvelope.openCertificates(body, key: exchange.clientKey, events: ignoreEvents)
    if let certificates = try? CertRepEnvelope.certificates(inDegenerate: body) {
        precondition(!certificates.isEmpty, "certificates(inDegenerate:) succeeded with no certificate")
    }
    return 0
}
