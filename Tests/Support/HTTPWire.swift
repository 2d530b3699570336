import Foundation
import Glibc

/// One header line.
public struct TestHTTPHeaderField: Sendable, Equatable {
    public var name: String
    public var value: String

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// Header fields in wire order, looked up case-insensitively (RFC 9110 §5.1).
public struct TestHTTPHeaders: Sendable, Equatable, ExpressibleByDictionaryLiteral, Sequence {
    public private(set) var fields: [TestHTTPHeaderField]

    public init(_ fields: [TestHTTPHeaderField] = []) {
        self.fields = fields
    }

    public init(dictionaryLiteral elements: (String, String)...) {
        fields = elements.map { TestHTTPHeaderField(name: $0.0, value: $0.1) }
    }

    /// The first value of `name`, any case; nil if absent.
    public subscript(name: String) -> String? {
        fields.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    /// Every value of `name`, any case, in order.
    public func values(for name: String) -> [String] {
        fields.filter { $0.name.lowercased() == name.lowercased() }.map(\.value)
    }

    /// Whether a field named `name` (any case) is present.
    public func contains(_ name: String) -> Bool { self[name] != nil }

    /// Appends a field (keeps existing ones with the same name).
    public mutating func add(name: String, value: String) {
        fields.append(TestHTTPHeaderField(name: name, value: value))
    }

    /// Replaces all fields named `name` with one.
    public mutating func set(name: String, value: String) {
        fields.removeAll { $0.name.lowercased() == name.lowercased() }
        fields.append(TestHTTPHeaderField(name: name, value: value))
    }

    public func makeIterator() -> IndexingIterator<[TestHTTPHeaderField]> { fields.makeIterator() }
}

/// One `name=value` of a query string.
public struct TestHTTPQueryItem: Sendable, Equatable {
    /// Percent-decoded name.
    public let name: String
    /// Percent-decoded value ("" for `name` without `=`). Only `%XX` is
    /// decoded: a `+` stays a `+`, as SCEP's base64 `message=` needs.
    public let value: String
    /// The value exactly as it appeared on the wire.
    public let rawValue: String

    public init(name: String, value: String, rawValue: String) {
        self.name = name
        self.value = value
        self.rawValue = rawValue
    }
}

enum PercentDecoding {
    /// Decodes `%XX` escapes only; a malformed escape is kept literally.
    static func decode(_ text: Substring) -> String {
        let bytes = Array(text.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "%"), index + 2 < bytes.count,
               let high = hexValue(bytes[index + 1]), let low = hexValue(bytes[index + 2]) {
                out.append(high << 4 | low)
                index += 3
            } else {
                out.append(bytes[index])
                index += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func queryItems(_ query: Substring) -> [TestHTTPQueryItem] {
        query.split(separator: "&", omittingEmptySubsequences: true).map { pair in
            if let equals = pair.firstIndex(of: "=") {
                let raw = pair[pair.index(after: equals)...]
                return TestHTTPQueryItem(name: decode(pair[..<equals]), value: decode(raw), rawValue: String(raw))
            }
            return TestHTTPQueryItem(name: decode(pair), value: "", rawValue: "")
        }
    }

    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}

/// Why a socket read or write stopped.
enum SocketIOFailure: Error {
    case stopped          // the wake fd fired: the server is stopping
    case timedOut
    case closedByPeer
    case tooLarge
    case malformed(String)
    case system(String, Int32)
}

/// Blocking I/O on one socket that gives up when a shared wake fd becomes
/// readable (server stop) or a deadline passes. Not thread-safe: one owner.
struct SocketIO {
    let fd: Int32
    /// Read end of a pipe written once on stop; -1 if none.
    let wakeFD: Int32
    var deadline: Date?
    private var buffer: [UInt8] = []
    private var start = 0

    init(fd: Int32, wakeFD: Int32 = -1, deadline: Date? = nil) {
        self.fd = fd
        self.wakeFD = wakeFD
        self.deadline = deadline
    }

    /// Waits for `events` on the socket. Throws `.stopped` / `.timedOut`.
    func wait(for events: Int16) throws {
        while true {
            var fds = [pollfd(fd: fd, events: events, revents: 0)]
            if wakeFD >= 0 { fds.append(pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0)) }
            var timeout: Int32 = -1
            if let deadline {
                let remaining = deadline.timeIntervalSinceNow
                if remaining <= 0 { throw SocketIOFailure.timedOut }
                timeout = Int32(min(remaining * 1000, Double(Int32.max - 1)).rounded(.up))
            }
            let ready = poll(&fds, nfds_t(fds.count), timeout)
            if ready < 0 {
                if errno == EINTR { continue }
                throw SocketIOFailure.system("poll", errno)
            }
            if fds.count > 1, fds[1].revents != 0 { throw SocketIOFailure.stopped }
            if fds[0].revents != 0 { return }
            // ready == 0: loop re-checks the deadline.
        }
    }

    /// Reads and drops whatever the peer sends until it closes the connection (true) or
    /// resets it (false). Throws `.stopped` / `.timedOut`.
    func waitForPeerToClose() throws -> Bool {
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            try wait(for: Int16(POLLIN))
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count == 0 { return true }
            if count < 0 && errno != EINTR && errno != EAGAIN { return false }
        }
    }

    /// Reads more bytes into the buffer; throws `.closedByPeer` at EOF.
    private mutating func fill() throws {
        try wait(for: Int16(POLLIN))
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count > 0 {
                if start > 0 && start == buffer.count {
                    buffer.removeAll(keepingCapacity: true)
                    start = 0
                }
                buffer.append(contentsOf: chunk[0..<count])
                return
            }
            if count == 0 { throw SocketIOFailure.closedByPeer }
            if errno == EINTR { continue }
            if errno == EAGAIN || errno == EWOULDBLOCK { return }
            throw SocketIOFailure.system("recv", errno)
        }
    }

