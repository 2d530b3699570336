import CTSS2
import Foundation

/// One ESYS context on one TCTI, open only for the duration of one operation.
///
/// swtpm (and /dev/tpm0) serve one client at a time and have no resource
/// manager: a context held open blocks every other client, and a transient
/// object left loaded eats one of about three object slots. So every
/// operation opens a connection with `TPMConnection.with(tcti:)`, every
/// transient it creates or loads is recorded and flushed when the operation
/// ends — on success and on every error path — and the context is finalized.
final class TPMConnection {
    let tcti: TPMTCTIConfig
    private var tctiContext: OpaquePointer?
    private var esys: OpaquePointer?
    /// Transient objects created or loaded through this connection, flushed at close.
    private var transients: [ESYS_TR] = []

    /// ESYS contexts are not thread-safe and a non-resource-managed TPM has
    /// almost no object memory: operations within this process take turns.
    private static let operationLock = NSLock()

    /// How often a command answered with RETRY / YIELDED / TESTING is re-sent
    /// on top of the re-submissions ESYS already does.
    private static let retryAttempts = 3

    /// Opens a connection to `tcti`, runs `body`, then flushes every
    /// transient it loaded and closes the context, whatever happens.
    static func with<T>(tcti: String, _ body: (TPMConnection) throws -> T) throws -> T {
        operationLock.lock()
        defer { operationLock.unlock() }
        let connection = try TPMConnection(tcti: TPMTCTIConfig(tcti))
        defer { connection.close() }
        if !connection.tcti.isResourceManaged {
            try connection.flushLeftoverTransients()
        }
        return try body(connection)
    }

    private init(tcti: TPMTCTIConfig) throws {
        self.tcti = tcti
        if let problem = tcti.diagnoseUnreachable() { throw problem }

        var tctiContext: OpaquePointer?
        let rc = Tss2_TctiLdr_Initialize(tcti.raw, &tctiContext)
        guard rc == 0, tctiContext != nil else {
            throw Self.unreachableError(tcti: tcti, rc: rc, operation: "Tss2_TctiLdr_Initialize")
        }
        self.tctiContext = tctiContext

        var esys: OpaquePointer?
        let esysRC = Esys_Initialize(&esys, tctiContext, nil)
        guard esysRC == 0, esys != nil else {
            Tss2_TctiLdr_Finalize(&self.tctiContext)
            throw Self.unreachableError(tcti: tcti, rc: esysRC, operation: "Esys_Initialize")
        }
        self.esys = esys
    }

    private static func unreachableError(tcti: TPMTCTIConfig, rc: TSS2_RC, operation: String) -> TPMError {
        var error = TPMError.fromResponseCode(rc, operation: operation, tcti: tcti.raw, context: "TPM unavailable")
        if error.code == .tpmFailure {
            error.code = .tpmUnavailable
            error.message += ": check the tcti setting (e.g. device:/dev/tpmrm0) and that the module libtss2-tcti-\(tcti.name) is installed"
        }
        return error
    }

    /// Flushes what this connection loaded, then finalizes ESYS and the TCTI.
    private func close() {
        guard let context = esys else { return }
        for handle in transients.reversed() {
            _ = Esys_FlushContext(context, handle)
        }
        transients.removeAll()
        Esys_Finalize(&esys)
        Tss2_TctiLdr_Finalize(&tctiContext)
    }

    // MARK: - Calls

    /// Runs one ESYS call, re-sending it when the TPM asks to retry, and
    /// turns a failure into a `TPMError` naming the call and the TCTI.
    func call(_ operation: String, context: String? = nil, _ body: (OpaquePointer) -> TSS2_RC) throws {
        guard let esys else {
            throw TPMError(.tpmFailure, "\(operation) called on a closed TPM connection (TCTI \"\(tcti.raw)\")", tcti: tcti.raw)
        }
        var attempt = 0
        while true {
            let rc = body(esys)
            if rc == 0 { return }
            if TSS2ResponseCode(rc).isRetryable && attempt < Self.retryAttempts {
                attempt += 1
                Thread.sleep(forTimeInterval: 0.05 * Double(attempt))
                continue
            }
            throw TPMError.fromResponseCode(rc, operation: operation, tcti: tcti.raw, context: context)
        }
    }

    /// Records a transient object so that it is flushed when the connection closes.
    func track(_ handle: ESYS_TR) { transients.append(handle) }

    /// Flushes a transient object now (its slot is free for the next one).
    func flush(_ handle: ESYS_TR) {
        guard let esys, let index = transients.lastIndex(of: handle) else { return }
        transients.remove(at: index)
        _ = Esys_FlushContext(esys, handle)
    }

    // MARK: - Capabilities

