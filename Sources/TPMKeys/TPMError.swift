import CTSS2
import KeyInterface

/// An error from a TPM-backed key: what failed, on which TCTI, the decoded
/// TSS2 response code, and what a person can do about it.
///
/// Equality compares the `code` only, so callers and tests can match on the
/// kind of failure without depending on the wording.
public struct TPMError: EnrollmentKeyError, Equatable, Sendable {
    /// The kind of failure.
    public enum Code: String, Sendable, Equatable {
        /// No TPM answers on the TCTI (device node missing, swtpm not running, bad TCTI string).
        case tpmUnavailable
        /// The TPM device exists but this process may not open it.
        case permissionDenied
        /// The TPM is in dictionary-attack lockout.
        case lockout
        /// The TPM does not support the requested algorithm, key size or digest.
        case unsupportedAlgorithm
        /// The TPM has no free transient object slot.
        case objectMemoryFull
        /// A `TSS2 PRIVATE KEY` file (or the TPM blobs inside it) is malformed or unsupported.
        case invalidKeyFile
        /// The key blob does not belong to this TPM or to its storage root key.
        case keyNotLoadable
        /// The key was not generated inside a TPM (imported, or duplicable): its
        /// private half may exist outside the TPM, so the agent does not use it.
        case keyNotCreatedInTPM
        /// The key needs an authorization value or policy, which the agent does not support.
        case authorizationRequired
        /// The caller passed a value the operation cannot use (digest length, ciphertext size, key size).
        case invalidInput
        /// RSA decryption failed: the ciphertext was not encrypted to this key or is malformed.
        case decryptionFailed
        /// Any other TPM or TSS failure; the message carries the decoded response code.
        case tpmFailure
    }

    /// The kind of failure.
    public var code: Code
    /// A sentence a person can act on; includes the TCTI and decoded response code when known.
    public var message: String
    /// The TCTI configuration string in use, when the failure involved a TPM.
    public var tcti: String?
    /// The raw TSS2 response code, when the failure came from tpm2-tss or the TPM.
    public var responseCode: UInt32?

    public init(_ code: Code, _ message: String, tcti: String? = nil, responseCode: UInt32? = nil) {
        self.code = code
        self.message = message
        self.tcti = tcti
        self.responseCode = responseCode
    }

    public var description: String { message }

    public static func == (lhs: TPMError, rhs: TPMError) -> Bool { lhs.code == rhs.code }
}

extension TPMError {
    /// Builds an error for a failed tpm2-tss call, choosing the code and advice
    /// from the response code: `operation` names the call (e.g. "Esys_Create").
    static func fromResponseCode(_ rc: TSS2_RC, operation: String, tcti: String, context: String? = nil) -> TPMError {
        let response = TSS2ResponseCode(rc)
        let (code, advice) = response.explanation
        var text = "\(context.map { $0 + ": " } ?? "")\(operation) failed on TCTI \"\(tcti)\" with \(response)"
        if let advice { text += ": \(advice)" }
        return TPMError(code, text, tcti: tcti, responseCode: rc)
    }
}

/// A TSS2 response code with its layer and TPM error number split out, and
/// the human text from `Tss2_RC_Decode`.
struct TSS2ResponseCode: CustomStringConvertible, Equatable {
    let raw: TSS2_RC

    init(_ raw: TSS2_RC) { self.raw = raw }

    /// The layer the code comes from (TPM, TCTI, ESYS, ...), bits 16..23.
    var layer: TSS2_RC { raw & enroll_TSS2_RC_LAYER_MASK }

    /// True when the code was produced by the TPM itself (directly or relayed by a resource manager).
    var isFromTPM: Bool { layer == enroll_TSS2_TPM_RC_LAYER || layer == enroll_TSS2_RESMGR_TPM_RC_LAYER }

    /// The TPM error number without the handle/session/parameter index of
    /// format-1 codes, so it compares equal to `TPM2_RC_*` constants.
    var tpmErrorNumber: TPM2_RC? {
        guard isFromTPM else { return nil }
        let code = raw & 0xFFFF
        if code & enroll_TPM2_RC_FMT1 != 0 {
            return enroll_TPM2_RC_FMT1 | (code & 0x3F)
        }
        return code & 0xFFF // drop nothing but the layer: keeps VER1 and WARN bits
    }

