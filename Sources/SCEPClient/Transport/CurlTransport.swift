import CCurl
import Foundation

/// HTTP over libcurl: bounded connect and total timeouts, HTTPS verified
/// against the system CAs or a configured bundle, no redirects followed
/// (a 3xx is reported, never followed silently), a User-Agent naming the agent.
public struct CurlTransport: HTTPTransport {
    public struct Options: Sendable {
        public var connectTimeout: Double = 10
        public var totalTimeout: Double = 60
        /// PEM bundle for HTTPS instead of the system store.
        public var caBundlePath: String?
        public var userAgent: String = "enroll-agent/\(AgentVersion.string)"
        /// Replies larger than this are refused (a SCEP reply is a few KiB).
        public var maxResponseBytes: Int = 4 << 20
        public init() {}
    }

    public let options: Options

    public init(options: Options = Options()) {
        self.options = options
        _ = Self.globalInit
    }

    private static let globalInit: Void = { curl_global_init(Int(CURL_GLOBAL_DEFAULT)) }()

    public func perform(_ request: HTTPRequest) async throws -> HTTPResponse {
        // curl_easy_perform blocks: keep it off the cooperative thread pool.
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(with: Result { try performBlocking(request) })
            }
        }
    }

    func performBlocking(_ request: HTTPRequest) throws -> HTTPResponse {
        try Self.checkHeaders(request)
        guard let handle = curl_easy_init() else { throw SCEPError(.transport, "libcurl could not start a transfer") }
        defer { curl_easy_cleanup(handle) }
        let sink = ResponseSink(limit: options.maxResponseBytes)
        let sinkPointer = Unmanaged.passRetained(sink)
        defer { sinkPointer.release() }

        var headerList: UnsafeMutablePointer<curl_slist>? = nil
        defer { curl_slist_free_all(headerList) }
        for (name, value) in request.headers.sorted(by: { $0.key < $1.key }) {
            headerList = curl_slist_append(headerList, "\(name): \(value)")
        }
        headerList = curl_slist_append(headerList, "Expect:")  // no 100-continue round trip

        var setupFailed = false
        func check(_ code: CURLcode) { if code != CURLE_OK { setupFailed = true } }
        check(enroll_curl_setopt_string(handle, CURLOPT_URL, request.url))
        check(enroll_curl_setopt_string(handle, CURLOPT_PROTOCOLS_STR, "http,https"))
        check(enroll_curl_setopt_long(handle, CURLOPT_FOLLOWLOCATION, 0))
        check(enroll_curl_setopt_long(handle, CURLOPT_NOSIGNAL, 1))
        check(enroll_curl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, Int(options.connectTimeout * 1000)))
        check(enroll_curl_setopt_long(handle, CURLOPT_TIMEOUT_MS, Int(options.totalTimeout * 1000)))
        check(enroll_curl_setopt_string(handle, CURLOPT_USERAGENT, options.userAgent))
        check(enroll_curl_setopt_long(handle, CURLOPT_SSL_VERIFYPEER, 1))
        check(enroll_curl_setopt_long(handle, CURLOPT_SSL_VERIFYHOST, 2))
        if let bundle = options.caBundlePath {
            check(enroll_curl_setopt_string(handle, CURLOPT_CAINFO, bundle))
        }
        check(enroll_curl_setopt_slist(handle, CURLOPT_HTTPHEADER, headerList))
        check(enroll_curl_setopt_write(handle, CURLOPT_WRITEFUNCTION, { pointer, size, count, context in
            guard let pointer, let context else { return 0 }
            let sink = Unmanaged<ResponseSink>.fromOpaque(context).takeUnretainedValue()
            return sink.appendBody(UnsafeRawBufferPointer(start: pointer, count: size * count))
        }))
        check(enroll_curl_setopt_pointer(handle, CURLOPT_WRITEDATA, sinkPointer.toOpaque()))
        check(enroll_curl_setopt_write(handle, CURLOPT_HEADERFUNCTION, { pointer, size, count, context in
            guard let pointer, let context else { return 0 }
            let sink = Unmanaged<ResponseSink>.fromOpaque(context).takeUnretainedValue()
            sink.appendHeaderLine(UnsafeRawBufferPointer(start: pointer, count: size * count))
            return size * count
        }))
        check(enroll_curl_setopt_pointer(handle, CURLOPT_HEADERDATA, sinkPointer.toOpaque()))
        if request.method == .post {
            check(enroll_curl_setopt_long(handle, CURLOPT_POST, 1))
            check(enroll_curl_setopt_off(handle, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(request.body.count)))
        }
        guard !setupFailed else { throw SCEPError(.transport, "libcurl rejected the transfer options for \(Self.redacted(request.url))") }

        let code: CURLcode = request.body.withUnsafeBytes { body in
            if request.method == .post {
                // COPYPOSTFIELDS copies, so the buffer's lifetime does not matter.
                _ = enroll_curl_setopt_pointer(handle, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: body.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!))
            }
            return curl_easy_perform(handle)
        }
        if sink.overflowed {
            throw SCEPError(.malformedReply, "the reply from \(Self.redacted(request.url)) is larger than \(options.maxResponseBytes) bytes; refused")
        }
        guard code == CURLE_OK else {
            let reason = String(cString: curl_easy_strerror(code))
            // Nothing of the request went out (no connection, or none by the timeout):
            // safe to send again even when it is not idempotent.
            var requestBytes = 0
            _ = enroll_curl_getinfo_long(handle, CURLINFO_REQUEST_SIZE, &requestBytes)
            let neverSent = code == CURLE_COULDNT_RESOLVE_HOST || code == CURLE_COULDNT_CONNECT || requestBytes == 0
            throw SCEPError(neverSent ? .unreachable : .transport, "\(request.method.rawValue) \(Self.redacted(request.url)) failed: \(reason)")
        }
        var status = 0
        _ = enroll_curl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        let headers = sink.headers
        if (300...399).contains(status) {
            throw SCEPError(.redirect, "\(Self.redacted(request.url)) redirects (HTTP \(status)) to \(headers["location"] ?? "an unnamed place"); "
                            + "redirects are not followed: put the final URL in the configuration if it is the right server")
        }
        return HTTPResponse(status: status, headers: headers, body: sink.body)
    }

    /// Refuses a header whose name or value holds CR, LF or NUL: libcurl sends the
    /// text as given, so a line break would end the header and start another one
    /// (header injection; e.g. from a token file with two lines). Callers check
    /// their input first; this is the last line of defence. The message names the
    /// header, never its value: that may be a bearer token.
    static func checkHeaders(_ request: HTTPRequest) throws {
        func isForbidden(_ byte: UInt8) -> Bool { byte == 0x0D || byte == 0x0A || byte == 0x00 }
        for (name, value) in request.headers.sorted(by: { $0.key < $1.key }) {
            let inName = name.utf8.contains(where: isForbidden)
            guard inName || value.utf8.contains(where: isForbidden) else { continue }
            // A name with a line break is shown escaped, so the message stays one line.
            let shownName = inName ? String(reflecting: name) : name
            throw SCEPError(.invalidRequest, "the request to \(redacted(request.url)) was not sent: the header "
                            + "\(shownName) has a line break or NUL in its \(inName ? "name" : "value"); "
                            + "check the configured value it was built from")
        }
    }

    /// URLs are logged without their query: a GET PKIOperation carries the
    /// (encrypted) request there, and an endpoint URL might carry a token.
    public static func redacted(_ url: String) -> String {
        guard let index = url.firstIndex(of: "?") else { return url }
        return String(url[..<index]) + "?…"
    }
}

