import Foundation
import Glibc

/// A request as the test server received it.
public struct TestHTTPRequest: Sendable {
    /// "GET", "POST", …
    public let method: String
    /// The request target as sent, e.g. "/scep?operation=GetCACaps".
    public let target: String
    /// The target's path, not decoded, e.g. "/scep".
    public let path: String
    /// The raw query after "?", or nil if there is none.
    public let rawQuery: String?
    /// Query items in order; `%XX` decoded, `+` kept (see `TestHTTPQueryItem`).
    public let queryItems: [TestHTTPQueryItem]
    /// "HTTP/1.1" or "HTTP/1.0".
    public let version: String
    public let headers: TestHTTPHeaders
    /// The body, de-chunked if it came chunked.
    public let body: [UInt8]
    /// When the request was complete.
    public let receivedAt: Date

    /// The decoded value of the first query item called `name`.
    public func query(_ name: String) -> String? {
        queryItems.first { $0.name == name }?.value
    }

    /// The body as UTF-8 text.
    public var bodyText: String { String(decoding: body, as: UTF8.self) }
}

/// Misbehaviours for fault tests; set on `TestHTTPResponse.fault`.
public enum TestHTTPFault: Sendable, Equatable {
    /// Wait this many seconds, then answer normally (cut short by `stop()`).
    case delay(TimeInterval)
    /// Never answer; the connection stays open until the client closes it (counted in
    /// `closedByClientCount`) or the server stops.
    case hang
    /// Read the request, then close the connection without a byte.
    case closeWithoutResponse
    /// Send the head (with the full Content-Length) and half the body, then
    /// abort the connection with a TCP RST (SO_LINGER 0).
    case resetMidBody
}

/// What the handler tells the server to send.
public struct TestHTTPResponse: Sendable {
    public var status: Int
    /// Content-Length and `Connection: close` are added unless present.
    public var headers: TestHTTPHeaders
    public var body: [UInt8]
    /// nil: answer normally.
    public var fault: TestHTTPFault?

    public init(status: Int = 200, headers: TestHTTPHeaders = [:], body: [UInt8] = [], fault: TestHTTPFault? = nil) {
        self.status = status
        self.headers = headers
        self.body = body
        self.fault = fault
    }

    /// 200 with `body` and a Content-Type.
    public static func ok(_ body: [UInt8], contentType: String = "application/octet-stream") -> TestHTTPResponse {
        TestHTTPResponse(status: 200, headers: ["Content-Type": contentType], body: body)
    }

    /// A text/plain answer.
    public static func text(_ text: String, status: Int = 200) -> TestHTTPResponse {
        TestHTTPResponse(status: status, headers: ["Content-Type": "text/plain"], body: Array(text.utf8))
    }

    /// An empty answer with this status.
    public static func status(_ status: Int) -> TestHTTPResponse {
        TestHTTPResponse(status: status)
    }

    /// Never answers (see `TestHTTPFault.hang`).
    public static var hang: TestHTTPResponse { TestHTTPResponse(fault: .hang) }

    /// Closes without answering (see `TestHTTPFault.closeWithoutResponse`).
    public static var closeWithoutResponse: TestHTTPResponse { TestHTTPResponse(fault: .closeWithoutResponse) }

    /// This response, sent after `seconds`.
    public func delayed(by seconds: TimeInterval) -> TestHTTPResponse {
        var copy = self
        copy.fault = .delay(seconds)
        return copy
    }

    /// This response, cut off by a reset halfway through the body.
    public func resettingMidBody() -> TestHTTPResponse {
        var copy = self
        copy.fault = .resetMidBody
        return copy
    }
}

/// A small HTTP/1.1 server on 127.0.0.1 with an ephemeral port, for tests.
///
/// One thread accepts; each connection gets its own thread, serves one
/// request and closes (`Connection: close`). Every complete request is
/// recorded. `stop()` (also run by deinit) wakes every thread through a pipe,
/// joins them all and closes every descriptor, so nothing outlives it — except
/// that it waits for a handler still running test code.
///
/// A handler that captures the server itself keeps it alive: call `stop()`.
public final class TestHTTPServer: @unchecked Sendable {
    public typealias Handler = @Sendable (TestHTTPRequest) -> TestHTTPResponse

    // The threads hold the core, never this object, so deinit can stop them.
    private let core: HTTPServerCore

    /// Starts listening at once. `handler` runs on connection threads,
    /// possibly several at the same time.
    public init(handler: @escaping Handler) throws {
        core = try HTTPServerCore(handler: handler)
    }

