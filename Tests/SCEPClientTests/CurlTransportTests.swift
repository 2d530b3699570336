import Foundation
import TestSupport
import XCTest

@testable import SCEPClient

/// The libcurl transport against real loopback servers: TLS verification with
/// a configured bundle, redirects refused, User-Agent, size limit, retries.
final class CurlTransportTests: XCTestCase {
    func testUserAgentNamesTheAgentAndVersion() async throws {
        let server = try TestHTTPServer(response: .text("ok"))
        defer { server.stop() }
        let response = try await CurlTransport().perform(HTTPRequest(method: .get, url: server.urlString + "/x"))
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(server.requests.first?.headers["User-Agent"], "enroll-agent/\(AgentVersion.string)")
    }

    func testARedirectIsReportedNotFollowed() async throws {
        let target = try TestHTTPServer(response: .text("elsewhere"))
        defer { target.stop() }
        let server = try TestHTTPServer(response: TestHTTPResponse(status: 302, headers: ["Location": target.urlString + "/scep"]))
        defer { server.stop() }
        do {
            _ = try await CurlTransport().perform(HTTPRequest(method: .get, url: server.urlString + "/scep?operation=GetCACaps"))
            XCTFail("a redirect was followed or ignored")
        } catch let error as SCEPError {
            XCTAssertEqual(error.code, .redirect)
            XCTAssertTrue(error.message.contains(target.urlString), error.message)
        }
        XCTAssertEqual(target.requestCount, 0, "the redirect target must not be contacted")
    }

    func testAnOversizedReplyIsRefused() async throws {
        let server = try TestHTTPServer(response: .ok([UInt8](repeating: 0x41, count: 200_000)))
        defer { server.stop() }
        var options = CurlTransport.Options()
        options.maxResponseBytes = 100_000
        do {
            _ = try await CurlTransport(options: options).perform(HTTPRequest(method: .get, url: server.urlString))
            XCTFail("an oversized reply was accepted")
        } catch let error as SCEPError {
            XCTAssertEqual(error.code, .malformedReply)
        }
    }

