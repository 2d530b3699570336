// libFuzzer harness: the GetCACert reply body (a DER certificate or a certs-only PKCS#7, BER
// accepted), then the offline checks the agent runs on what it parsed (fingerprints, CA and
// key-usage roles, the pin's anchors). Built and run by scripts/fuzz.sh; see fuzz/README.md.
import Foundation
@testable import SCEPClient

/// The pin: the CA of the captured scepserver exchange (fuzz/capture/ca.pem), so that
/// `anchors(among:)` compares every parsed certificate against a real one.
private let pin: PinnedCA = {
    let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../capture/ca.pem").standardizedFileURL.path
    guard let pem = try? String(contentsOfFile: path, encoding: .utf8),
          let pin = try? PinnedCA(pemText: pem, fingerprints: []) else {
        fatalError("cannot load the pinned CA from \(path); run fuzz/capture-scep-seeds.sh")
    }
    return pin
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzGetCACert(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let body = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    guard let certificates = try? CACertificates.parseReply(body) else { return 0 }
    precondition(!certificates.isEmpty, "parseReply succeeded with no certificate")
    for certificate in certificates {
        _ = PinnedCA.fingerprint(of: certificate)
        _ = CACertificates.isCA(certificate)
        _ = CACertificates.allows(certificate, \.keyEncipherment)
        _ = CACertificates.allows(certificate, \.digitalSignature)
    }
    _ = pin.anchors(among: certificates)
    return 0
}
