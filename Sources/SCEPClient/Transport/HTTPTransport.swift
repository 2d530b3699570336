import Foundation

/// One HTTP exchange. The body is bytes: SCEP messages are binary.
public struct HTTPRequest: Sendable, Equatable {
    public enum Method: String, Sendable { case get = "GET", post = "POST" }
    public var method: Method
    public var url: String
    public var headers: [String: String]
    public var body: [UInt8]

    public init(method: Method, url: String, headers: [String: String] = [:], body: [UInt8] = []) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
    }
}

public struct HTTPResponse: Sendable, Equatable {
    public var status: Int
    /// Header names lowercased.
    public var headers: [String: String]
    public var body: [UInt8]

    public init(status: Int, headers: [String: String] = [:], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
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

public struct TaskSleeper: Sleeper {
    public init() {}
    public func sleep(seconds: Double) async throws {
        guard seconds > 0 else { return }
        try await Task.sleep(nanoseconds: UInt64(seconds * 1_000_000_000))
    }
}

/// Wraps a transport with bounded retries: connection failures and 5xx are
/// retried with exponential backoff; everything else is returned at once.
public struct RetryingTransport: HTTPTransport {
    public let base: any HTTPTransport
    public let maxAttempts: Int
    public let initialDelay: Double
    public let sleeper: any Sleeper
    public let events: SCEPEventHandler

    public init(base: any HTTPTransport, maxAttempts: Int = 3, initialDelay: Double = 1,
                sleeper: any Sleeper = TaskSleeper(), events: @escaping SCEPEventHandler = { _ in }) {
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
                guard (500...599).contains(response.status), attempt < maxAttempts else { return response }
                reason = "HTTP \(response.status)"
            } catch let error as SCEPError where error.code == .transport && attempt < maxAttempts {
                reason = error.message
            }
            let delay = initialDelay * pow(2, Double(attempt - 1))
            events(.retrying(attempt: attempt, delaySeconds: delay, reason: reason))
            try await sleeper.sleep(seconds: delay)
            attempt += 1
        }
    }
}
