// TPMKeysBench: times TPM key creation, signing and decryption through the
// agent's own TPMKeys code, the way the agent uses them.
//
//   TPMKeysBench --tcti swtpm:path=/tmp/x/tpm.sock [-n 20] [--bits 2048] [--raw]
//
// What one timed operation includes (it is exactly one public TPMKeys call):
//   create  = TPMKeyFactory.createKey: open a TCTI + ESYS context, flush
//             leftover transients (no resource manager), TestParms, re-create
//             the SRK (CreatePrimary ECC P-256) unless a persistent one exists,
//             Create RSA child (prime search), flush, close.
//   sign    = TPMKey.sign (SHA-256 digest, RSASSA-PKCS1-v1_5): open, flush
//             check, re-create SRK, Load, flush SRK, Sign, flush, close.
//   decrypt = TPMKey.decrypt (RSAES-PKCS1-v1_5): as sign, with RSA_Decrypt.
// Setup that is not timed: a warm-up probe, encrypting the test plaintext
// with OpenSSL, and checking every signature and plaintext for correctness.

import COpenSSL
import Foundation
import TPMKeys

struct BenchOptions {
    var tcti = ""
    var iterations = 20
    var bits = 2048
    /// One "operation milliseconds" line per sample instead of the summary.
    var raw = false

    static let usage = "usage: TPMKeysBench --tcti TCTI [-n ITERATIONS] [--bits 2048|3072] [--raw]"

    init(arguments: [String]) throws {
        var rest = arguments[...]
        func value(_ flag: String) throws -> String {
            guard let next = rest.popFirst() else { throw BenchFailure("\(flag) needs a value\n\(Self.usage)") }
            return next
        }
        while let argument = rest.popFirst() {
            switch argument {
            case "--tcti": tcti = try value(argument)
            case "-n", "--iterations":
                guard let n = Int(try value(argument)), n > 0 else { throw BenchFailure("-n takes a positive integer") }
                iterations = n
            case "--bits":
                guard let bits = Int(try value(argument)) else { throw BenchFailure("--bits takes 2048 or 3072") }
                self.bits = bits
            case "--raw": raw = true
            case "-h", "--help": throw BenchFailure(Self.usage)
            default: throw BenchFailure("unknown argument \(argument)\n\(Self.usage)")
            }
        }
        guard !tcti.isEmpty else { throw BenchFailure("--tcti is required\n\(Self.usage)") }
    }
}

struct BenchFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Wall-clock milliseconds of `body` (monotonic clock).
func measure<T>(_ body: () throws -> T) rethrows -> (T, Double) {
    let start = DispatchTime.now().uptimeNanoseconds
    let result = try body()
    return (result, Double(DispatchTime.now().uptimeNanoseconds - start) / 1_000_000)
}