    /// A server that answers every request with `response`.
    public convenience init(response: TestHTTPResponse) throws {
        try self.init { _ in response }
    }

    deinit { core.stop() }

    /// The port the kernel picked.
    public var port: UInt16 { core.port }

    /// "http://127.0.0.1:PORT"
    public var urlString: String { "http://127.0.0.1:\(port)" }

    /// `urlString` as a URL.
    public var url: URL { URL(string: urlString)! }

    /// Replaces the handler for requests that arrive from now on.
    public func setHandler(_ handler: @escaping Handler) { core.setHandler(handler) }

    /// Every complete request so far, in arrival order.
    public var requests: [TestHTTPRequest] { core.requests }

    /// How many complete requests arrived.
    public var requestCount: Int { core.requestCount }

    /// How many connections were accepted (including ones that never sent a
    /// complete request).
    public var connectionCount: Int { core.connectionCount }

    /// How many hanging connections (`TestHTTPFault.hang`) the client closed.
    public var closedByClientCount: Int { core.closedByClientCount }

    /// Waits until the client has closed at least `count` hanging connections; false on timeout.
    @discardableResult
    public func waitForClientClosures(count: Int, timeout: TimeInterval) -> Bool {
        core.waitForClientClosures(count: count, timeout: timeout)
    }

    /// Waits until at least `count` requests have arrived; false on timeout.
    /// Lets tests wait on events instead of sleeping.
    @discardableResult
    public func waitForRequests(count: Int, timeout: TimeInterval) -> Bool {
        core.waitForRequests(count: count, timeout: timeout)
    }

    /// Stops accepting, aborts open connections (hanging and delayed ones
    /// included), joins every thread and closes every descriptor. Idempotent.
    public func stop() { core.stop() }
}

/// The server's state and threads; see `TestHTTPServer`.
final class HTTPServerCore: @unchecked Sendable {
    typealias Handler = TestHTTPServer.Handler

    let port: UInt16

    /// Largest header block and body accepted (a test server, not a fortress).
    static let headerLimit = 64 * 1024
    static let bodyLimit = 64 * 1024 * 1024

    private let listenFD: Int32
    private let wakeRead: Int32
    private let wakeWrite: Int32
    private let state = NSCondition()
    private var handler: Handler
    private var recorded: [TestHTTPRequest] = []
    private var connectionsAccepted = 0
    private var connectionsClosedByClient = 0
    private var stopped = false
    private var acceptThread: JoinableThread?
    private var connectionThreads: [Int: JoinableThread] = [:]
    private var finishedConnections: [Int] = []

