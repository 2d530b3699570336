import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Debian's tinyproxy on a loopback port of its own, as the HTTP proxy of the proxy tests.
/// Its log names every request it forwarded (`Request (file descriptor N): GET http://…`).
public final class Tinyproxy {
    public let port: UInt16
    private let directory: TemporaryDirectory
    private let child: ChildProcess

    /// - Parameter allow: the client address tinyproxy serves; anything else gets its
    ///   "403 Access denied" (a proxy that refuses us when it is not 127.0.0.1).
    public init(allow: String = "127.0.0.1") throws {
        let binary = try PeerRequirement.require(binary: "tinyproxy")
        directory = try TemporaryDirectory(prefix: "tinyproxy")
        chmod(directory.path, 0o777)  // tinyproxy may drop to nobody before it opens its log
        port = try LoopbackPort.free()
        let configuration = directory.appending("tinyproxy.conf")
        try """
            Port \(port)
            Listen 127.0.0.1
            Timeout 30
            LogFile "\(directory.appending("tinyproxy.log"))"
            LogLevel Info
            MaxClients 20
            Allow \(allow)
            ConnectPort 443
            ConnectPort 80

            """.write(toFile: configuration, atomically: true, encoding: .utf8)
        child = try ChildProcess(executable: binary, arguments: ["-d", "-c", configuration],
                                 outputPath: directory.appending("stdout"))
        let deadline = Date().addingTimeInterval(10)
        while !LoopbackPort.accepts(port) {
            guard Date() < deadline, child.isRunning else {
                let output = child.readOutput()
                _ = child.terminate(gracePeriod: 1)
                throw TestSupportError(.spawnFailed, "tinyproxy did not listen on 127.0.0.1:\(port): \(output)")
            }
            usleep(50_000)
        }
    }

    deinit { stop() }

    public func stop() {
        if child.isRunning { _ = child.terminate(gracePeriod: 2) }
        directory.remove()
    }

    /// "http://127.0.0.1:PORT"
    public var url: String { "http://127.0.0.1:\(port)" }

    /// The URLs of the requests it forwarded, in order.
    public var forwardedRequests: [String] {
        let log = (try? String(contentsOfFile: directory.appending("tinyproxy.log"), encoding: .utf8)) ?? ""
        return log.split(separator: "\n").compactMap { line -> String? in
            guard let range = line.range(of: "): ") , line.contains("Request (file descriptor") else { return nil }
            return String(line[range.upperBound...])
        }
    }
}

/// Loopback ports for peers started as processes.
public enum LoopbackPort {
    /// A port nothing listens on now (the kernel picks it); for peers that need one given.
    public static func free() throws -> UInt16 {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, length) == 0 && getsockname(socket, $0, &length) == 0 }
        }
        guard bound else { throw TestSupportError(.spawnFailed, "no free loopback port") }
        return UInt16(bigEndian: address.sin_port)
    }

    /// Whether something accepts connections on 127.0.0.1:`port`.
    public static func accepts(_ port: UInt16) -> Bool {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = port.bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}
