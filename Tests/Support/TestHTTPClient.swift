import Foundation
import Glibc

/// A reply read by `TestHTTPClient`.
public struct TestHTTPClientResponse: Sendable {
    public let status: Int
    public let headers: TestHTTPHeaders
    public let body: [UInt8]

    /// The body as UTF-8 text.
    public var bodyText: String { String(decoding: body, as: UTF8.self) }
}

/// A minimal blocking HTTP/1.1 client for loopback peers in tests (readiness
/// probes, fixture capture) — raw sockets, so TestSupport needs neither
/// URLSession nor libcurl. One request per connection.
public enum TestHTTPClient {
    /// Sends one request to 127.0.0.1:`port` and reads the whole reply.
    ///
    /// - Parameter target: path and query, e.g. "/scep?operation=GetCACaps"
    ///   (sent as is: percent-encode it yourself).
    /// - Throws: `TestSupportError.httpClientFailed` on connection refusal,
    ///   timeout, reset or a malformed reply.
    public static func send(
        method: String = "GET", port: UInt16, target: String,
        headers: TestHTTPHeaders = [:], body: [UInt8] = [], timeout: TimeInterval = 5
    ) throws -> TestHTTPClientResponse {
        let deadline = Date(timeIntervalSinceNow: timeout)
        let fd = try connectLoopback(port: port, deadline: deadline)
        defer { close(fd) }
        var io = SocketIO(fd: fd, deadline: deadline)
        var requestHeaders = headers
        if !requestHeaders.contains("Host") { requestHeaders.add(name: "Host", value: "127.0.0.1:\(port)") }
        if !requestHeaders.contains("Connection") { requestHeaders.add(name: "Connection", value: "close") }
        if !body.isEmpty || method == "POST" || method == "PUT" {
            requestHeaders.set(name: "Content-Length", value: String(body.count))
        }
        var head = "\(method) \(target) HTTP/1.1\r\n"
        for field in requestHeaders { head += "\(field.name): \(field.value)\r\n" }
        head += "\r\n"
        do {
            try io.writeAll(Array(head.utf8) + body)
            let statusLine = String(decoding: try io.readLine(limit: 8192), as: UTF8.self)
            let parts = statusLine.split(separator: " ", maxSplits: 2)
            guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else {
                throw SocketIOFailure.malformed("status line '\(statusLine)'")
            }
            let replyHeaders = try io.readHeaderFields(limit: 64 * 1024)
            let noBody = method == "HEAD" || status == 204 || status == 304
            let replyBody = noBody ? [] : try io.readBody(headers: replyHeaders, limit: 64 * 1024 * 1024,
                                                          untilCloseIfUnframed: true)
            return TestHTTPClientResponse(status: status, headers: replyHeaders, body: replyBody)
        } catch let failure as SocketIOFailure {
            throw TestSupportError(.httpClientFailed, "\(method) 127.0.0.1:\(port)\(target): \(failure)")
        }
    }

    /// A GET to `url` (which must be http://127.0.0.1:PORT/…).
    public static func get(_ url: URL, timeout: TimeInterval = 5) throws -> TestHTTPClientResponse {
        guard url.scheme == "http", url.host == "127.0.0.1", let port = url.port,
              let portNumber = UInt16(exactly: port) else {
            throw TestSupportError(.httpClientFailed, "\(url) is not an http://127.0.0.1:PORT URL")
        }
        var target = url.path.isEmpty ? "/" : url.path
        if let query = url.query { target += "?\(query)" }
        return try send(port: portNumber, target: target, timeout: timeout)
    }

    static func connectLoopback(port: UInt16, deadline: Date) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
                            | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw TestSupportError.posix(.httpClientFailed, "socket") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        if rc != 0 && errno != EINPROGRESS {
            let saved = errno
            close(fd)
            throw TestSupportError.posix(.httpClientFailed, "connect 127.0.0.1:\(port)", errno: saved)
        }
        if rc != 0 {
            do {
                try SocketIO(fd: fd, deadline: deadline).wait(for: Int16(POLLOUT))
            } catch {
                close(fd)
                throw TestSupportError(.httpClientFailed, "connect 127.0.0.1:\(port): \(error)")
            }
            var soError: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &length)
            if soError != 0 {
                close(fd)
                throw TestSupportError.posix(.httpClientFailed, "connect 127.0.0.1:\(port)", errno: soError)
            }
        }
        return fd
    }
}