    /// Handles currently present in the range that starts at `first`
    /// (one handle type: transient, persistent, ...).
    func handles(from first: TPM2_HANDLE, maxCount: UInt32 = enroll_TPM2_MAX_CAP_HANDLES) throws -> [TPM2_HANDLE] {
        var data: UnsafeMutablePointer<TPMS_CAPABILITY_DATA>?
        defer { Esys_Free(data) }
        var more: TPMI_YES_NO = 0
        try call("Esys_GetCapability(TPM2_CAP_HANDLES)") {
            Esys_GetCapability($0, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                               TPM2_CAP_HANDLES, first, maxCount, &more, &data)
        }
        guard let list = data?.pointee.data.handles else { return [] }
        let count = min(Int(list.count), Int(enroll_TPM2_MAX_CAP_HANDLES))
        return withUnsafeBytes(of: list.handle) { raw in
            (0..<count).map { raw.load(fromByteOffset: $0 * MemoryLayout<TPM2_HANDLE>.size, as: TPM2_HANDLE.self) }
        }
    }

    /// A cheap command that proves the TPM answers.
    func readManufacturer() throws {
        var data: UnsafeMutablePointer<TPMS_CAPABILITY_DATA>?
        defer { Esys_Free(data) }
        var more: TPMI_YES_NO = 0
        try call("Esys_GetCapability(TPM2_CAP_TPM_PROPERTIES)") {
            Esys_GetCapability($0, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                               TPM2_CAP_TPM_PROPERTIES, enroll_TPM2_PT_MANUFACTURER, 1, &more, &data)
        }
    }

    /// Asks the TPM whether it supports `parameters` (TPM2_TestParms).
    /// Returns the TPM's response code: 0 when supported.
    func testParameters(_ parameters: TPMT_PUBLIC_PARMS) -> TSS2_RC {
        guard let esys else { return TSS2_RC(enroll_TSS2_BASE_RC_BAD_VALUE) }
        var parameters = parameters
        return Esys_TestParms(esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &parameters)
    }

    /// Flushes transient objects that an earlier client left loaded (a crash,
    /// a killed process). Only called when no resource manager is in between:
    /// then the TPM serves us alone and every transient is a leftover.
    private func flushLeftoverTransients() throws {
        for handle in try handles(from: enroll_TPM2_TRANSIENT_FIRST) {
            // Best effort: an object ESYS cannot describe (e.g. a hash
            // sequence) is left alone; a later "object memory full" error
            // then explains what to do.
            var object: ESYS_TR = ESYS_TR_NONE
            guard (try? call("Esys_TR_FromTPMPublic", { Esys_TR_FromTPMPublic($0, handle, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &object) })) != nil else {
                continue
            }
            try call("Esys_FlushContext(0x\(String(handle, radix: 16)))", context: "flushing a transient object an earlier client left loaded") {
                Esys_FlushContext($0, object)
            }
        }
    }

    // MARK: - Objects

    /// A persistent object's ESYS handle, or nil when nothing lives at `handle`.
    func persistentObject(at handle: TPM2_HANDLE) throws -> ESYS_TR? {
        guard try handles(from: handle, maxCount: 1).first == handle else { return nil }
        var object: ESYS_TR = ESYS_TR_NONE
        try call("Esys_TR_FromTPMPublic(0x\(String(handle, radix: 16)))") {
            Esys_TR_FromTPMPublic($0, handle, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &object)
        }
        return object
    }

    /// The public area of a loaded object.
    func readPublic(_ object: ESYS_TR) throws -> TPM2B_PUBLIC {
        var out: UnsafeMutablePointer<TPM2B_PUBLIC>?
        defer { Esys_Free(out) }
        try call("Esys_ReadPublic") {
            Esys_ReadPublic($0, object, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &out, nil, nil)
        }
        guard let out else { throw missingOutput("Esys_ReadPublic") }
        return out.pointee
    }

    /// Creates a primary object in the owner hierarchy (empty owner auth);
    /// the transient handle is tracked.
    func createPrimary(template: TPM2B_PUBLIC, context: String) throws -> ESYS_TR {
        var sensitive = TPM2B_SENSITIVE_CREATE()
        var template = template
        var outsideInfo = TPM2B_DATA()
        var pcrs = TPML_PCR_SELECTION()
        var object: ESYS_TR = ESYS_TR_NONE
        try call("Esys_CreatePrimary", context: context) {
            Esys_CreatePrimary($0, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                               &sensitive, &template, &outsideInfo, &pcrs,
                               &object, nil, nil, nil, nil)
        }
        track(object)
        return object
    }

    /// Creates an ordinary (child) key under `parent` with an empty auth value.
    func create(parent: ESYS_TR, template: TPM2B_PUBLIC, context: String) throws -> (private: TPM2B_PRIVATE, public: TPM2B_PUBLIC) {
        var sensitive = TPM2B_SENSITIVE_CREATE()
        var template = template
        var outsideInfo = TPM2B_DATA()
        var pcrs = TPML_PCR_SELECTION()
        var outPrivate: UnsafeMutablePointer<TPM2B_PRIVATE>?
        var outPublic: UnsafeMutablePointer<TPM2B_PUBLIC>?
        defer {
            Esys_Free(outPrivate)
            Esys_Free(outPublic)
        }
        try call("Esys_Create", context: context) {
            Esys_Create($0, parent, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                        &sensitive, &template, &outsideInfo, &pcrs,
                        &outPrivate, &outPublic, nil, nil, nil)
        }
        guard let outPrivate, let outPublic else { throw missingOutput("Esys_Create") }
        return (outPrivate.pointee, outPublic.pointee)
    }

