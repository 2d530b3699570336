import Foundation

/// A TCTI configuration string as `Tss2_TctiLdr_Initialize` takes it
/// (`device:/dev/tpmrm0`, `swtpm:path=/run/swtpm.sock`,
/// `swtpm:host=127.0.0.1,port=2321`), split so that the agent can explain
/// why a TPM does not answer before tpm2-tss reports an opaque I/O error.
struct TPMTCTIConfig: Equatable {
    /// The device the kernel's resource manager serves; the agent's default.
    static let defaultDevice = "/dev/tpmrm0"

    let raw: String
    /// The TCTI module name ("device", "swtpm", "mssim", "tabrmd", ...).
    let name: String
    /// Everything after the first colon (module-specific).
    let conf: String

    init(_ raw: String) {
        self.raw = raw
        if let colon = raw.firstIndex(of: ":") {
            name = String(raw[..<colon])
            conf = String(raw[raw.index(after: colon)...])
        } else {
            name = raw
            conf = ""
        }
    }

    /// The device node, for the `device` TCTI.
    var devicePath: String? {
        guard name == "device" || name.hasPrefix("libtss2-tcti-device") else { return nil }
        return conf.isEmpty ? Self.defaultDevice : conf
    }

    /// The unix socket, for `swtpm:path=...`.
    var swtpmSocketPath: String? {
        guard name == "swtpm" || name.hasPrefix("libtss2-tcti-swtpm") else { return nil }
        for pair in conf.split(separator: ",") where pair.hasPrefix("path=") {
            return String(pair.dropFirst("path=".count))
        }
        return nil
    }

    /// True when something between us and the TPM virtualizes object slots
    /// (the kernel's /dev/tpmrm*, or tpm2-abrmd). Only without one may the
    /// agent flush transient objects it did not load: they are leftovers.
    var isResourceManaged: Bool {
        if name == "tabrmd" || name.hasPrefix("libtss2-tcti-tabrmd") { return true }
        if let path = devicePath { return (path as NSString).lastPathComponent.hasPrefix("tpmrm") }
        return false
    }

    /// A clear explanation when the TPM behind this TCTI cannot be reached,
    /// found by looking at the device node or socket; nil when nothing is
    /// visibly wrong (tpm2-tss then reports the cause).
    func diagnoseUnreachable() -> TPMError? {
        if let path = devicePath {
            guard FileManager.default.fileExists(atPath: path) else {
                return TPMError(.tpmUnavailable,
                                "TPM unavailable on TCTI \"\(raw)\": \(path) missing: no TPM, or the tpm_tis/tpm_crb driver is not loaded",
                                tcti: raw)
            }
            if access(path, R_OK | W_OK) != 0 && errno == EACCES {
                return TPMError(.permissionDenied,
                                "TPM unavailable on TCTI \"\(raw)\": permission denied on \(path): run as root or add the service user to the tss group",
                                tcti: raw)
            }
        }
        if let socket = swtpmSocketPath, !FileManager.default.fileExists(atPath: socket) {
            return TPMError(.tpmUnavailable,
                            "TPM unavailable on TCTI \"\(raw)\": swtpm socket \(socket) does not exist: is swtpm running?",
                            tcti: raw)
        }
        return nil
    }
}