    /// Defence in depth against header injection: nothing is sent, and the message
    /// names the header but never its value (it may be a bearer token).
    func testAHeaderWithALineBreakOrNULIsRefusedBeforeSending() async throws {
        let server = try TestHTTPServer(response: .text("ok"))
        defer { server.stop() }
        let bad: [(name: String, value: String)] = [
            ("Authorization", "Bearer VALUE-SECRET\r\nX-Injected: yes"),
            ("Authorization", "Bearer VALUE-SECRET\nX-Injected: yes"),
            ("Authorization", "Bearer VALUE-SECRET\rX"),
            ("Authorization", "Bearer VALUE-SECRET\u{0}X"),
            ("X-Bad\r\nX-Injected", "VALUE-SECRET"),
        ]
        for (name, value) in bad {
            let request = HTTPRequest(method: .get, url: server.urlString + "/x?token=QUERY", headers: ["Accept": "*/*", name: value])
            do {
                _ = try await CurlTransport().perform(request)
                XCTFail("sent a request with header \(name.debugDescription): \(value.debugDescription)")
            } catch let error as SCEPError {
                XCTAssertEqual(error.code, .invalidRequest)
                XCTAssertTrue(error.message.contains(name == "Authorization" ? "header Authorization" : #"header "X-Bad\r\nX-Injected""#), error.message)
                XCTAssertFalse(error.message.contains("VALUE-SECRET"), error.message)
                XCTAssertFalse(error.message.contains("QUERY"), error.message)
                XCTAssertFalse(error.message.contains("\n"), "the message must stay one line: \(error.message)")
            }
        }
        XCTAssertEqual(server.connectionCount, 0)
        // A tab inside a value is legal HTTP (RFC 9110 §5.5) and still goes out.
        _ = try await CurlTransport().perform(HTTPRequest(method: .get, url: server.urlString, headers: ["X-Ok": "a\tb"]))
        XCTAssertEqual(server.requests.last?.headers["X-Ok"], "a\tb")
    }

    func testPOSTSendsTheBodyAndContentType() async throws {
        let server = try TestHTTPServer(response: .ok([1, 2, 3]))
        defer { server.stop() }
        let body: [UInt8] = (0..<3000).map { UInt8($0 % 251) }
        let request = SCEPService.pkiOperationRequest(url: server.urlString + "/scep", message: body, usePOST: true)
        let response = try await CurlTransport().perform(request)
        XCTAssertEqual(response.body, [1, 2, 3])
        let received = try XCTUnwrap(server.requests.first)
        XCTAssertEqual(received.method, "POST")
        XCTAssertEqual(received.body, body)
        XCTAssertEqual(received.headers["Content-Type"], "application/x-pki-message")
        XCTAssertEqual(received.query("operation"), "PKIOperation")
    }

    func testRetryingTransportRetries5xxBoundedly() async throws {
        let server = try TestHTTPServer(response: .status(503))
        defer { server.stop() }
        let sleeps = SleepRecorder()
        let transport = RetryingTransport(base: CurlTransport(), maxAttempts: 3, initialDelay: 1, sleeper: sleeps)
        let response = try await transport.perform(HTTPRequest(method: .get, url: server.urlString))
        XCTAssertEqual(response.status, 503)
        XCTAssertEqual(server.requestCount, 3)
        XCTAssertEqual(sleeps.delays, [1, 2])
    }

    /// Shutdown while the server sits on a request: cancelling the task ends the transfer
    /// at once with CancellationError (not a transport error: the caller must not count a
    /// network failure), and the connection is closed, not left to the 30 s timeout.
    func testCancellingTheTaskAbortsAHangingTransferAndClosesItsConnection() async throws {
        let server = try TestHTTPServer(response: .hang)
        defer { server.stop() }
        var options = CurlTransport.Options()
        options.totalTimeout = 30
        let transfer = Task { try await CurlTransport(options: options).perform(HTTPRequest(method: .get, url: server.urlString + "/scep")) }
        XCTAssertTrue(server.waitForRequests(count: 1, timeout: 10), "the request never arrived")
        // Idle long enough that libcurl sits in its wait of up to 1 s (it wakes at 200 ms
        // after sending, then every second): without a wakeup the abort would come 0.9 s late.
        try await Task.sleep(for: .milliseconds(1300))

        let cancelled = ContinuousClock.now
        transfer.cancel()
        let result = await transfer.result
        let elapsed = ContinuousClock.now - cancelled

        XCTAssertThrowsError(try result.get()) { error in
            XCTAssertTrue(error is CancellationError, "expected CancellationError, got \(type(of: error)): \(error)")
        }
        XCTAssertLessThan(elapsed, .milliseconds(500), "the cancelled transfer took \(elapsed) to end")
        XCTAssertTrue(server.waitForClientClosures(count: 1, timeout: 2), "the server never saw the connection closed")
    }

    /// The same for a POST whose reply never comes (a PKIOperation).
    func testCancellingAHangingPOSTEndsItWithCancellationError() async throws {
        let server = try TestHTTPServer(response: .hang)
        defer { server.stop() }
        let request = SCEPService.pkiOperationRequest(url: server.urlString + "/scep", message: [UInt8](repeating: 7, count: 5000), usePOST: true)
        let transfer = Task { try await CurlTransport().perform(request) }
        XCTAssertTrue(server.waitForRequests(count: 1, timeout: 10), "the request never arrived")
        XCTAssertEqual(server.requests.first?.body.count, 5000)

        let cancelled = ContinuousClock.now
        transfer.cancel()
        let result = await transfer.result
        XCTAssertLessThan(ContinuousClock.now - cancelled, .milliseconds(500))
        XCTAssertThrowsError(try result.get()) { XCTAssertTrue($0 is CancellationError, "\($0)") }
        XCTAssertTrue(server.waitForClientClosures(count: 1, timeout: 2), "the server never saw the connection closed")
    }

    /// A task cancelled before its transfer starts sends nothing.
    func testATransferOfAnAlreadyCancelledTaskSendsNothing() async throws {
        let server = try TestHTTPServer(response: .text("ok"))
        defer { server.stop() }
        let transfer = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return try await CurlTransport().perform(HTTPRequest(method: .get, url: server.urlString))
        }
        let result = await transfer.result
        XCTAssertThrowsError(try result.get()) { XCTAssertTrue($0 is CancellationError, "\($0)") }
        XCTAssertEqual(server.connectionCount, 0)
    }

    func testHTTPSVerifiesAgainstTheConfiguredBundleOnly() async throws {
        let openssl = try PeerRequirementOrSkipSCEP.require("openssl")
        let directory = try TemporaryDirectory(prefix: "tls")
        defer { directory.remove() }
        let key = directory.appending("server.key"), certificate = directory.appending("server.pem")
        let made = try ChildProcess.run(executable: openssl, arguments: [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", key, "-out", certificate], timeout: 30)
        XCTAssertTrue(made.status.isSuccess, made.errorOutput)
        try "hello over tls".write(toFile: directory.appending("caps"), atomically: false, encoding: .utf8)
        let port = try SCEPServerProcess.freeLoopbackPort()
        let server = try ChildProcess(
            executable: openssl, arguments: ["s_server", "-accept", "127.0.0.1:\(port)", "-key", key, "-cert", certificate, "-WWW", "-quiet"],
            workingDirectory: directory.path, outputPath: directory.appending("s_server.log"))
        defer { _ = server.terminate(gracePeriod: 1) }

        var trusting = CurlTransport.Options()
        trusting.caBundlePath = certificate
        var response: HTTPResponse?
        for _ in 0..<50 {  // s_server needs a moment to listen
            response = try? await CurlTransport(options: trusting).perform(HTTPRequest(method: .get, url: "https://127.0.0.1:\(port)/caps"))
            if response != nil { break }
            try await Task.sleep(nanoseconds: 100_000_000)
        }
        XCTAssertEqual(response.map { String(decoding: $0.body, as: UTF8.self) }, "hello over tls")

        do {
            _ = try await CurlTransport().perform(HTTPRequest(method: .get, url: "https://127.0.0.1:\(port)/caps"))
            XCTFail("a certificate outside the system store was accepted")
        } catch let error as SCEPError {
            // The handshake failed before any request was sent.
            XCTAssertEqual(error.code, .unreachable)
            XCTAssertTrue(error.message.lowercased().contains("certificate"), error.message)
        }
    }
}

/// The header callback's line parser (`HTTPHeaderLine`), offline.
final class HTTPHeaderLineTests: XCTestCase {
    func testLinesAsLibcurlHandsThemOver() {
        let cases: [(line: String, parsed: HTTPHeaderLine?)] = [
            ("HTTP/1.1 200 OK\r\n", .statusLine),
            ("HTTP/2 503\r\n", .statusLine),
            ("Retry-After: 120\r\n", .field(name: "retry-after", value: "120")),
            ("Content-Type:application/x-x509-ca-ra-cert\r\n", .field(name: "content-type", value: "application/x-x509-ca-ra-cert")),
            ("Date:  \tSun, 06 Nov 1994 08:49:37 GMT \t\r\n", .field(name: "date", value: "Sun, 06 Nov 1994 08:49:37 GMT")),
            ("Location: http://h/a:b\r\n", .field(name: "location", value: "http://h/a:b")),  // the first colon splits
            ("X-Empty:\r\n", .field(name: "x-empty", value: "")),
            (": no name\r\n", .field(name: "", value: "no name")),
            ("\r\n", nil),  // the end of the header
            ("no colon here\r\n", nil),
            ("http/1.1 200 OK: x\r\n", .field(name: "http/1.1 200 ok", value: "x")),  // not a status line: the prefix is case-sensitive
        ]
        for item in cases {
            XCTAssertEqual(HTTPHeaderLine.parse(Array(item.line.utf8)), item.parsed, item.line.debugDescription)
        }
    }

    func testBytesThatAreNotUTF8AreReplacedNotTrusted() {
        XCTAssertEqual(HTTPHeaderLine.parse([0x58, 0xFF, 0x3A, 0x20, 0xC3, 0x0D, 0x0A]), .field(name: "x\u{FFFD}", value: "\u{FFFD}"))
    }
}

private final class SleepRecorder: Sleeper, @unchecked Sendable {
    private let lock = NSLock()
    private var recorded: [Double] = []
    var delays: [Double] { lock.lock(); defer { lock.unlock() }; return recorded }
    func sleep(seconds: Double) async throws { lock.withLock { recorded.append(seconds) } }
}

private enum PeerRequirementOrSkipSCEP {
    static func require(_ binary: String) throws -> String {
        do { return try PeerRequirement.require(binary: binary) } catch let missing as PeerUnavailable where missing.maySkip {
            throw XCTSkip(missing.description)
        }
    }
}

/// The production sleeper: sleeps about as long as asked, and stops at once when cancelled.
final class SystemSleeperTests: XCTestCase {
    func testSleepsAboutTheRequestedTime() async throws {
        let started = Date()
        try await SystemSleeper().sleep(seconds: 0.3)
        let elapsed = Date().timeIntervalSince(started)
        XCTAssertGreaterThanOrEqual(elapsed, 0.29)
        XCTAssertLessThan(elapsed, 1.5)
    }

    func testCancellationEndsALongSleepPromptly() async throws {
        let started = Date()
        let task = Task { try await SystemSleeper().sleep(seconds: 3600) }
        try await Task.sleep(nanoseconds: 100_000_000)
        task.cancel()
        do {
            try await task.value
            XCTFail("a cancelled sleep returned normally")
        } catch is CancellationError {}
        XCTAssertLessThan(Date().timeIntervalSince(started), 2)
    }
}
