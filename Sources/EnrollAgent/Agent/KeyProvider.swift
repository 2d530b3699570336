import Foundation
import Logging
import TPMKeys

/// Creates and loads enrollment keys according to the profile's `key_storage`.
struct KeyProvider {
    let policy: KeyStoragePolicy
    let tcti: String
    let bits: Int
    let logger: Logger

    /// A new key: in the TPM when policy requires or prefers it (falling back
    /// to software, loudly, only under `tpm-preferred`).
    func createKey() throws -> any EnrollmentKey {
        let spec = KeySpec(rsaBits: bits)
        switch policy {
        case .software:
            return try SoftwareKey.generate(spec)
        case .tpm:
            logger.info("creating an RSA-\(bits) key in the TPM (a hardware TPM can take several seconds)", metadata: ["tcti": "\(tcti)"])
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
            logger.info("creating an RSA-\(bits) key in the TPM (a hardware TPM can take several seconds)", metadata: ["tcti": "\(tcti)"])
            do {
                return try factory.createKey(spec: spec)
            } catch {
                // A TPM is present: the fallback is only for hosts without one.
                throw AgentError(.key, "key_storage = \"tpm-preferred\": the TPM at \(tcti) answered but could not create the key (no software fallback when a TPM is present): \(error)")
            }
        }
    }

    /// Loads a stored key: a `TSS2 PRIVATE KEY` is a TPM key, anything else a PEM software key.
    func loadKey(pem: String) throws -> any EnrollmentKey {
        if KeyFileKind(pem: pem) == .tpm {
            return try TPMKeyFactory.load(pem: pem, tcti: tcti)
        }
        return try SoftwareKey(pem: pem)
    }
}

/// Tells a TSS2 key file from a software one by its PEM label.
enum KeyFileKind: String {
    case tpm, software
    init(pem: String) {
        self = pem.contains("-----BEGIN TSS2 PRIVATE KEY-----") ? .tpm : .software
    }
}