/// Collects the response; shared with the libcurl callbacks through an opaque pointer.
private final class ResponseSink {
    let limit: Int
    var body: [UInt8] = []
    var headers: [String: String] = [:]
    var overflowed = false

    init(limit: Int) { self.limit = limit }

    func appendBody(_ bytes: UnsafeRawBufferPointer) -> Int {
        guard body.count + bytes.count <= limit else {
            overflowed = true
            return 0  // makes libcurl abort the transfer
        }
        body.append(contentsOf: bytes)
        return bytes.count
    }

    func appendHeaderLine(_ bytes: UnsafeRawBufferPointer) {
        switch HTTPHeaderLine.parse(bytes) {
        case .statusLine: headers = [:]  // a new response (after 100 Continue): start over
        case .field(let name, let value): headers[name] = value
        case nil: break
        }
    }
}

/// One line of a response header as libcurl hands it to the header callback (RFC 9112
/// §4 and §5): a status line, a `name: value` field, or something else (the empty line
/// that ends the header, garbage), which is ignored. A pure function of the server's
/// bytes, so it is unit-tested and fuzzed (`fuzz/`, target `textinputs`) on its own.
enum HTTPHeaderLine: Equatable {
    /// `HTTP/1.1 200 OK`: a new response begins (the one after a `100 Continue`).
    case statusLine
    /// A header field: the name lowercased, the value without surrounding whitespace.
    case field(name: String, value: String)

    /// Nil for a line that is neither (no colon): such a line is ignored.
    static func parse(_ bytes: some Collection<UInt8>) -> HTTPHeaderLine? {
        let line = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        if line.hasPrefix("HTTP/") { return .statusLine }
        guard let colon = line.firstIndex(of: ":") else { return nil }
        let name = line[..<colon].lowercased()
        let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        return .field(name: name, value: value)
    }
}

public enum AgentVersion {
    public static let string = "0.1.0"
}