    /// Starts listening at once. `handler` runs on connection threads,
    /// possibly several at the same time.
    init(handler: @escaping Handler) throws {
        self.handler = handler
        (listenFD, port) = try Self.listenOnLoopback()
        // A socketpair, not pipe(): it takes SOCK_CLOEXEC atomically, so a
        // child spawned meanwhile by another thread cannot inherit it.
        var pipeFDs: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pipeFDs) == 0 else {
            let saved = errno
            close(listenFD)
            throw TestSupportError.posix(.socketFailed, "socketpair", errno: saved)
        }
        wakeRead = pipeFDs[0]
        wakeWrite = pipeFDs[1]
        do {
            let thread = try JoinableThread { [self] in self.acceptLoop() }
            state.lock()
            acceptThread = thread
            state.unlock()
        } catch {
            close(listenFD)
            close(wakeRead)
            close(wakeWrite)
            throw error
        }
    }

    /// Replaces the handler for requests that arrive from now on.
    func setHandler(_ handler: @escaping Handler) {
        state.lock()
        self.handler = handler
        state.unlock()
    }

    /// Every complete request so far, in arrival order.
    var requests: [TestHTTPRequest] {
        state.lock()
        defer { state.unlock() }
        return recorded
    }

    /// How many complete requests arrived.
    var requestCount: Int {
        state.lock()
        defer { state.unlock() }
        return recorded.count
    }

    /// How many connections were accepted (including ones that never sent a
    /// complete request).
    var connectionCount: Int {
        state.lock()
        defer { state.unlock() }
        return connectionsAccepted
    }

    /// How many hanging connections the client closed.
    var closedByClientCount: Int {
        state.lock()
        defer { state.unlock() }
        return connectionsClosedByClient
    }

    @discardableResult
    func waitForClientClosures(count: Int, timeout: TimeInterval) -> Bool {
        let deadline = Date(timeIntervalSinceNow: timeout)
        state.lock()
        defer { state.unlock() }
        while connectionsClosedByClient < count {
            if !state.wait(until: deadline) { return connectionsClosedByClient >= count }
        }
        return true
    }

    /// Waits until at least `count` requests have arrived; false on timeout.
    /// Lets tests wait on events instead of sleeping.
    @discardableResult
    func waitForRequests(count: Int, timeout: TimeInterval) -> Bool {
        let deadline = Date(timeIntervalSinceNow: timeout)
        state.lock()
        defer { state.unlock() }
        while recorded.count < count {
            if !state.wait(until: deadline) { return recorded.count >= count }
        }
        return true
    }

    /// Stops accepting, aborts open connections (hanging and delayed ones
    /// included), joins every thread and closes every descriptor. Idempotent.
    func stop() {
        state.lock()
        if stopped {
            state.unlock()
            return
        }
        stopped = true
        let accepter = acceptThread
        acceptThread = nil
        state.unlock()

        // Never read: the pipe stays readable, telling every poll to give up.
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)
        accepter?.join()

        state.lock()
        let remaining = Array(connectionThreads.values)
        connectionThreads.removeAll()
        finishedConnections.removeAll()
        state.unlock()
        remaining.forEach { $0.join() }

        close(listenFD)
        close(wakeRead)
        close(wakeWrite)
    }

    // MARK: - Accepting

    private static func listenOnLoopback() throws -> (Int32, UInt16) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw TestSupportError.posix(.socketFailed, "socket") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, listen(fd, 128) == 0 else {
            let saved = errno
            close(fd)
            throw TestSupportError.posix(.socketFailed, "bind/listen on 127.0.0.1:0", errno: saved)
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else {
            let saved = errno
            close(fd)
            throw TestSupportError.posix(.socketFailed, "getsockname", errno: saved)
        }
        return (fd, UInt16(bigEndian: address.sin_port))
    }

    private func acceptLoop() {
        var nextID = 0
        let waiter = SocketIO(fd: listenFD, wakeFD: wakeRead)
        while true {
            do { try waiter.wait(for: Int16(POLLIN)) } catch { return }
            let client = Self.acceptCloseOnExec(listenFD)
            if client < 0 {
                if errno == EINTR || errno == ECONNABORTED || errno == EAGAIN { continue }
                // EMFILE and friends: back off briefly rather than spin.
                usleep(10_000)
                continue
            }
            joinFinishedConnections()
            let id = nextID
            nextID += 1
            state.lock()
            connectionsAccepted += 1
            state.unlock()
            do {
                let thread = try JoinableThread { [self] in
                    self.serve(connection: client)
                    self.state.lock()
                    self.finishedConnections.append(id)
                    self.state.unlock()
                }
                state.lock()
                connectionThreads[id] = thread
                state.unlock()
            } catch {
                close(client)
            }
        }
    }

    private typealias Accept4 = @convention(c) (Int32, UnsafeMutablePointer<sockaddr>?,
                                                UnsafeMutablePointer<socklen_t>?, Int32) -> Int32

    /// Swift's Glibc module hides accept4 (a GNU extension); find it at run time.
    private static let accept4Function: Accept4? = {
        guard let symbol = dlsym(nil, "accept4") else { return nil }
        return unsafeBitCast(symbol, to: Accept4.self)
    }()

    /// accept with FD_CLOEXEC set atomically where possible, so a concurrent
    /// posix_spawn (scepserver, swtpm) never inherits a test connection.
    private static func acceptCloseOnExec(_ fd: Int32) -> Int32 {
        if let accept4Function { return accept4Function(fd, nil, nil, Int32(SOCK_CLOEXEC.rawValue)) }
        let client = accept(fd, nil, nil)
        if client >= 0 { _ = fcntl(client, F_SETFD, FD_CLOEXEC) }
        return client
    }

    /// Joins threads whose connection is done, so a long benchmark does not
    /// pile up exited-but-unjoined threads.
    private func joinFinishedConnections() {
        state.lock()
        let done = finishedConnections.compactMap { connectionThreads.removeValue(forKey: $0) }
        finishedConnections.removeAll()
        state.unlock()
        done.forEach { $0.join() }
    }

    // MARK: - One connection

    private func serve(connection fd: Int32) {
        var lingerOnClose = false
        defer {
            if lingerOnClose {
                var abort = linger(l_onoff: 1, l_linger: 0)
                setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort, socklen_t(MemoryLayout<linger>.size))
            }
            close(fd)
        }
        var io = SocketIO(fd: fd, wakeFD: wakeRead)
        let request: TestHTTPRequest
        do {
            request = try readRequest(&io)
        } catch SocketIOFailure.malformed(let why) {
            try? io.writeAll(Self.serialize(.text("bad request: \(why)\n", status: 400), includeBody: true))
            return
        } catch SocketIOFailure.tooLarge {
            try? io.writeAll(Self.serialize(.text("request too large\n", status: 413), includeBody: true))
            return
        } catch {
            return  // Peer went away, or the server is stopping.
        }

        state.lock()
        recorded.append(request)
        let currentHandler = handler
        state.broadcast()
        state.unlock()

        let response = currentHandler(request)
        let includeBody = request.method != "HEAD"
        do {
            switch response.fault {
            case nil:
                try io.writeAll(Self.serialize(response, includeBody: includeBody))
            case .delay(let seconds):
                var timer = io
                timer.deadline = Date(timeIntervalSinceNow: seconds)
                do {
                    try timer.wait(for: 0)  // Only the wake fd or the deadline can end this.
                } catch SocketIOFailure.timedOut {
                    try io.writeAll(Self.serialize(response, includeBody: includeBody))
                }
            case .hang:
                if try io.waitForPeerToClose() {
                    state.lock()
                    connectionsClosedByClient += 1
                    state.broadcast()
                    state.unlock()
                }
            case .closeWithoutResponse:
                return
            case .resetMidBody:
                let head = Self.serialize(response, includeBody: false)
                try io.writeAll(head + response.body.prefix(response.body.count / 2))
                // Let the client take in what was sent before the RST: Linux
                // may drop unread received data when the reset arrives.
                var pause = io
                pause.deadline = Date(timeIntervalSinceNow: 0.1)
                do { try pause.wait(for: 0) } catch SocketIOFailure.timedOut {}
                lingerOnClose = true
            }
        } catch {
            return  // Client disconnected early, or the server is stopping.
        }
    }

    private func readRequest(_ io: inout SocketIO) throws -> TestHTTPRequest {
        var line = try io.readLine(limit: Self.headerLimit)
        // RFC 9112 §2.2: ignore at least one empty line before the request line.
        if line.isEmpty { line = try io.readLine(limit: Self.headerLimit) }
        let parts = String(decoding: line, as: UTF8.self).split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, !parts[1].isEmpty, parts[2].hasPrefix("HTTP/1.") else {
            throw SocketIOFailure.malformed("request line")
        }
        let headers = try io.readHeaderFields(limit: Self.headerLimit)
        if headers["Expect"]?.lowercased() == "100-continue" {
            // libcurl waits up to a second for this before sending a body.
            try io.writeAll(Array("HTTP/1.1 100 Continue\r\n\r\n".utf8))
        }
        let body = try io.readBody(headers: headers, limit: Self.bodyLimit, untilCloseIfUnframed: false)

        let target = String(parts[1])
        let path: Substring
        var rawQuery: Substring?
        if let mark = target.firstIndex(of: "?") {
            path = target[..<mark]
            rawQuery = target[target.index(after: mark)...]
        } else {
            path = target[...]
        }
        return TestHTTPRequest(
            method: String(parts[0]), target: target, path: String(path),
            rawQuery: rawQuery.map(String.init),
            queryItems: rawQuery.map(PercentDecoding.queryItems) ?? [],
            version: String(parts[2]), headers: headers, body: body, receivedAt: Date())
    }

    static func serialize(_ response: TestHTTPResponse, includeBody: Bool) -> [UInt8] {
        var headers = response.headers
        if !headers.contains("Content-Length") {
            headers.add(name: "Content-Length", value: String(response.body.count))
        }
        if !headers.contains("Connection") { headers.add(name: "Connection", value: "close") }
        var head = "HTTP/1.1 \(response.status) \(reasonPhrase(response.status))\r\n"
        for field in headers { head += "\(field.name): \(field.value)\r\n" }
        head += "\r\n"
        return Array(head.utf8) + (includeBody ? response.body : [])
    }

    static func reasonPhrase(_ status: Int) -> String {
        switch status {
        case 200: return "OK"
        case 204: return "No Content"
        case 301: return "Moved Permanently"
        case 302: return "Found"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 413: return "Content Too Large"
        case 429: return "Too Many Requests"
        case 500: return "Internal Server Error"
        case 502: return "Bad Gateway"
        case 503: return "Service Unavailable"
        default: return "Status"
        }
    }
}
