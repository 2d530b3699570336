import COpenSSL

/// Drains OpenSSL's thread-local error queue into one readable line.
/// Shared with SCEPClient, which uses the same libcrypto.
public func openSSLErrorDescription() -> String {
    var messages: [String] = []
    while true {
        let code = ERR_get_error()
        if code == 0 { break }
        var buffer = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &buffer, buffer.count)
        messages.append(String(cString: buffer))
    }
    return messages.isEmpty ? "no OpenSSL error detail" : messages.joined(separator: "; ")
}

/// Maps our digest enum to OpenSSL's digest names.
extension DigestAlgorithm {
    public var openSSLName: String {
        switch self {
        case .sha1: return "SHA1"
        case .sha256: return "SHA256"
        case .sha384: return "SHA384"
        case .sha512: return "SHA512"
        }
    }
}
