import SCEPClient
import X509

/// How certificate fields are written in logs, `status` and errors: one spelling each.
enum CertificateText {
    /// The serial number as colon-separated lowercase hex bytes (`7f:0a:00:45`), as
    /// `openssl x509 -serial` groups it; never swift-certificates' unpadded description.
    static func serial(_ certificate: Certificate) -> String {
        Hex.encode(certificate.serialNumber.bytes, separator: ":")
    }
}
