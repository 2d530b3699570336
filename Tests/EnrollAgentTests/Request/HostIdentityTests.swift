import Foundation
import Glibc
import XCTest

@testable import EnrollAgent

/// The built-in variables, read from a fake host tree laid out like the real one.
final class HostIdentityTests: XCTestCase {
    func testEveryBuiltInVariableFromATypicalLaptop() throws {
        let tree = try FakeHostTree.laptop()
        tree.canonicalNames = ["host01": "host01.corp.example.com"]
        let expected: [(HostVariable, String)] = [
            (.hostname, "host01"),
            (.fullyQualifiedDomainName, "host01.corp.example.com"),
            (.deviceName, "host01"),
            (.machineID, "0123456789abcdef0123456789abcdef"),
            (.serialNumber, "PF2ABCDE"),
            (.deviceSerial, "PF2ABCDE"),
            (.wifiMACAddress, "A4C3F0123456"),
            (.ethernetMACAddress, "8C1645AABBCC"),
            (.operatingSystem, "Debian GNU/Linux"),
            (.osVersion, "12"),
        ]
        XCTAssertEqual(Set(expected.map(\.0)), Set(HostVariable.allCases), "every built-in is covered")
        for (variable, value) in expected {
            XCTAssertEqual(try tree.host.value(of: variable), value, variable.rawValue)
        }
    }

    func testAHostNameWithADomainIsItsOwnFQDNAndDeviceNameIsTheShortName() throws {
        let tree = try FakeHostTree.laptop()
        try tree.write("/proc/sys/kernel/hostname", "build7.lab.example.org\n")
        XCTAssertEqual(try tree.host.value(of: .fullyQualifiedDomainName), "build7.lab.example.org")
        XCTAssertEqual(try tree.host.value(of: .deviceName), "build7")
        XCTAssertEqual(try tree.host.value(of: .hostname), "build7.lab.example.org")
    }

    func testNoDomainAnywhereNamesTheResolver() throws {
        let tree = try FakeHostTree.laptop()
        tree.canonicalNames = ["host01": "host01"]   // what getaddrinfo gives from /etc/hosts without a domain
        assertUnavailable(tree.host, .fullyQualifiedDomainName,
                          "{{FullyQualifiedDomainName}}: the resolver (getaddrinfo AI_CANONNAME, as `hostname -f`) "
                          + "gives no domain for the host name \"host01\": set FullyQualifiedDomainName in [profile.variables]")
    }

    func testARootOnlySerialSaysRunAsRootOrSetIt() throws {
        let tree = try FakeHostTree.laptop()
        let host = HostIdentity(facts: Refusing(inner: tree.host.facts, path: HostIdentity.dmiSerialPath, errno: EACCES))
        assertUnavailable(host, .serialNumber,
                          "{{SerialNumber}}: /sys/class/dmi/id/product_serial is not readable (root only): "
                          + "run as root or set SerialNumber in [profile.variables]")
        // Nothing else depends on it.
        XCTAssertEqual(try host.value(of: .hostname), "host01")
    }

    func testMissingSourcesNameTheFile() throws {
        let tree = try FakeHostTree.laptop()
        try tree.remove("/sys/class/dmi")
        try tree.remove("/etc/machine-id")
        try tree.remove("/etc/os-release")
        assertUnavailable(tree.host, .serialNumber,
                          "{{SerialNumber}}: /sys/class/dmi/id/product_serial does not exist on this host: set SerialNumber in [profile.variables]")
        assertUnavailable(tree.host, .machineID,
                          "{{MachineID}}: /etc/machine-id does not exist on this host: set MachineID in [profile.variables]")
        assertUnavailable(tree.host, .osVersion,
                          "{{OSVersion}}: /etc/os-release or /usr/lib/os-release does not exist on this host: set OSVersion in [profile.variables]")
        try tree.write("/usr/lib/os-release", "NAME=Fedora\nVERSION_ID=40\n")
        XCTAssertEqual(try tree.host.value(of: .operatingSystem), "Fedora", "os-release(5): /usr/lib is the fallback")
        XCTAssertEqual(try tree.host.value(of: .osVersion), "40")
    }

    func testPlaceholderSerialsAreNotSerials() throws {
        let tree = try FakeHostTree.laptop()
        for placeholder in ["To Be Filled By O.E.M.", "Default string", "System Serial Number", "0"] {
            try tree.write("/sys/class/dmi/id/product_serial", placeholder + "\n")
            assertUnavailable(tree.host, .serialNumber,
                              "{{SerialNumber}}: /sys/class/dmi/id/product_serial holds no serial number (the firmware left \"\(placeholder)\"): "
                              + "set SerialNumber in [profile.variables]")
        }
        try tree.write("/sys/class/dmi/id/product_serial", "\n")
        assertUnavailable(tree.host, .serialNumber,
                          "{{SerialNumber}}: /sys/class/dmi/id/product_serial is empty: set SerialNumber in [profile.variables]")
    }