func median(_ samples: [Double]) -> Double {
    let sorted = samples.sorted()
    let middle = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

/// OpenSSL, for the untimed parts: encrypting to and verifying with the public key.
enum PublicKeyOperations {
    static func withPublicKey<T>(_ spki: [UInt8], _ body: (OpaquePointer) throws -> T) throws -> T {
        var cursor: UnsafePointer<UInt8>? = nil
        let key: OpaquePointer? = spki.withUnsafeBufferPointer { buffer in
            cursor = buffer.baseAddress
            return d2i_PUBKEY(nil, &cursor, buffer.count)
        }
        guard let key else { throw BenchFailure("OpenSSL cannot read the TPM key's SubjectPublicKeyInfo") }
        defer { EVP_PKEY_free(key) }
        return try body(key)
    }

    static func encrypt(_ plaintext: [UInt8], to spki: [UInt8]) throws -> [UInt8] {
        try withPublicKey(spki) { key in
            guard let context = EVP_PKEY_CTX_new_from_pkey(nil, key, nil) else { throw BenchFailure("EVP_PKEY_CTX_new_from_pkey") }
            defer { EVP_PKEY_CTX_free(context) }
            guard EVP_PKEY_encrypt_init(context) == 1, EVP_PKEY_CTX_set_rsa_padding(context, RSA_PKCS1_PADDING) == 1 else {
                throw BenchFailure("cannot set up RSA PKCS#1 v1.5 encryption")
            }
            var length = 0
            guard EVP_PKEY_encrypt(context, nil, &length, plaintext, plaintext.count) == 1 else { throw BenchFailure("EVP_PKEY_encrypt (size)") }
            var ciphertext = [UInt8](repeating: 0, count: length)
            guard EVP_PKEY_encrypt(context, &ciphertext, &length, plaintext, plaintext.count) == 1 else { throw BenchFailure("EVP_PKEY_encrypt") }
            return Array(ciphertext.prefix(length))
        }
    }

    static func verify(signature: [UInt8], digest: [UInt8], with spki: [UInt8]) throws -> Bool {
        try withPublicKey(spki) { key in
            guard let context = EVP_PKEY_CTX_new_from_pkey(nil, key, nil) else { throw BenchFailure("EVP_PKEY_CTX_new_from_pkey") }
            defer { EVP_PKEY_CTX_free(context) }
            guard EVP_PKEY_verify_init(context) == 1, EVP_PKEY_CTX_set_rsa_padding(context, RSA_PKCS1_PADDING) == 1,
                  EVP_PKEY_CTX_set_signature_md(context, EVP_sha256()) == 1 else {
                throw BenchFailure("cannot set up RSA PKCS#1 v1.5 verification")
            }
            return EVP_PKEY_verify(context, signature, signature.count, digest, digest.count) == 1
        }
    }
}

func randomBytes(_ count: Int) -> [UInt8] {
    var generator = SystemRandomNumberGenerator()
    return (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
}

func run(_ options: BenchOptions) throws {
    let factory = TPMKeyFactory(tcti: options.tcti)
    try factory.probe()  // Warm-up, untimed: loads the TCTI module and libtss2 once.

    var samples: [String: [Double]] = ["create": [], "sign": [], "decrypt": []]
    func record(_ operation: String, _ milliseconds: Double) {
        samples[operation, default: []].append(milliseconds)
        if options.raw { print("\(operation) \(String(format: "%.3f", milliseconds))") }
    }

    for _ in 0..<options.iterations {
        let (key, createTime) = try measure { try factory.createKey(spec: KeySpec(rsaBits: options.bits)) }
        record("create", createTime)

        let digest = randomBytes(32)  // a SHA-256 digest
        let (signature, signTime) = try measure { try key.sign(digest: digest, algorithm: .sha256) }
        record("sign", signTime)
        guard try PublicKeyOperations.verify(signature: signature, digest: digest, with: key.subjectPublicKeyInfo) else {
            throw BenchFailure("the TPM's signature does not verify with the key's public key")
        }

        let secret = randomBytes(32)  // an AES-256 content-encryption key, as in a CMS envelope
        let ciphertext = try PublicKeyOperations.encrypt(secret, to: key.subjectPublicKeyInfo)
        let (plaintext, decryptTime) = try measure { try key.decrypt(ciphertext) }
        record("decrypt", decryptTime)
        guard plaintext == secret else { throw BenchFailure("the TPM decrypted something other than the plaintext") }
    }

    guard !options.raw else { return }
    print("TPMKeys via \(options.tcti), RSA-\(options.bits), \(options.iterations) iterations (milliseconds)")
    print("operation   median      min      max")
    for operation in ["create", "sign", "decrypt"] {
        let values = samples[operation] ?? []
        print(operation.padding(toLength: 9, withPad: " ", startingAt: 0)
              + String(format: "%9.2f%9.2f%9.2f", median(values), values.min() ?? 0, values.max() ?? 0))
    }
}

do {
    try run(try BenchOptions(arguments: Array(CommandLine.arguments.dropFirst())))
} catch {
    FileHandle.standardError.write(Data("TPMKeysBench: \(error)\n".utf8))
    exit(1)
}