    /// The base code of TSS (non-TPM) layers, comparable to `TSS2_BASE_RC_*`.
    var baseCode: TSS2_RC? { isFromTPM ? nil : raw & 0xFFFF }

    /// True for "try again" warnings: the command may simply be re-sent.
    var isRetryable: Bool {
        guard let n = tpmErrorNumber else { return false }
        return n == enroll_TPM2_RC_RETRY || n == enroll_TPM2_RC_YIELDED || n == enroll_TPM2_RC_TESTING
    }

    var description: String {
        let hex = "0x" + String(raw, radix: 16)
        guard let decoded = Tss2_RC_Decode(raw) else { return hex }
        return "\(hex) (\(String(cString: decoded)))"
    }

    /// The error code and the advice a person acts on, for the codes worth explaining.
    var explanation: (TPMError.Code, String?) {
        if let n = tpmErrorNumber {
            switch n {
            case enroll_TPM2_RC_LOCKOUT:
                return (.lockout, "the TPM is in dictionary-attack lockout; wait for the lockout interval to pass or reset it with `tpm2_dictionarylockout --clear-lockout` (needs the lockout authorization)")
            case enroll_TPM2_RC_OBJECT_MEMORY, enroll_TPM2_RC_MEMORY, enroll_TPM2_RC_OBJECT_HANDLES:
                return (.objectMemoryFull, "TPM object memory full: a transient handle was left loaded; use the resource-managed device (device:/dev/tpmrm0), or flush transient objects with `tpm2_flushcontext -t` and retry")
            case enroll_TPM2_RC_SESSION_MEMORY:
                return (.objectMemoryFull, "TPM session memory full: flush sessions with `tpm2_flushcontext -s` and retry")
            case enroll_TPM2_RC_KEY_SIZE:
                return (.unsupportedAlgorithm, "this TPM does not support the requested RSA key size; use key_bits = 2048")
            case enroll_TPM2_RC_ASYMMETRIC, enroll_TPM2_RC_SCHEME:
                return (.unsupportedAlgorithm, "this TPM does not support the requested algorithm or scheme")
            case enroll_TPM2_RC_HASH:
                return (.unsupportedAlgorithm, "this TPM does not support the requested digest algorithm; use SHA-256")
            case enroll_TPM2_RC_AUTH_FAIL, enroll_TPM2_RC_BAD_AUTH:
                return (.authorizationRequired, "the TPM rejected the authorization value; the key or its parent needs a password, which the agent does not support")
            case enroll_TPM2_RC_INTEGRITY, enroll_TPM2_RC_KEY:
                return (.keyNotLoadable, "the key blob was not created by this TPM under this storage root key (different machine, cleared TPM, or a different parent); enroll a new key")
            case enroll_TPM2_RC_HIERARCHY, enroll_TPM2_RC_DISABLED:
                return (.tpmFailure, "the owner hierarchy is disabled; enable it in the firmware setup or with `tpm2_hierarchycontrol`")
            case enroll_TPM2_RC_INITIALIZE:
                return (.tpmUnavailable, "the TPM was not started (TPM2_Startup); for swtpm pass --flags startup-clear")
            case enroll_TPM2_RC_FAILURE:
                return (.tpmFailure, "the TPM is in failure mode; reboot the machine (or restart swtpm)")
            case enroll_TPM2_RC_RETRY, enroll_TPM2_RC_YIELDED, enroll_TPM2_RC_TESTING, enroll_TPM2_RC_NV_RATE:
                return (.tpmFailure, "the TPM stayed busy after several retries; try again later")
            default:
                return (.tpmFailure, nil)
            }
        }
        switch baseCode {
        case enroll_TSS2_BASE_RC_IO_ERROR, enroll_TSS2_BASE_RC_NO_CONNECTION:
            return (.tpmUnavailable, "the connection to the TPM failed; check the TCTI and that the TPM (or swtpm) is running")
        case enroll_TSS2_BASE_RC_NOT_PERMITTED:
            return (.permissionDenied, "permission denied: run as root or add the service user to the tss group")
        default:
            return (.tpmFailure, nil)
        }
    }
}

extension TPMError {
    /// Only a ciphertext that is not for this key, or input the key cannot take, is the
    /// input's fault; everything else (no TPM, lockout, a key the TPM refuses) is the key's.
    public var keyFailure: KeyFailure {
        switch code {
        case .decryptionFailed, .invalidInput: return .inputRejected
        default: return .keyUnusable
        }
    }
}
