import SCEPClient
import X509

/// How certificate fields are written in logs, `status` and errors: one spelling each.
enum CertificateText {
    /// The serial number as colon-separated lowercase hex bytes (`7f:0a:00:45`), as
    /// `openssl x509 -serial` groups it; never swift-certificates' unpadded description.
    static func serial(_ certificate: Certificate) -> String {
        Hex.encode(certificate.serialNumber.bytes, separator: ":")
    }

    /// The serial as plain hex: the key of per-certificate state (the renewal jitter).
    static func serialHex(_ certificate: Certificate) -> String {
        Hex.encode(certificate.serialNumber.bytes)
    }
}

/// `ca_pin_file`: a few PEM certificates, read with a bound.
enum PinFile {
    static let limit = 1 << 20

    static func read(_ path: String) throws -> String {
        do {
            return String(decoding: try BoundedFileReader(limit: limit).read(path), as: UTF8.self)
        } catch {
            throw AgentError(.config, "cannot read ca_pin_file \(path): \(error.reason) (at most \(limit) bytes of PEM certificates)")
        }
    }
}
