import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The built-in template variables: facts about this machine, read when a request is built.
///
/// The names are Intune's device variables where Intune has one (`DeviceName`,
/// `FullyQualifiedDomainName`, `SerialNumber`, `Device_Serial`, `WiFiMacAddress`); identity
/// variables (`UserPrincipalName`, `AAD_Device_ID`, `DeviceId`, …) are not facts of the host
/// and come from the management endpoint's `variables` or `[profile.variables]`.
enum HostVariable: String, CaseIterable, Sendable {
    /// The kernel host name (gethostname(2); `/proc/sys/kernel/hostname` in a fake tree).
    case hostname = "Hostname"
    /// The host name with its DNS domain: the host name when it has a dot, else the resolver's
    /// canonical name for it (as `hostname -f`).
    case fullyQualifiedDomainName = "FullyQualifiedDomainName"
    /// The host name up to the first dot (a Windows device's computer name is a short name).
    case deviceName = "DeviceName"
    /// `/etc/machine-id`.
    case machineID = "MachineID"
    /// The DMI product serial (`/sys/class/dmi/id/product_serial`, root only).
    case serialNumber = "SerialNumber"
    /// Intune's other spelling of `SerialNumber`.
    case deviceSerial = "Device_Serial"
    /// The first wireless interface's MAC address, 12 uppercase hex digits without separators.
    case wifiMACAddress = "WiFiMacAddress"
    /// The first wired Ethernet interface's MAC address, 12 uppercase hex digits without separators.
    case ethernetMACAddress = "EthernetMacAddress"
    /// `NAME` from os-release, e.g. "Debian GNU/Linux".
    case operatingSystem = "OperatingSystem"
    /// `VERSION_ID` from os-release, e.g. "12".
    case osVersion = "OSVersion"

    static var names: [String] { allCases.map(\.rawValue) }
}

/// Read access to this machine's files, relative to a root directory, so that tests can
/// hand the agent a fake `/sys`, `/proc` and `/etc` in a temporary directory.
protocol HostFacts: Sendable {
    /// The contents of a file, e.g. "/etc/machine-id"; throws `HostFactsError`.
    func contents(of path: String) throws -> String
    /// The names in a directory, e.g. "/sys/class/net"; throws `HostFactsError`.
    func entries(of directory: String) throws -> [String]
    /// Whether something exists at `path` (a sysfs attribute directory, a symlink).
    func exists(_ path: String) -> Bool
    /// The resolver's canonical name for `hostname` (getaddrinfo with AI_CANONNAME), or nil.
    func canonicalName(of hostname: String) -> String?
    /// The kernel's host name; throws `HostFactsError`.
    func kernelHostname() throws -> String
}

/// Why a host file could not be read: the path and errno.
struct HostFactsError: Error, Sendable {
    var path: String
    var errno: Int32
}

/// The host's files below `root` ("/" on a real host).
struct HostRoot: HostFacts {
    var root: String
    /// The resolver, replaceable because a test's fake tree has no DNS of its own.
    var resolver: @Sendable (String) -> String? = HostRoot.systemCanonicalName

    init(root: String = "/", resolver: @escaping @Sendable (String) -> String? = HostRoot.systemCanonicalName) {
        self.root = root
        self.resolver = resolver
    }

    private func full(_ path: String) -> String {
        root == "/" ? path : (root.hasSuffix("/") ? String(root.dropLast()) : root) + path
    }

