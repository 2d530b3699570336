import Foundation
import Logging
import KeyInterface
import TPMKeys

/// Creates and loads enrollment keys according to the profile's `key_storage`.
struct KeyProvider {
    let policy: KeyStoragePolicy
    let tcti: String
    let algorithm: KeyAlgorithm
    let logger: Logger

    private var spec: KeySpec {
        switch algorithm {
        case .rsa(let bits): return KeySpec(rsaBits: bits)
        case .ec(let curve): return KeySpec(curve: curve)
        }
    }

    private var creationNote: String {
        if case .rsa = algorithm { return "creating an \(algorithm) key in the TPM (a hardware TPM can take several seconds)" }
        return "creating an \(algorithm) key in the TPM"
    }

    /// A new key: in the TPM when policy requires or prefers it (falling back
    /// to software, loudly, only under `tpm-preferred`).
    func createKey() throws -> any EnrollmentKey {
        switch policy {
        case .software:
            return try SoftwareKey.generate(spec)
        case .tpm:
            logger.info("\(creationNote)", metadata: ["tcti": "\(tcti)"])
            do {
                return try TPMKeyFactory(tcti: tcti).createKey(spec: spec)
            } catch {
                throw AgentError(.key, "key_storage = \"tpm\" but no key could be created in the TPM at \(tcti): \(error)")
            }
        case .tpmPreferred:
            let factory = TPMKeyFactory(tcti: tcti)
            do {
                try factory.probe()
            } catch {
                logger.warning("no usable TPM at \(tcti) (\(error)); using a SOFTWARE key because key_storage = \"tpm-preferred\"; the private key will be a file on disk")
                return try SoftwareKey.generate(spec)
            }
            logger.info("\(creationNote)", metadata: ["tcti": "\(tcti)"])
            do {
                return try factory.createKey(spec: spec)
            } catch {
                // A TPM is present: the fallback is only for hosts without one.
                throw AgentError(.key, "key_storage = \"tpm-preferred\": the TPM at \(tcti) answered but could not create the key (no software fallback when a TPM is present): \(error)")
            }
        }
    }

    /// The temporary RSA key that signs the pkiMessage of an EC key's request and opens the
    /// reply (RFC 8894 §2.3); nil when the new key can do that itself. In software whatever
    /// `key_storage` says: it never certifies anything, and lives only as long as the request.
    func envelopeKey(for newKey: any EnrollmentKey) throws -> (any EnrollmentKey)? {
        newKey.algorithm.canDecryptEnvelopes ? nil : try SoftwareKey.generate(KeySpec(rsaBits: 2048))
    }

    /// Loads a stored key: a `TSS2 PRIVATE KEY` is a TPM key, anything else a PEM software key.
    func loadKey(pem: String) throws -> any EnrollmentKey {
        if KeyFileKind(pem: pem) == .tpm {
            return try TPMKeyFactory.load(pem: pem, tcti: tcti)
        }
        return try SoftwareKey(pem: pem)
    }
}

/// Whether `reuse_key = true` may keep a stored key for the next certificate.
enum KeyReuseDecision: Equatable {
    /// Renew with the stored key. `warning` is set when that key is a software
    /// key kept only because no TPM answers (log it as a warning).
    case reuse(warning: String?)
    /// Create a new key despite `reuse_key`; `reason` is for the log (a warning).
    case replace(reason: String)

    var mayReuse: Bool {
        if case .reuse = self { return true }
        return false
    }
}

extension KeyProvider {
    /// Whether the stored `key` may be reused under this profile's `key_storage`
    /// (see `KeyReuseRule`). Probes the TPM only for a software key under
    /// `tpm-preferred`.
    func reuseDecision(for key: any EnrollmentKey) -> KeyReuseDecision {
        if key.algorithm != algorithm {
            return .replace(reason: "the stored key is \(key.algorithm) and the profile asks for \(algorithm) (key_type, key_bits or ec_curve changed): creating a new key instead of reusing it")
        }
        return KeyReuseRule.decide(policy: policy, storedKey: key.storage, tcti: tcti) { [tcti] in
            do {
                try TPMKeyFactory(tcti: tcti).probe()
                return nil
            } catch {
                return "\(error)"
            }
        }
    }
}

/// The rule behind `reuse_key`: a key is reused only if the policy would
/// still put a new key where the stored one lives. Without it, a software key
/// from before `key_storage` changed to `tpm` would be renewed forever.
enum KeyReuseRule {
    /// - Parameter whyNoTPM: asks the TPM; nil when one answers, else why not.
    ///   Called only when the answer matters (a software key under `tpm-preferred`).
    static func decide(policy: KeyStoragePolicy, storedKey: KeyStorageKind, tcti: String,
                       whyNoTPM: () -> String?) -> KeyReuseDecision {
        switch (policy, storedKey) {
        case (_, .tpm), (.software, .software):
            return .reuse(warning: nil)
        case (.tpm, .software):
            return .replace(reason: "key_storage = \"tpm\" but the stored key is a SOFTWARE key (from before the policy changed?); creating a new key in the TPM at \(tcti) instead of reusing it")
        case (.tpmPreferred, .software):
            if let cause = whyNoTPM() {
                return .reuse(warning: "reusing the stored SOFTWARE key: key_storage = \"tpm-preferred\" and no usable TPM at \(tcti) (\(cause)); the private key stays a file on disk")
            }
            return .replace(reason: "key_storage = \"tpm-preferred\" and a TPM answers at \(tcti): the stored SOFTWARE key is replaced by a new TPM key instead of being reused")
        }
    }
}

/// Tells a TSS2 key file from a software one by its PEM label.
enum KeyFileKind: String {
    case tpm, software
    init(pem: String) {
        self = pem.contains("-----BEGIN TSS2 PRIVATE KEY-----") ? .tpm : .software
    }
}
