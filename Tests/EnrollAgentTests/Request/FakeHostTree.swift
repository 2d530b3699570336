import Foundation
import Glibc
import TestSupport

@testable import EnrollAgent

/// A fake host root in a temporary directory: `/proc/sys/kernel/hostname`, `/etc`, `/sys`
/// as the real files are laid out, so `HostIdentity` reads it exactly as it reads `/`.
final class FakeHostTree {
    let directory: TemporaryDirectory
    /// What the fake resolver answers for a host name (nil: nothing).
    var canonicalNames: [String: String] = [:]

    init() throws {
        directory = try TemporaryDirectory(prefix: "fake-host")
    }

    /// A typical laptop: host name, machine id, DMI serial, a wired and a wireless NIC,
    /// plus the virtual interfaces that must not count (lo, a bridge, a veth).
    static func laptop() throws -> FakeHostTree {
        let tree = try FakeHostTree()
        try tree.write("/proc/sys/kernel/hostname", "host01\n")
        try tree.write("/etc/machine-id", "0123456789abcdef0123456789abcdef\n")
        try tree.write("/sys/class/dmi/id/product_serial", "PF2ABCDE\n")
        try tree.write("/etc/os-release", """
            PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
            NAME="Debian GNU/Linux"
            VERSION_ID="12"
            ID=debian
            """)
        try tree.interface("lo", index: 1, type: 772, address: "00:00:00:00:00:00")
        try tree.interface("docker0", index: 2, address: "02:42:ac:11:00:01")            // bridge: no device
        try tree.interface("enp0s31f6", index: 3, address: "8c:16:45:aa:bb:cc", device: true)
        try tree.interface("wlp2s0", index: 4, address: "a4:c3:f0:12:34:56", device: true, wireless: true)
        try tree.interface("veth1a2b", index: 5, address: "ee:11:22:33:44:55")           // veth: no device
        return tree
    }

    var host: HostIdentity {
        let names = canonicalNames
        return HostIdentity(facts: HostRoot(root: directory.path, resolver: { names[$0] }))
    }

    func write(_ path: String, _ contents: String, mode: mode_t = 0o644) throws {
        let full = directory.path + path
        try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        try contents.write(toFile: full, atomically: false, encoding: .utf8)
        chmod(full, mode)
    }

    func remove(_ path: String) throws {
        try FileManager.default.removeItem(atPath: directory.path + path)
    }

    /// `/sys/class/net/<name>/` with the attributes the agent reads.
    func interface(_ name: String, index: Int, type: Int = 1, address: String,
                   device: Bool = false, wireless: Bool = false) throws {
        let base = "/sys/class/net/\(name)"
        try write(base + "/ifindex", "\(index)\n")
        try write(base + "/type", "\(type)\n")
        try write(base + "/address", address + "\n")
        if device { try FileManager.default.createDirectory(atPath: directory.path + base + "/device", withIntermediateDirectories: true) }
        if wireless { try FileManager.default.createDirectory(atPath: directory.path + base + "/wireless", withIntermediateDirectories: true) }
    }
}