    func contents(of path: String) throws -> String {
        let descriptor = open(full(path), O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw HostFactsError(path: path, errno: errno) }
        defer { close(descriptor) }
        // Host facts are small; a bound keeps a wrong path (a device) from being read whole.
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while bytes.count < 64 * 1024 {
            let count = read(descriptor, &buffer, buffer.count)
            if count < 0 {
                if errno == EINTR { continue }
                throw HostFactsError(path: path, errno: errno)
            }
            if count == 0 { break }
            bytes += buffer[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    func entries(of directory: String) throws -> [String] {
        // opendir(3) rather than FileManager, for the errno a message needs.
        guard let stream = opendir(full(directory)) else { throw HostFactsError(path: directory, errno: errno) }
        defer { closedir(stream) }
        var names: [String] = []
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != ".", name != ".." { names.append(name) }
        }
        return names
    }

    func exists(_ path: String) -> Bool {
        var status = stat()
        return lstat(full(path), &status) == 0
    }

    func canonicalName(of hostname: String) -> String? { resolver(hostname) }

    /// gethostname(2) on the real host: `/proc/sys` is hidden in the hardened unit
    /// (ProcSubset=pid), and the system call needs no file. A fake tree's file otherwise.
    func kernelHostname() throws -> String {
        guard root == "/" else { return try contents(of: HostIdentity.hostnamePath) }
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { throw HostFactsError(path: "gethostname(2)", errno: errno) }
        return String(cString: buffer)
    }

    /// getaddrinfo(3) with AI_CANONNAME, as `hostname -f` does.
    @Sendable static func systemCanonicalName(_ hostname: String) -> String? {
        var hints = addrinfo()
        hints.ai_flags = AI_CANONNAME
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(hostname, nil, &hints, &result) == 0, let result else { return nil }
        defer { freeaddrinfo(result) }
        return result.pointee.ai_canonname.map { String(cString: $0) }
    }
}

/// The built-in variables of this machine, read from `facts` when a template uses them, so
/// that a source the profile does not use (a root-only file) never stops an enrollment.
struct HostIdentity: Sendable {
    var facts: any HostFacts

    /// The running host.
    static func current() -> HostIdentity { HostIdentity(facts: HostRoot()) }

    static let builtInVariableNames = HostVariable.names

    static let dmiSerialPath = "/sys/class/dmi/id/product_serial"
    /// Built-ins whose source only root can read (the kernel makes product_serial 0400).
    static let rootOnlySources: [HostVariable: String] = [.serialNumber: dmiSerialPath, .deviceSerial: dmiSerialPath]
    static let machineIDPath = "/etc/machine-id"
    static let hostnamePath = "/proc/sys/kernel/hostname"
    static let networkInterfacesPath = "/sys/class/net"
    /// os-release(5): /etc/os-release, else /usr/lib/os-release.
    static let osReleasePaths = ["/etc/os-release", "/usr/lib/os-release"]

    /// Values firmware puts in the DMI serial when the vendor left it unset.
    static let placeholderSerials: Set<String> = [
        "to be filled by o.e.m.", "default string", "not specified", "not applicable", "system serial number",
        "none", "0", "00000000", "0123456789", "serial number", "n/a", "chassis serial number",
    ]

    /// The value of `variable` on this host; throws `HostVariableError` naming the source.
    func value(of variable: HostVariable) throws -> String {
        switch variable {
        case .hostname:
            return try hostname(for: variable)
        case .deviceName:
            let name = try hostname(for: variable)
            return String(name.prefix { $0 != "." })
        case .fullyQualifiedDomainName:
            let name = try hostname(for: variable)
            if name.contains(".") { return name }
            if let canonical = facts.canonicalName(of: name), canonical.contains("."), Self.isPlainText(canonical) {
                return canonical
            }
            throw HostVariableError(variable: variable, source: "the resolver (getaddrinfo AI_CANONNAME, as `hostname -f`)",
                                    problem: "gives no domain for the host name \"\(name)\"")
        case .machineID:
            return try singleLine(Self.machineIDPath, for: variable)
        case .serialNumber, .deviceSerial:
            let serial = try singleLine(Self.dmiSerialPath, for: variable, rootOnly: true)
            guard !Self.placeholderSerials.contains(serial.lowercased()) else {
                throw HostVariableError(variable: variable, source: Self.dmiSerialPath,
                                        problem: "holds no serial number (the firmware left \"\(serial)\")")
            }
            return serial
        case .wifiMACAddress:
            return try macAddress(wireless: true, for: variable)
        case .ethernetMACAddress:
            return try macAddress(wireless: false, for: variable)
        case .operatingSystem:
            return try osRelease("NAME", for: variable)
        case .osVersion:
            return try osRelease("VERSION_ID", for: variable)
        }
    }

    // MARK: - Sources

    private func hostname(for variable: HostVariable) throws -> String {
        let source = "the kernel's host name (gethostname(2))"
        let name: String
        do {
            name = try facts.kernelHostname().trimmingCharacters(in: .whitespacesAndNewlines)
        } catch let error as HostFactsError {
            throw HostVariableError(unreadable: error, variable: variable, rootOnly: false)
        }
        guard !name.isEmpty, Self.isPlainText(name) else {
            throw HostVariableError(variable: variable, source: source, problem: "is empty or holds control characters")
        }
        guard name != "(none)", name != "localhost" else {
            throw HostVariableError(variable: variable, source: source,
                                    problem: "names no host of its own (\"\(name)\")")
        }
        return name
    }

    /// A file holding one value: trimmed, not empty, without control characters.
    private func singleLine(_ path: String, for variable: HostVariable, rootOnly: Bool = false) throws -> String {
        let text: String
        do {
            text = try facts.contents(of: path)
        } catch let error as HostFactsError {
            throw HostVariableError(unreadable: error, variable: variable, rootOnly: rootOnly)
        }
        let value = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !value.isEmpty else {
            throw HostVariableError(variable: variable, source: path, problem: "is empty")
        }
        guard Self.isPlainText(value) else {
            throw HostVariableError(variable: variable, source: path, problem: "holds control characters")
        }
        return value
    }

    /// The first interface (by ifindex) of the kind asked for, with a real address.
    ///
    /// Wireless: a `wireless` or `phy80211` entry (cfg80211 drivers create one). Wired: type 1
    /// (ARPHRD_ETHER), not wireless, and backed by a device (`device` link), which leaves out
    /// bridges, veth pairs, bonds and other virtual interfaces whose MAC is made up.
    private func macAddress(wireless: Bool, for variable: HostVariable) throws -> String {
        let base = Self.networkInterfacesPath
        let names: [String]
        do {
            names = try facts.entries(of: base)
        } catch let error as HostFactsError {
            throw HostVariableError(unreadable: error, variable: variable, rootOnly: false)
        }
        var candidates: [(index: Int, name: String, address: String)] = []
        for name in names where name != "lo" {
            let directory = base + "/" + name
            let isWireless = facts.exists(directory + "/wireless") || facts.exists(directory + "/phy80211")
            guard isWireless == wireless else { continue }
            let type = (try? facts.contents(of: directory + "/type"))?.trimmingCharacters(in: .whitespacesAndNewlines)
            guard type == "1" else { continue }
            if !wireless, !facts.exists(directory + "/device") { continue }
            guard let text = try? facts.contents(of: directory + "/address"),
                  let address = Self.formatMAC(text) else { continue }
            let index = (try? facts.contents(of: directory + "/ifindex"))
                .flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) } ?? Int.max
            candidates.append((index, name, address))
        }
        guard let first = candidates.min(by: { ($0.index, $0.name) < ($1.index, $1.name) }) else {
            let kind = wireless ? "wireless interface (one with a wireless/ directory)"
                : "wired Ethernet interface (type 1, with a device, not wireless)"
            throw HostVariableError(variable: variable, source: base, problem: "lists no \(kind) with a MAC address")
        }
        return first.address
    }