    /// Loads a key blob under `parent`; the transient handle is tracked.
    func load(parent: ESYS_TR, private keyPrivate: TPM2B_PRIVATE, public keyPublic: TPM2B_PUBLIC) throws -> ESYS_TR {
        var keyPrivate = keyPrivate
        var keyPublic = keyPublic
        var object: ESYS_TR = ESYS_TR_NONE
        try call("Esys_Load", context: "loading the key from its TSS2 key file") {
            Esys_Load($0, parent, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &keyPrivate, &keyPublic, &object)
        }
        track(object)
        return object
    }

    /// RSASSA-PKCS1-v1_5 signature over a precomputed digest.
    func signRSASSA(key: ESYS_TR, digest: [UInt8], hashAlgorithm: TPM2_ALG_ID) throws -> [UInt8] {
        var scheme = TPMT_SIG_SCHEME()
        scheme.scheme = TPM2_ALG_RSASSA
        scheme.details.rsassa.hashAlg = hashAlgorithm
        let sig = try sign(key: key, digest: digest, scheme: scheme, context: "signing with the TPM key").signature.rsassa.sig
        return TSS2Buffer.bytes(of: sig.buffer, count: Int(sig.size))
    }

    /// ECDSA signature over a precomputed digest: the TPM's r and s, unsigned big-endian.
    func signECDSA(key: ESYS_TR, digest: [UInt8], hashAlgorithm: TPM2_ALG_ID) throws -> (r: [UInt8], s: [UInt8]) {
        var scheme = TPMT_SIG_SCHEME()
        scheme.scheme = TPM2_ALG_ECDSA
        scheme.details.ecdsa.hashAlg = hashAlgorithm
        let ecdsa = try sign(key: key, digest: digest, scheme: scheme, context: "signing with the TPM key (ECDSA)").signature.ecdsa
        return (TSS2Buffer.bytes(of: ecdsa.signatureR.buffer, count: Int(ecdsa.signatureR.size)),
                TSS2Buffer.bytes(of: ecdsa.signatureS.buffer, count: Int(ecdsa.signatureS.size)))
    }

    /// TPM2_Sign of a precomputed digest with `scheme`; the signature copied out of ESYS's memory.
    private func sign(key: ESYS_TR, digest: [UInt8], scheme: TPMT_SIG_SCHEME, context: String) throws -> TPMT_SIGNATURE {
        var tpmDigest = TPM2B_DIGEST()
        guard TSS2Buffer.copy(digest, into: &tpmDigest.buffer) else {
            throw TPMError(.invalidInput, "a \(digest.count)-byte digest does not fit a TPM2B_DIGEST", tcti: tcti.raw)
        }
        tpmDigest.size = UInt16(digest.count)
        var scheme = scheme
        // A NULL ticket: the key is not restricted, so the TPM signs any digest.
        var validation = TPMT_TK_HASHCHECK()
        validation.tag = TPM2_ST_HASHCHECK
        validation.hierarchy = TPM2_RH_NULL
        var signature: UnsafeMutablePointer<TPMT_SIGNATURE>?
        defer { Esys_Free(signature) }
        try call("Esys_Sign", context: context) {
            Esys_Sign($0, key, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &tpmDigest, &scheme, &validation, &signature)
        }
        guard let signature else { throw missingOutput("Esys_Sign") }
        return signature.pointee
    }

    /// RSAES-PKCS1-v1_5 decryption with an empty label.
    func decryptRSAES(key: ESYS_TR, ciphertext: [UInt8]) throws -> [UInt8] {
        var input = TPM2B_PUBLIC_KEY_RSA()
        guard TSS2Buffer.copy(ciphertext, into: &input.buffer) else {
            throw TPMError(.invalidInput, "a \(ciphertext.count)-byte ciphertext is larger than any RSA key the TPM holds", tcti: tcti.raw)
        }
        input.size = UInt16(ciphertext.count)
        var scheme = TPMT_RSA_DECRYPT()
        scheme.scheme = TPM2_ALG_RSAES
        var label = TPM2B_DATA()
        var message: UnsafeMutablePointer<TPM2B_PUBLIC_KEY_RSA>?
        defer { Esys_Free(message) }
        try call("Esys_RSA_Decrypt", context: "decrypting with the TPM key") {
            Esys_RSA_Decrypt($0, key, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &input, &scheme, &label, &message)
        }
        guard let message else { throw missingOutput("Esys_RSA_Decrypt") }
        return TSS2Buffer.bytes(of: message.pointee.buffer, count: Int(message.pointee.size))
    }

    private func missingOutput(_ operation: String) -> TPMError {
        TPMError(.tpmFailure, "\(operation) succeeded on TCTI \"\(tcti.raw)\" but returned no output", tcti: tcti.raw)
    }
}
