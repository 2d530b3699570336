import CTSS2
import KeyInterface

/// Creates and loads TPM-backed enrollment keys on one TCTI.
public struct TPMKeyFactory: Sendable {
    /// The kernel's resource-managed TPM device.
    public static let defaultTCTI = "device:/dev/tpmrm0"

    /// RSA key sizes the agent creates.
    public static let supportedKeyBits = [2048, 3072]

    /// The TCTI configuration string (`device:/dev/tpmrm0`, `swtpm:path=...`, `swtpm:host=...,port=...`).
    public let tcti: String

    public init(tcti: String = TPMKeyFactory.defaultTCTI) {
        self.tcti = tcti
    }

    /// Checks cheaply that a TPM answers on the TCTI (for the `tpm-preferred`
    /// fallback decision). The error names the TCTI and the cause.
    public func probe() throws {
        try TPMConnection.with(tcti: tcti) { try $0.readManufacturer() }
    }

    /// Creates a new key under the storage root key: RSA (3072 only when the TPM says it
    /// supports it; seconds on a hardware TPM, for the prime search) or EC on a curve
    /// the TPM supports (milliseconds).
    public func createKey(spec: KeySpec) throws -> TPMKey {
        let bits: Int
        switch spec.algorithm {
        case .ec(let curve): return try createECKey(curve: curve)
        case .rsa(let rsaBits): bits = rsaBits
        }
        guard Self.supportedKeyBits.contains(bits) else {
            throw TPMError(.invalidInput, "RSA-\(bits) is not a supported key size; use key_bits = 2048 or 3072")
        }
        let keyFile: TSS2PrivateKeyFile = try TPMConnection.with(tcti: tcti) { connection in
            try requireSupport(forRSABits: bits, connection)
            var parent = try TPMStorageRootKey.parentForNewKey(connection)
            let created: (private: TPM2B_PRIVATE, public: TPM2B_PUBLIC)
            do {
                created = try createEnrollmentKey(bits: bits, under: parent.object, connection)
            } catch let error as TPMError where error.code == .authorizationRequired
                        && parent.fileHandle != TPMStorageRootKey.ownerHierarchy {
                // A persistent SRK with the right template but a password. It
                // has noDA (the template says so), so this failed try did not
                // count toward lockout; the re-created primary needs no password.
                parent = (try TPMStorageRootKey.ownerPrimary(connection), TPMStorageRootKey.ownerHierarchy)
                created = try createEnrollmentKey(bits: bits, under: parent.object, connection)
            }
            return TSS2PrivateKeyFile(emptyAuth: true, parent: parent.fileHandle,
                                      publicBlob: try TSS2Marshalling.marshal(created.public),
                                      privateBlob: try TSS2Marshalling.marshal(created.private))
        }
        return try TPMKey(keyFile: keyFile, tcti: tcti)
    }

    /// An EC signing key under the storage root key, after TPM2_TestParms says the TPM has
    /// the curve (P-384 is optional in the PC Client profile; many TPMs lack it).
    private func createECKey(curve: EllipticCurve) throws -> TPMKey {
        let keyFile: TSS2PrivateKeyFile = try TPMConnection.with(tcti: tcti) { connection in
            let rc = connection.testParameters(TPMKeyTemplates.enrollmentECKeyTestParameters(curve: curve))
            if rc != 0 {
                let cause = TPMError.fromResponseCode(rc, operation: "Esys_TestParms", tcti: tcti)
                guard TSS2ResponseCode(rc).isFromTPM else { throw cause }
                let advice = curve == .p384 ? "use ec_curve = \"P-256\", which every TPM 2.0 has" : "use software key storage"
                throw TPMError(.unsupportedAlgorithm, "this TPM does not support EC keys on \(curve.rawValue); \(advice) (\(cause.message))",
                               tcti: tcti, responseCode: cause.responseCode)
            }
            let template = TPMKeyTemplates.enrollmentECKey(curve: curve)
            let context = "creating an EC \(curve.rawValue) enrollment key"
            var parent = try TPMStorageRootKey.parentForNewKey(connection)
            let created: (private: TPM2B_PRIVATE, public: TPM2B_PUBLIC)
            do {
                created = try connection.create(parent: parent.object, template: template, context: context)
            } catch let error as TPMError where error.code == .authorizationRequired
                        && parent.fileHandle != TPMStorageRootKey.ownerHierarchy {
                // As for RSA keys: a noDA persistent SRK with a password; the re-created primary has none.
                parent = (try TPMStorageRootKey.ownerPrimary(connection), TPMStorageRootKey.ownerHierarchy)
                created = try connection.create(parent: parent.object, template: template, context: context)
            }
            return TSS2PrivateKeyFile(emptyAuth: true, parent: parent.fileHandle,
                                      publicBlob: try TSS2Marshalling.marshal(created.public),
                                      privateBlob: try TSS2Marshalling.marshal(created.private))
        }
        return try TPMKey(keyFile: keyFile, tcti: tcti)
    }

    private func createEnrollmentKey(bits: Int, under parent: ESYS_TR, _ connection: TPMConnection) throws -> (private: TPM2B_PRIVATE, public: TPM2B_PUBLIC) {
        do {
            return try connection.create(parent: parent,
                                         template: TPMKeyTemplates.enrollmentKey(bits: bits),
                                         context: "creating an RSA-\(bits) enrollment key")
        } catch let error as TPMError where error.code == .unsupportedAlgorithm {
            throw unsupportedKeySize(bits, cause: error)
        }
    }

    /// Reads a `TSS2 PRIVATE KEY` PEM. Does not touch the TPM: a key from
    /// another TPM is reported by its first operation. A key whose public
    /// area says it was not generated inside a TPM (imported) is refused here.
    public static func load(pem: String, tcti: String) throws -> TPMKey {
        try TPMKey(keyFile: TSS2PrivateKeyFile(pem: pem), tcti: tcti)
    }

    /// Asks the TPM (TPM2_TestParms) whether it can hold an RSA key of `bits`.
    func requireSupport(forRSABits bits: Int, _ connection: TPMConnection) throws {
        let rc = connection.testParameters(TPMKeyTemplates.enrollmentKeyTestParameters(bits: bits))
        guard rc != 0 else { return }
        let response = TSS2ResponseCode(rc)
        guard response.isFromTPM else {
            throw TPMError.fromResponseCode(rc, operation: "Esys_TestParms", tcti: tcti)
        }
        throw unsupportedKeySize(bits, cause: TPMError.fromResponseCode(rc, operation: "Esys_TestParms", tcti: tcti))
    }

    private func unsupportedKeySize(_ bits: Int, cause: TPMError) -> TPMError {
        let advice = bits == 2048 ? "use software key storage" : "use key_bits = 2048"
        return TPMError(.unsupportedAlgorithm,
                        "this TPM does not support RSA-\(bits); \(advice) (\(cause.message))",
                        tcti: tcti, responseCode: cause.responseCode)
    }
}