    /// "aa:bb:cc:dd:ee:ff" → "AABBCCDDEEFF"; nil for anything else or the all-zero address.
    static func formatMAC(_ text: String) -> String? {
        let parts = text.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 6, parts.allSatisfy({ $0.count == 2 && $0.allSatisfy(\.isHexDigit) }) else { return nil }
        let address = parts.joined().uppercased()
        return address == "000000000000" ? nil : address
    }

    private func osRelease(_ key: String, for variable: HostVariable) throws -> String {
        var lastError: HostFactsError?
        for path in Self.osReleasePaths {
            let text: String
            do { text = try facts.contents(of: path) } catch let error as HostFactsError {
                lastError = error
                continue
            }
            guard let value = Self.osReleaseValue(key, in: text), !value.isEmpty, Self.isPlainText(value) else {
                throw HostVariableError(variable: variable, source: path, problem: "has no \(key)")
            }
            return value
        }
        throw HostVariableError(unreadable: lastError ?? HostFactsError(path: Self.osReleasePaths[0], errno: ENOENT),
                                variable: variable, rootOnly: false,
                                source: Self.osReleasePaths.joined(separator: " or "))
    }

    /// `KEY=value` from an os-release file: shell-style quotes and backslash escapes undone.
    static func osReleaseValue(_ key: String, in text: String) -> String? {
        for line in text.split(separator: "\n") {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard trimmed.hasPrefix(key + "=") else { continue }
            var raw = Substring(trimmed.dropFirst(key.count + 1))
            guard let quote = raw.first, quote == "\"" || quote == "'" else { return String(raw) }
            raw = raw.dropFirst()
            if raw.last == quote { raw = raw.dropLast() }
            var value = ""
            var escaped = false
            for character in raw {
                if escaped || character != "\\" || quote == "'" {
                    value.append(character)
                    escaped = false
                } else {
                    escaped = true
                }
            }
            return value
        }
        return nil
    }

    static func isPlainText(_ value: String) -> Bool {
        !value.unicodeScalars.contains { $0.properties.generalCategory == .control }
    }
}

/// A built-in variable this host cannot supply, naming the variable, where it was looked
/// for, and what to do.
struct HostVariableError: Error, Equatable, Sendable, CustomStringConvertible {
    var variable: HostVariable
    /// The file or facility, e.g. "/sys/class/dmi/id/product_serial".
    var source: String
    /// What is wrong, read after the source: "is not readable (root only)".
    var problem: String
    /// What to do: set the variable by hand (and, for a root-only source, run as root).
    var remedy: String

    init(variable: HostVariable, source: String, problem: String, rootOnly: Bool = false) {
        self.variable = variable
        self.source = source
        self.problem = problem
        remedy = (rootOnly ? "run as root or " : "") + "set \(variable.rawValue) in [profile.variables]"
    }

    init(unreadable error: HostFactsError, variable: HostVariable, rootOnly: Bool, source: String? = nil) {
        let problem: String
        switch error.errno {
        case EACCES, EPERM: problem = rootOnly ? "is not readable (root only)" : "is not readable (permission denied)"
        case ENOENT, ENOTDIR: problem = "does not exist on this host"
        default: problem = "cannot be read (\(String(cString: strerror(error.errno))))"
        }
        self.init(variable: variable, source: source ?? error.path, problem: problem,
                  rootOnly: rootOnly && (error.errno == EACCES || error.errno == EPERM))
    }

    /// "{{SerialNumber}}: /sys/class/dmi/id/product_serial is not readable (root only): run as
    /// root or set SerialNumber in [profile.variables]".
    var description: String { "{{\(variable.rawValue)}}: \(source) \(problem): \(remedy)" }
}