    /// One line without its CRLF (a bare LF is accepted too).
    mutating func readLine(limit: Int) throws -> [UInt8] {
        var scanned = start
        while true {
            if let newline = buffer[scanned...].firstIndex(of: UInt8(ascii: "\n")) {
                var end = newline
                if end > start, buffer[end - 1] == UInt8(ascii: "\r") { end -= 1 }
                let line = Array(buffer[start..<end])
                start = newline + 1
                return line
            }
            if buffer.count - start > limit { throw SocketIOFailure.tooLarge }
            // fill() may drop the consumed bytes and move `start` to 0: keep the position
            // relative to `start` (a peer that sends a line in several segments, as tinyproxy does).
            let scannedPastStart = buffer.count - start
            try fill()
            scanned = start + scannedPastStart
        }
    }

    mutating func readExactly(_ count: Int) throws -> [UInt8] {
        while buffer.count - start < count { try fill() }
        let bytes = Array(buffer[start..<start + count])
        start += count
        return bytes
    }

    /// Everything until the peer closes.
    mutating func readToEnd(limit: Int) throws -> [UInt8] {
        while true {
            if buffer.count - start > limit { throw SocketIOFailure.tooLarge }
            do { try fill() } catch SocketIOFailure.closedByPeer { break }
        }
        let bytes = Array(buffer[start...])
        start = buffer.count
        return bytes
    }

    /// Header lines up to the empty line, as fields. Rejects obsolete folding.
    mutating func readHeaderFields(limit: Int) throws -> TestHTTPHeaders {
        var headers = TestHTTPHeaders()
        var total = 0
        while true {
            let line = try readLine(limit: limit)
            total += line.count + 2
            if total > limit { throw SocketIOFailure.tooLarge }
            if line.isEmpty { return headers }
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > 0,
                  line.first != UInt8(ascii: " "), line.first != UInt8(ascii: "\t") else {
                throw SocketIOFailure.malformed("bad header line")
            }
            let name = String(decoding: line[..<colon], as: UTF8.self)
            let value = String(decoding: line[(colon + 1)...], as: UTF8.self)
                .trimmingCharacters(in: .whitespaces)
            headers.add(name: name, value: value)
        }
    }

    /// A message body framed by Content-Length or chunked transfer coding
    /// (RFC 9112 §6–7); `untilCloseIfUnframed` reads to EOF (responses only).
    mutating func readBody(headers: TestHTTPHeaders, limit: Int, untilCloseIfUnframed: Bool) throws -> [UInt8] {
        if let coding = headers["Transfer-Encoding"], coding.lowercased().contains("chunked") {
            return try readChunked(limit: limit)
        }
        if let lengthText = headers["Content-Length"] {
            guard let length = Int(lengthText.trimmingCharacters(in: .whitespaces)), length >= 0 else {
                throw SocketIOFailure.malformed("bad Content-Length")
            }
            if length > limit { throw SocketIOFailure.tooLarge }
            return try readExactly(length)
        }
        return untilCloseIfUnframed ? try readToEnd(limit: limit) : []
    }

    private mutating func readChunked(limit: Int) throws -> [UInt8] {
        var body: [UInt8] = []
        while true {
            let sizeLine = String(decoding: try readLine(limit: 1024), as: UTF8.self)
            let sizeText = sizeLine.split(separator: ";", maxSplits: 1).first.map(String.init) ?? ""
            guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16), size >= 0 else {
                throw SocketIOFailure.malformed("bad chunk size")
            }
            if size == 0 {
                _ = try readHeaderFields(limit: 64 * 1024)  // trailers
                return body
            }
            if body.count + size > limit { throw SocketIOFailure.tooLarge }
            body += try readExactly(size)
            guard try readLine(limit: 2).isEmpty else { throw SocketIOFailure.malformed("chunk not followed by CRLF") }
        }
    }

    /// Sends all bytes (no SIGPIPE if the peer is gone).
    func writeAll(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes {
                send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT))
            }
            if sent > 0 {
                offset += sent
                continue
            }
            if sent < 0, errno == EINTR { continue }
            if sent < 0, errno == EAGAIN || errno == EWOULDBLOCK {
                try wait(for: Int16(POLLOUT))
                continue
            }
            if sent < 0, errno == EPIPE || errno == ECONNRESET { throw SocketIOFailure.closedByPeer }
            throw SocketIOFailure.system("send", errno)
        }
    }
}

/// A pthread that can be joined (Foundation's `Thread` cannot), so `stop()`
/// can promise that no server thread outlives it.
final class JoinableThread: @unchecked Sendable {
    private final class Body {
        let run: () -> Void
        init(_ run: @escaping () -> Void) { self.run = run }
    }

    private let thread: pthread_t
    private var joined = false

    init(_ run: @escaping () -> Void) throws {
        let body = Unmanaged.passRetained(Body(run))
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { raw in
            guard let raw else { return nil }
            Unmanaged<Body>.fromOpaque(raw).takeRetainedValue().run()
            return nil
        }, body.toOpaque())
        guard rc == 0 else {
            body.release()
            throw TestSupportError.posix(.socketFailed, "pthread_create", errno: rc)
        }
        self.thread = thread
    }

    /// Waits for the thread to finish (once; later calls return at once).
    func join() {
        guard !joined else { return }
        joined = true
        pthread_join(thread, nil)
    }

    deinit {
        // Never joined: let the system reclaim it when it ends.
        if !joined { pthread_detach(thread) }
    }
}
