import Dispatch
import Foundation

/// One HTTP exchange. The body is bytes: SCEP messages are binary.
public struct HTTPRequest: Sendable, Equatable {
    public enum Method: String, Sendable { case get = "GET", post = "POST" }
    public var method: Method
    public var url: String
    public var headers: [String: String]
    public var body: [UInt8]
    /// Whether sending it twice is harmless. A PKIOperation is not: a CA that
    /// processed the first copy may issue twice or refuse the reused challenge.
    public var isIdempotent: Bool
    /// HTTP authentication the transport performs itself (Basic, NTLM); nil: none, or
    /// whatever `headers` carry (a bearer token).
    public var credentials: HTTPCredentials?

    public init(method: Method, url: String, headers: [String: String] = [:], body: [UInt8] = [], isIdempotent: Bool = true,
                credentials: HTTPCredentials? = nil) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.isIdempotent = isIdempotent
        self.credentials = credentials
    }
}

/// A user name and password for HTTP authentication by the transport: Basic (RFC 7617)
/// or NTLM (MS-NLMP, a challenge-response over one connection). Handed to libcurl as
/// CURLOPT_USERNAME / CURLOPT_PASSWORD, never put into the URL (where it would show in
/// messages) or into a header the caller builds. Its description never shows the password.
public struct HTTPCredentials: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public enum Scheme: String, Sendable { case basic, ntlm }
    public var scheme: Scheme
    /// For NTLM also `DOMAIN\user` or `user@domain`.
    public var username: String
    public var password: String

    public init(scheme: Scheme, username: String, password: String) {
        self.scheme = scheme
        self.username = username
        self.password = password
    }

    public var description: String { "\(scheme.rawValue) credentials for \(username) (password redacted)" }
    public var debugDescription: String { description }
    /// `dump` sees no children, so no password.
    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .struct) }
}

public struct HTTPResponse: Sendable, Equatable {
    public var status: Int
    /// Header names lowercased.
    public var headers: [String: String]
    public var body: [UInt8]
    /// The proxy the request went through; an error status may then be the proxy's.
    public var proxy: ProxyRoute?

    public init(status: Int, headers: [String: String] = [:], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// "HTTP 403", or "HTTP 403 (through proxy http://… (https_proxy in the environment))",
    /// since a proxy answers with statuses of its own.
    public var statusText: String {
        "HTTP \(status)" + (proxy.map { " (through \($0))" } ?? "")
    }

    public var contentType: String? { headers["content-type"] }
}

/// The network seam: libcurl in production; tests use loopback servers.
public protocol HTTPTransport: Sendable {
    func perform(_ request: HTTPRequest) async throws -> HTTPResponse
}

/// How long to wait between attempts. Injected so tests never sleep.
public protocol Sleeper: Sendable {
    func sleep(seconds: Double) async throws
}

/// Sleeps on a one-shot wall-clock Dispatch timer.
///
/// A wall-clock deadline follows clock steps and suspends, and cancelling the
/// task ends the sleep at once. (Replacing `Task.sleep` with it did not remove
/// the idle daemon's 1 Hz wakeup: that comes from libdispatch's manager thread
/// re-programming its timer each second; see benchmarks/README.md.)
public struct SystemSleeper: Sleeper {
    public init() {}

    public func sleep(seconds: Double) async throws {
        guard seconds > 0 else { return try Task.checkCancellation() }
        let timer = OneShotTimer()
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
                timer.start(after: seconds, continuation)
            }
        } onCancel: {
            timer.cancel()
        }
    }
}

/// A Dispatch timer whose continuation is resumed exactly once: by firing or by cancellation.
/// `@unchecked Sendable`: `continuation`, `source` and `cancelled` are only touched with `lock` held.
private final class OneShotTimer: @unchecked Sendable {
    private let lock = NSLock()
    private var continuation: CheckedContinuation<Void, Error>?
    private var source: DispatchSourceTimer?
    private var cancelled = false

    func start(after seconds: Double, _ continuation: CheckedContinuation<Void, Error>) {
        lock.lock()
        if cancelled {
            lock.unlock()
            continuation.resume(throwing: CancellationError())
            return
        }
        self.continuation = continuation
        let source = DispatchSource.makeTimerSource(queue: .global())
        source.schedule(wallDeadline: .now() + seconds, leeway: .milliseconds(100))
        source.setEventHandler { [weak self] in self?.finish(nil) }
        self.source = source
        lock.unlock()
        source.resume()
    }

    func cancel() {
        lock.lock()
        cancelled = true
        lock.unlock()
        finish(CancellationError())
    }

    private func finish(_ error: Error?) {
        lock.lock()
        let pending = continuation
        continuation = nil
        source?.cancel()
        source = nil
        lock.unlock()
        if let error { pending?.resume(throwing: error) } else { pending?.resume() }
    }
}

/// Wraps a transport with bounded retries and exponential backoff.
///
/// Idempotent requests are retried after any transport failure or 5xx. Others
/// (PKIOperation) only when the server cannot have acted on them: nothing was
/// sent (`unreachable`) or it said 503 Service Unavailable. A reply cut off
/// mid-way is not re-sent; the persisted transaction is polled on the next run.
public struct RetryingTransport: HTTPTransport {
    public let base: any HTTPTransport
    public let maxAttempts: Int
    public let initialDelay: Double
    public let sleeper: any Sleeper
    public let events: SCEPEventHandler

    public init(base: any HTTPTransport, maxAttempts: Int = 3, initialDelay: Double = 1,
                sleeper: any Sleeper = SystemSleeper(), events: @escaping SCEPEventHandler = { _ in }) {
        self.base = base
        self.maxAttempts = max(1, maxAttempts)
        self.initialDelay = initialDelay
        self.sleeper = sleeper
        self.events = events
    }

    public func perform(_ request: HTTPRequest) async throws -> HTTPResponse {
        var attempt = 1
        while true {
            let reason: String
            do {
                let response = try await base.perform(request)
                let retryable = request.isIdempotent ? (500...599).contains(response.status) : response.status == 503
                guard retryable, attempt < maxAttempts else { return response }
                reason = response.statusText
            } catch let error as SCEPError
                        where attempt < maxAttempts && (error.code == .unreachable || (error.code == .transport && request.isIdempotent)) {
                reason = error.message
            }
            let delay = initialDelay * pow(2, Double(attempt - 1))
            events(.retrying(attempt: attempt, delaySeconds: delay, reason: reason))
            try await sleeper.sleep(seconds: delay)
            attempt += 1
        }
    }
}
