import CCurl
import Foundation
import Synchronization

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
        /// `proxy`; with `.environment`, the variables in `environment` (see `ProxyResolver`).
        public var proxy: ProxySetting = .environment
        /// `proxy_credentials_file`: given to libcurl (CURLOPT_PROXYUSERNAME/PASSWORD), never put in a URL.
        public var proxyCredentials: HTTPCredentials?
        public var environment: [String: String] = ProcessInfo.processInfo.environment
        public init() {}
    }

    public let options: Options

    public init(options: Options = Options()) {
        self.options = options
        _ = Self.globalInit
    }

    private static let globalInit: Void = { curl_global_init(Int(CURL_GLOBAL_DEFAULT)) }()

    /// Throws `CancellationError` when the calling task is cancelled before the transfer
    /// has finished: the transfer is aborted (its connection closed) at once, not at the
    /// timeout, and the caller can tell shutdown from network trouble.
    public func perform(_ request: HTTPRequest) async throws -> HTTPResponse {
        let cancellation = TransferCancellation()
        return try await withTaskCancellationHandler {
            // The transfer blocks its thread: keep it off the cooperative thread pool.
            try await withCheckedThrowingContinuation { continuation in
                Thread.detachNewThread {
                    continuation.resume(with: Result { try performBlocking(request, cancellation: cancellation) })
                }
            }
        } onCancel: {
            cancellation.cancel()
        }
    }

    private func performBlocking(_ request: HTTPRequest, cancellation: TransferCancellation) throws -> HTTPResponse {
        try Self.checkHeaders(request)
        if cancellation.isCancelled { throw CancellationError() }  // nothing sent yet
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
        // Always set: "" makes libcurl go direct instead of reading the environment itself,
        // so the proxy taken is the one `route` names in every message.
        let route = ProxyResolver.route(for: request.url, setting: options.proxy, environment: options.environment)
        check(enroll_curl_setopt_string(handle, CURLOPT_PROXY, route?.url ?? ""))
        if route != nil, let credentials = options.proxyCredentials {
            check(Self.withWipedCString(credentials.username) { enroll_curl_setopt_string(handle, CURLOPT_PROXYUSERNAME, $0) })
            check(Self.withWipedCString(credentials.password) { enroll_curl_setopt_string(handle, CURLOPT_PROXYPASSWORD, $0) })
        }
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
        // libcurl's way for a caller to abort a running transfer: a non-zero return from
        // the progress callback, which it calls on every pass of the transfer loop.
        check(enroll_curl_setopt_long(handle, CURLOPT_NOPROGRESS, 0))
        check(enroll_curl_setopt_xferinfo(handle, CURLOPT_XFERINFOFUNCTION, { context, _, _, _, _ in
            guard let context else { return 0 }
            return Unmanaged<TransferCancellation>.fromOpaque(context).takeUnretainedValue().isCancelled ? 1 : 0
        }))
        check(enroll_curl_setopt_pointer(handle, CURLOPT_XFERINFODATA, Unmanaged.passUnretained(cancellation).toOpaque()))
        if request.method == .post {
            check(enroll_curl_setopt_long(handle, CURLOPT_POST, 1))
            check(enroll_curl_setopt_off(handle, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(request.body.count)))
        }
        if let credentials = request.credentials, !Self.setCredentials(credentials, on: handle) {
            setupFailed = true
        }
        guard !setupFailed else { throw SCEPError(.transport, "libcurl rejected the transfer options for \(Self.redacted(request.url))") }

        let code: CURLcode = request.body.withUnsafeBytes { body in
            if request.method == .post {
                // COPYPOSTFIELDS copies, so the buffer's lifetime does not matter.
                _ = enroll_curl_setopt_pointer(handle, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: body.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!))
            }
            return withExtendedLifetime(cancellation) { Self.transfer(handle, cancellation: cancellation) }
        }
        if cancellation.isCancelled && code != CURLE_OK { throw CancellationError() }
        if sink.overflowed {
            throw SCEPError(.malformedReply, "the reply from \(Self.redacted(request.url)) is larger than \(options.maxResponseBytes) bytes; refused")
        }
        if let route, let failure = Self.proxyFailure(code, route: route, handle: handle, url: request.url) {
            throw failure
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
            throw SCEPError(.redirect, "\(Self.redacted(request.url)) redirects (HTTP \(status)) to \(headers["location"].map { ServerText.excerpt($0) } ?? "an unnamed place"); "
                            + "redirects are not followed: put the final URL in the configuration if it is the right server")
        }
        var response = HTTPResponse(status: status, headers: headers, body: sink.body)
        response.proxy = route
        return response
    }

    /// A failure of the proxy rather than of the server, named as such: the proxy's host
    /// does not resolve, nothing listens there, it refuses the tunnel (CONNECT) or asks for
    /// credentials. The server never saw the request.
    private static func proxyFailure(_ code: CURLcode, route: ProxyRoute, handle: UnsafeMutableRawPointer, url: String) -> SCEPError? {
        var connectCode = 0
        _ = enroll_curl_getinfo_long(handle, CURLINFO_HTTP_CONNECTCODE, &connectCode)
        var status = 0
        _ = enroll_curl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        let target = redacted(url)
        let authentication = "set proxy_credentials_file (a file holding user:password) or the credentials in the proxy URL"
        if code == CURLE_COULDNT_RESOLVE_PROXY {
            return SCEPError(.unreachable, "cannot resolve the host of \(route) for \(target); check the proxy setting")
        }
        if code == CURLE_COULDNT_CONNECT {
            return SCEPError(.unreachable, "cannot connect to \(route) for \(target); check that the proxy runs and the proxy setting")
        }
        if connectCode == 407 || (code == CURLE_OK && status == 407) {
            return SCEPError(.unreachable, "\(route) asks for authentication (HTTP 407) for \(target); \(authentication)")
        }
        if connectCode >= 300 {
            return SCEPError(.unreachable, "\(route) refused to open a tunnel to \(target) (HTTP \(connectCode)); the proxy's rules must allow it")
        }
        return nil
    }

    /// Basic or NTLM done by libcurl (CURLOPT_HTTPAUTH with one scheme only: Basic is sent
    /// with the first request, NTLM starts its negotiation there). Not in the URL, where it
    /// could reach a message; libcurl copies the strings, and our copies are wiped at once.
    private static func setCredentials(_ credentials: HTTPCredentials, on handle: UnsafeMutableRawPointer) -> Bool {
        let scheme = credentials.scheme == .basic ? enroll_curlauth_basic : enroll_curlauth_ntlm
        guard enroll_curl_setopt_long(handle, CURLOPT_HTTPAUTH, Int(bitPattern: UInt(scheme))) == CURLE_OK else { return false }
        let user = withWipedCString(credentials.username) { enroll_curl_setopt_string(handle, CURLOPT_USERNAME, $0) }
        let password = withWipedCString(credentials.password) { enroll_curl_setopt_string(handle, CURLOPT_PASSWORD, $0) }
        return user == CURLE_OK && password == CURLE_OK
    }

    /// `text` as a NUL-terminated C string in a buffer of our own, zeroed (explicit_bzero,
    /// which the compiler may not drop) before it is freed. The String itself cannot be wiped.
    static func withWipedCString<Result>(_ text: String, _ body: (UnsafePointer<CChar>) -> Result) -> Result {
        let count = text.utf8.count + 1
        let buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: count)
        defer {
            explicit_bzero(buffer, count)
            buffer.deallocate()
        }
        _ = UnsafeMutableBufferPointer(start: buffer, count: count - 1).initialize(from: text.utf8)
        buffer[count - 1] = 0
        return buffer.withMemoryRebound(to: CChar.self, capacity: count) { body($0) }
    }

    /// curl_easy_perform, through a multi handle of the transfer's own: its wait
    /// (curl_multi_poll) can be woken by a cancellation from another thread, where
    /// curl_easy_perform's would sleep on for up to a second before the progress callback
    /// ran again.
    private static func transfer(_ handle: UnsafeMutableRawPointer, cancellation: TransferCancellation) -> CURLcode {
        guard let multi = curl_multi_init() else { return CURLE_OUT_OF_MEMORY }
        defer { curl_multi_cleanup(multi) }
        guard curl_multi_add_handle(multi, handle) == CURLM_OK else { return CURLE_FAILED_INIT }
        defer { curl_multi_remove_handle(multi, handle) }
        cancellation.attach(multi)
        defer { cancellation.detach() }  // runs first: nothing wakes a handle being freed

        var running: Int32 = 1
        while running > 0 {
            guard curl_multi_perform(multi, &running) == CURLM_OK else { return CURLE_FAILED_INIT }
            // 1 s at most, less when a libcurl timer (timeouts) is due sooner.
            if running > 0 && curl_multi_poll(multi, nil, 0, 1000, nil) != CURLM_OK { return CURLE_FAILED_INIT }
        }
        var queued: Int32 = 0
        while let message = curl_multi_info_read(multi, &queued) {
            if message.pointee.msg == CURLMSG_DONE { return message.pointee.data.result }
        }
        return CURLE_FAILED_INIT
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

/// Set from the task's cancellation handler, read by the transfer thread's progress
/// callback; wakes the transfer's wait so the callback runs at once.
private final class TransferCancellation: Sendable {
    private let cancelled = Atomic<Bool>(false)
    /// The multi handle while the transfer runs (curl_multi_wakeup is the one libcurl call
    /// that may come from another thread).
    private let waiting = Mutex<MultiHandle?>(nil)

    /// `@unchecked Sendable`: the pointer is only handed to curl_multi_wakeup, which libcurl
    /// documents as safe to call from any thread, and only while the Mutex says it is attached.
    private struct MultiHandle: @unchecked Sendable { let pointer: UnsafeMutableRawPointer }

    var isCancelled: Bool { cancelled.load(ordering: .acquiring) }

    func cancel() {
        cancelled.store(true, ordering: .releasing)
        waiting.withLock { multi in
            if let multi { _ = curl_multi_wakeup(multi.pointer) }
        }
    }

    func attach(_ multi: UnsafeMutableRawPointer) {
        let handle = MultiHandle(pointer: multi)
        waiting.withLock { $0 = handle }
        // Cancelled between the check before the transfer and now: the wakeup is kept for
        // the first wait.
        if isCancelled { _ = curl_multi_wakeup(multi) }
    }

    func detach() { waiting.withLock { $0 = nil } }
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