    func testControlCharactersInAHostFileAreRefused() throws {
        let tree = try FakeHostTree.laptop()
        try tree.write("/sys/class/dmi/id/product_serial", "AB\u{1B}[31mCD\n")
        assertUnavailable(tree.host, .serialNumber,
                          "{{SerialNumber}}: /sys/class/dmi/id/product_serial holds control characters: set SerialNumber in [profile.variables]")
    }

    func testMACAddressesSkipVirtualAndLoopbackInterfacesAndPickTheLowestIndex() throws {
        let tree = try FakeHostTree()
        try tree.interface("lo", index: 1, type: 772, address: "00:00:00:00:00:00")
        try tree.interface("br0", index: 2, address: "02:00:00:00:00:01")
        try tree.interface("eth1", index: 4, address: "00:1b:21:00:00:04", device: true)
        try tree.interface("eth0", index: 3, address: "00:1b:21:00:00:03", device: true)
        try tree.interface("ib0", index: 5, type: 32, address: "80:00:00:00:00:05", device: true)   // InfiniBand: not Ethernet
        XCTAssertEqual(try tree.host.value(of: .ethernetMACAddress), "001B21000003")
        assertUnavailable(tree.host, .wifiMACAddress,
                          "{{WiFiMacAddress}}: /sys/class/net lists no wireless interface (one with a wireless/ directory) "
                          + "with a MAC address: set WiFiMacAddress in [profile.variables]")
        let server = try FakeHostTree()
        try server.interface("lo", index: 1, type: 772, address: "00:00:00:00:00:00")
        try server.interface("docker0", index: 2, address: "02:42:ac:11:00:01")
        assertUnavailable(server.host, .ethernetMACAddress,
                          "{{EthernetMacAddress}}: /sys/class/net lists no wired Ethernet interface (type 1, with a device, "
                          + "not wireless) with a MAC address: set EthernetMacAddress in [profile.variables]")
    }

    func testMACFormatIsTwelveUppercaseHexDigits() {
        XCTAssertEqual(HostIdentity.formatMAC("a4:c3:f0:12:34:5f\n"), "A4C3F012345F")
        XCTAssertNil(HostIdentity.formatMAC("00:00:00:00:00:00"))
        XCTAssertNil(HostIdentity.formatMAC("a4:c3:f0:12:34"))
        XCTAssertNil(HostIdentity.formatMAC("a4:c3:f0:12:34:5g"))
    }

    func testOSReleaseQuoting() {
        let text = "NAME=\"Ubuntu\"\nVERSION_ID='24.04'\nID=ubuntu\nPRETTY=\"say \\\"hi\\\"\"\n"
        XCTAssertEqual(HostIdentity.osReleaseValue("NAME", in: text), "Ubuntu")
        XCTAssertEqual(HostIdentity.osReleaseValue("VERSION_ID", in: text), "24.04")
        XCTAssertEqual(HostIdentity.osReleaseValue("ID", in: text), "ubuntu")
        XCTAssertEqual(HostIdentity.osReleaseValue("PRETTY", in: text), "say \"hi\"")
        XCTAssertNil(HostIdentity.osReleaseValue("VERSION", in: text))
    }

    /// The real host: the same sources the daemon reads.
    func testTheRunningHostGivesItsKernelHostnameAndMachineID() throws {
        let host = HostIdentity.current()
        let kernelHostname = try String(contentsOfFile: "/proc/sys/kernel/hostname", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(try host.value(of: .hostname), kernelHostname)
        if let machineID = try? String(contentsOfFile: "/etc/machine-id", encoding: .utf8) {
            XCTAssertEqual(try host.value(of: .machineID), machineID.trimmingCharacters(in: .whitespacesAndNewlines))
        }
    }

    private func assertUnavailable(_ host: HostIdentity, _ variable: HostVariable, _ message: String,
                                   file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try host.value(of: variable), file: file, line: line) { error in
            XCTAssertEqual("\(error)", message, file: file, line: line)
        }
    }

    /// Root reads a 0400 file anyway, so permission errors are simulated at the seam.
    private struct Refusing: HostFacts {
        let inner: any HostFacts
        let path: String
        let errno: Int32

        func contents(of path: String) throws -> String {
            if path == self.path { throw HostFactsError(path: path, errno: errno) }
            return try inner.contents(of: path)
        }
        func entries(of directory: String) throws -> [String] { try inner.entries(of: directory) }
        func exists(_ path: String) -> Bool { inner.exists(path) }
        func canonicalName(of hostname: String) -> String? { inner.canonicalName(of: hostname) }
        func kernelHostname() throws -> String { try inner.kernelHostname() }
    }
}

extension HostIdentityTests {
    func testAHostWithoutSysfsNetworkSaysSo() throws {
        let tree = try FakeHostTree.laptop()
        try tree.remove("/sys/class/net")
        XCTAssertThrowsError(try tree.host.value(of: .wifiMACAddress)) { error in
            XCTAssertEqual("\(error)", "{{WiFiMacAddress}}: /sys/class/net does not exist on this host: set WiFiMacAddress in [profile.variables]")
        }
        XCTAssertEqual(try HostRoot(root: tree.directory.path).entries(of: "/etc").sorted(), ["machine-id", "os-release"])
    }
}
