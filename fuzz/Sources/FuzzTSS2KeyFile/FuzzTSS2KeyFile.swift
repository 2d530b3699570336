// libFuzzer harness: a `TSS2 PRIVATE KEY` file, as DER/BER and as PEM text, then what loading the
// key does before it talks to a TPM (unmarshalling TPM2B_PUBLIC / TPM2B_PRIVATE with libtss2-mu,
// building the RSA SubjectPublicKeyInfo). A parsed file must survive a DER and a PEM round trip
// unchanged. No TPM is opened: TPMKey connects only when it signs or decrypts.
@testable import TPMKeys

private func exercise(_ file: TSS2PrivateKeyFile) {
    let der = (try? file.derBytes()) ?? []
    precondition((try? TSS2PrivateKeyFile(bytes: der)) == file, "a parsed key file does not survive a DER round trip")
    if let pem = try? file.pemString() {
        precondition((try? TSS2PrivateKeyFile(pem: pem)) == file, "a parsed key file does not survive a PEM round trip")
    }
    _ = try? TPMKey(keyFile: file, tcti: "swtpm:path=/nonexistent")
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTSS2KeyFile(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    if let file = try? TSS2PrivateKeyFile(bytes: bytes) { exercise(file) }
    if let file = try? TSS2PrivateKeyFile(pem: String(decoding: bytes, as: UTF8.self)) { exercise(file) }
    return 0
}
