import Foundation

/// Facts about this machine offered to templates as `{{Hostname}}` and `{{MachineID}}`.
/// Injected (not read inside the renderer) so tests choose the values.
struct HostIdentity: Equatable, Sendable {
    var hostname: String?
    var machineID: String?

    static let builtInVariableNames = ["Hostname", "MachineID"]

    /// The running host: `gethostname(2)` and `/etc/machine-id` when readable.
    static func current(machineIDPath: String = "/etc/machine-id") -> HostIdentity {
        var buffer = [CChar](repeating: 0, count: 256)
        let hostname: String? = gethostname(&buffer, buffer.count - 1) == 0
            ? String(cString: buffer) : nil
        let machineID = (try? String(contentsOfFile: machineIDPath, encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
        return HostIdentity(hostname: hostname.flatMap { $0.isEmpty ? nil : $0 },
                            machineID: machineID.flatMap { $0.isEmpty ? nil : $0 })
    }

    /// The built-in variables that have a value.
    var variables: [String: String] {
        var variables: [String: String] = [:]
        variables["Hostname"] = hostname
        variables["MachineID"] = machineID
        return variables
    }
}
