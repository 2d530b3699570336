// libFuzzer harness: CRLs (RFC 5280 §5) and the CRL distribution point extension, as the
// agent reads them from a CRL server and from its certificate (`SCEPClient/Revocation`).
// Asserts: the public parser throws only SCEPErrors; a CRL it accepts re-encodes byte for
// byte (DER; unless swift-certificates normalizes its issuer name); entry lookups, the
// signature check and the validation against a fixed issuer throw only SCEPErrors;
// distribution points keep their URIs through a round trip. Seeds: fuzz/corpus/crl/
// (OpenSSL 3.0's `openssl ca -gencrl`, and OpenSSL's CRL distribution point extension).
import Foundation
import SwiftASN1
import X509
@testable import SCEPClient

private let issuer = try! Certificate(pemEncoded: """
-----BEGIN CERTIFICATE-----
MIIDOzCCAiOgAwIBAgIUKVIRRy+/8WCv7Lg1wMb9+TU03EgwDQYJKoZIhvcNAQEL
BQAwJTEPMA0GA1UECgwGVmVjdG9yMRIwEAYDVQQDDAlWZWN0b3IgQ0EwHhcNMjYx
MjAyMDIwMTAwWhcNMzYxMTI5MDIwMTAwWjAlMQ8wDQYDVQQKDAZWZWN0b3IxEjAQ
BgNVBAMMCVZlY3RvciBDQTCCASIwDQYJKoZIhvcNAQEBBQADggEPADCCAQoCggEB
AJ9fwsWBmJiUtqji/amTv8oKr/vLQf2bVD0hd+WLfwXwfQDGOSQw8livXBCE4+Lh
aOParx4asU36YPDFGVENPMHgM6lfyQiWMNFpOh/q9J2yhPW/qRy68u/flSa62Mup
hXx9K6CqmXtYtJq+nFizLtsML+4NYA2M/nEFewEWeCWdWtSKuf7xFbOEkk4opnlQ
Nwl/JtEjwwPM9l/ysMmwP5QtDmSGoxVYywb34HBdnPO32uR0ytodZbb55m3Nkc7d
QAa+aWX494tZas7ZY7180e7NL669KkaNk3k/oD50tbO2hFSsB8UNXy+zYJNVqpCC
LRTsRetACoB+iViCUQAaMwMCAwEAAaNjMGEwHQYDVR0OBBYEFCY/7sEHBAYRHGo9
g6nJUGwsH+5/MB8GA1UdIwQYMBaAFCY/7sEHBAYRHGo9g6nJUGwsH+5/MA8GA1Ud
EwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQDAgEGMA0GCSqGSIb3DQEBCwUAA4IBAQAP
1CSIb4QTo8AgCAYmBi0raja+Jb11Aa1Rho3DclLQ7BsBtVK+VBN4NCNDa0xhCeY9
drMg05KrPTimL218oJljTAuT7v0dEe7AqHkrUEJ5TN5aquZUFrMGjVPwWcDc92BC
b/IqIhH6HMEEMuzR+pEfHxgQJoAtFsMXWtDk2Mxq5h1vVxZP28PSWtqpZVIaLG5x
3aJsDSoT1Vyif0kXrGtxBaKTfx8Nz6wn3SEVqCIj6UoaDzMmn5bNnpXqHMsZ+Rln
WavkJd2v1MUA6TACdjViWhMlTPOezMmKbHxvw4SJzHQf8Hy3zj08dbf1A4+aw7Aw
aFzQYWSfuUnX6J4riGb9
-----END CERTIFICATE-----
""")
private let revokedHost = try! Certificate(pemEncoded: """
-----BEGIN CERTIFICATE-----
MIICqzCCAZMCAhAAMA0GCSqGSIb3DQEBCwUAMCUxDzANBgNVBAoMBlZlY3RvcjES
MBAGA1UEAwwJVmVjdG9yIENBMB4XDTI2MTIwMjAyMDEwM1oXDTI3MDEwMTAyMDEw
M1owETEPMA0GA1UEAwwGaG9zdDAxMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIB
CgKCAQEAlxjWHHKAHlmIGLpxXACm2Ml+W7lXLdTZfu3BsA74y4avIaonCIYzfxGE
AWdec7zqxzUyCpeigYdN6yVPR31U2ArSxol9+ZqVIDz6J4TKyLPN9F2PT3B87bVm
kF748baoe/XLDlEWsUiKeAvRyQy6y3ZVZR8szkMdfAVGWdXdJqbqCJVdfW7N3IXl
dOqAzMxCZGqltFEwsOVM0xOvQki4dlT0WbfzH+GGawYs7TCqwnCq0t8/beKysldF
TvGt7YYYh6VwjWiS/EbK6UZeo/wtG6qgMNYUip5PhGevlD/DTqKWPIxvVQ8/qD9U
Lc/JNJqUP48qEuELoDmMZJo3aFakUwIDAQABMA0GCSqGSIb3DQEBCwUAA4IBAQCa
2ubS5lMhq8ZLYLiW95TveztVcdRKyZvltZ+KEuffC7eTi7A2Hj7p57/FaJq71st4
dAZzSdUhQb2Myaq8enlAy5MVwLUc7/Zhfxjem3KjqKaMkJnm7YQl542g9jFoi3Mw
fjYVdF1NP224wxxwfxNTx9TDqkUTtjAS5Zqe08T0eaV+i9f9aq566/Pr6bpx9k6y
CPNo8UgBFoM9eVRNb37+EpehayUwlZbY6yCF4vF8jRJzPbCqlZHDoRIKuSqI7odo
PsEXZ0WOvkpx2D+/dsRO5xASvku2DasnxjRCpoojkfQEgDh2W6lFhXf+KjoSTy74
FeM4jM8Px7iftMOg44f5
-----END CERTIFICATE-----
""")
/// 2026-12-03: inside the seed CRL's window.
private let now = Date(timeIntervalSince1970: 1_796_263_265)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCRL(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    distributionPoints(bytes)
    let crl: CertificateRevocationList
    do {
        crl = try CertificateRevocationList(derEncoded: bytes)
    } catch {
        precondition(error is SCEPError, "the CRL parser threw \(type(of: error)), not an SCEPError")
        return 0
    }
    // swift-certificates normalizes some names (a UTF8String that is not UTF-8): ours is the rest.
    // The signature is checked over the bytes received either way (`signedBytes`).
    if issuerReencodes(crl) {
        precondition(DERBytes.of(crl.list) == bytes, "an accepted CRL does not re-encode byte for byte")
        precondition(DERBytes.of(crl.list.tbsCertList) == Array(crl.list.signedBytes), "the signed part does not re-encode as received")
    }
    _ = crl.isSigned(by: issuer)
    onlySCEPErrors("entry") { _ = try crl.entry(for: revokedHost.serialNumber) }
    for revoked in crl.list.tbsCertList.revokedCertificates {
        onlySCEPErrors("entry") { _ = try crl.entry(for: Certificate.SerialNumber(bytes: revoked.serialNumber)) }
    }
    onlySCEPErrors("validation") { try CRLValidation.verify(crl, issuer: issuer, for: revokedHost, now: now) }
    return 0
}

/// Whether the issuer name re-encodes to the bytes received.
private func issuerReencodes(_ crl: CertificateRevocationList) -> Bool {
    guard let tbs = try? DER.parse(Array(crl.list.signedBytes)), case .constructed(let children) = tbs.content else { return false }
    let nodes = Array(children)
    let index = nodes.first?.identifier == .integer ? 2 : 1
    guard nodes.indices.contains(index) else { return false }
    return DERBytes.of(crl.list.tbsCertList.issuer) == Array(nodes[index].encodedBytes)
}

private func distributionPoints(_ bytes: [UInt8]) {
    guard let points = try? CRLDistributionPoints(derEncoded: bytes) else { return }
    _ = points.uris.map(CRLLocation.init(uri:))
    let written = DERBytes.of(points)
    guard let reread = try? CRLDistributionPoints(derEncoded: written) else {
        preconditionFailure("distribution points do not re-parse after encoding")
    }
    precondition(reread.uris == points.uris, "distribution points change their URIs on a round trip")
}

private func onlySCEPErrors(_ what: String, _ body: () throws -> Void) {
    do { try body() } catch {
        precondition(error is SCEPError, "\(what) threw \(type(of: error)), not an SCEPError")
    }
}
