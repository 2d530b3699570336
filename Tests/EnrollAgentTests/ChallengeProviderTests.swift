import Foundation
import Glibc
import Logging
import SCEPClient
import TestSupport
import XCTest

@testable import EnrollAgent

// MARK: - Shared helpers

/// A Sleeper that records every requested delay instead of sleeping. After
/// `limit` sleeps it throws, so a provider that retries without bound makes
/// the test fail instead of hang.
final class RecordingSleeper: Sleeper, @unchecked Sendable {
    struct RunawayRetries: Error, CustomStringConvertible {
        let limit: Int
        var description: String { "the provider asked for more than \(limit) sleeps: its retries are not bounded" }
    }

    private let lock = NSLock()
    private var recorded: [Double] = []
    let limit: Int

    init(limit: Int = 20) { self.limit = limit }

    var sleeps: [Double] { lock.withLock { recorded } }

    func sleep(seconds: Double) async throws {
        let count = lock.withLock {
            recorded.append(seconds)
            return recorded.count
        }
        if count > limit { throw RunawayRetries(limit: limit) }
    }
}

/// Hands out one scripted response per request, then repeats the last one.
private final class ResponseScript: @unchecked Sendable {
    private let lock = NSLock()
    private var remaining: [TestHTTPResponse]

    init(_ responses: [TestHTTPResponse]) { remaining = responses }

    func next() -> TestHTTPResponse {
        lock.lock()
        defer { lock.unlock() }
        return remaining.count > 1 ? remaining.removeFirst() : remaining[0]
    }
}

/// Awaits `body` and returns the AgentError it threw; records a failure otherwise.
func expectAgentError(
    _ body: () async throws -> IssuedChallenge?, file: StaticString = #filePath, line: UInt = #line
) async -> AgentError? {
    do {
        let challenge = try await body()
        XCTFail("expected an AgentError, got a challenge (\(challenge == nil ? "nil" : "non-nil"))", file: file, line: line)
    } catch let error as AgentError {
        return error
    } catch {
        XCTFail("expected an AgentError, got \(type(of: error)): \(error)", file: file, line: line)
    }
    return nil
}

/// Writes an executable shell script and returns its path.
private func writeScript(_ body: String, named name: String, in directory: TemporaryDirectory) throws -> String {
    let path = directory.appending(name)
    try "#!/bin/sh\n\(body)\n".write(toFile: path, atomically: true, encoding: .utf8)
    guard chmod(path, 0o755) == 0 else { throw POSIXError(.EPERM) }
    return path
}

/// Observes processes the scripts under test started (they write `$$` to a file).
enum ScriptProcessProbe {
    /// Whether `pid` is gone (or only a zombie) within `timeout` seconds.
    static func hasExited(_ pid: pid_t, within timeout: TimeInterval) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        repeat {
            if kill(pid, 0) != 0 && errno == ESRCH { return true }
            // A zombie has exited; only its parent's reaping is pending.
            if let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
               let close = stat.lastIndex(of: ")"),
               stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("Z") {
                return true
            }
            usleep(20_000)
        } while Date() < deadline
        return false
    }

    /// Reads the pid a script wrote with `echo $$ > file`, waiting for it to appear.
    static func readPid(_ path: String, timeout: TimeInterval = 5) -> pid_t? {
        let deadline = Date().addingTimeInterval(timeout)
        repeat {
            if let text = try? String(contentsOfFile: path, encoding: .utf8),
               let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
                return pid
            }
            usleep(20_000)
        } while Date() < deadline
        return nil
    }
}

// MARK: - Endpoint provider

/// `EndpointChallengeProvider` over the real libcurl transport against a loopback server.
final class EndpointChallengeProviderTests: XCTestCase {
    private static let token = "tok-3f9a7c-DO-NOT-LEAK"
    private static let bodySecret = "BODY-SECRET-5d1e88"

    private var workspace: TemporaryDirectory!
    private var server: TestHTTPServer?
    private var tokenPath: String { workspace.appending("token") }
    /// What the provider logged (its waits for a busy endpoint).
    private var log = LogCapture()

    override func setUpWithError() throws {
        workspace = try TemporaryDirectory(prefix: "challenge-endpoint")
        log = LogCapture()
        try "\(Self.token)\n".write(toFile: tokenPath, atomically: true, encoding: .utf8)
    }

    override func tearDown() {
        server?.stop()
        workspace?.remove()
    }

    private static func json(_ text: String) -> TestHTTPResponse {
        .ok(Array(text.utf8), contentType: "application/json")
    }

    private static let goodAnswer = json("""
        {"challenge": "one-time-challenge-42", "expires_in": 600,
         "variables": {"UserPrincipalName": "alice@example.com", "DeviceID": "dev-7"}}
        """)

    /// Starts a server answering from `responses` in order (the last one repeats).
    private func serve(_ responses: [TestHTTPResponse]) throws -> TestHTTPServer {
        let script = ResponseScript(responses)
        let server = try TestHTTPServer { _ in script.next() }
        self.server = server
        return server
    }

    private func provider(
        url: String, tokenFile: String? = nil, sleeper: RecordingSleeper = RecordingSleeper(),
        totalTimeout: Double = 10, clock: any AgentClock = SystemClock()
    ) -> EndpointChallengeProvider {
        var options = CurlTransport.Options()
        options.totalTimeout = totalTimeout
        options.connectTimeout = min(totalTimeout, 5)
        let log = self.log
        return EndpointChallengeProvider(
            url: url, tokenFile: tokenFile ?? tokenPath, transport: CurlTransport(options: options), sleeper: sleeper,
            logger: Logger(label: "endpoint-test") { _ in log.handler }, clock: clock)
    }

    /// The provider's log lines about waiting.
    private var waitLines: [String] {
        log.text.split(separator: "\n").map(String.init).filter { $0.contains("waiting") }
    }

    private func assertNoLeak(_ error: AgentError?, file: StaticString = #filePath, line: UInt = #line) {
        guard let error else { return }
        XCTAssertFalse(error.message.contains(Self.token), "the token leaked: \(error.message)", file: file, line: line)
        XCTAssertFalse(error.message.contains(Self.bodySecret), "the body leaked: \(error.message)", file: file, line: line)
        XCTAssertFalse(error.description.contains(Self.token), file: file, line: line)
        XCTAssertFalse(error.description.contains(Self.bodySecret), file: file, line: line)
    }

    func testGoodTokenReturnsChallengeAndVariables() async throws {
        let server = try serve([Self.goodAnswer])
        let url = server.urlString + "/challenge?device=dev-7"
        let issued = try await provider(url: url).fetchChallenge()

        XCTAssertEqual(issued?.secret.value, "one-time-challenge-42")
        XCTAssertEqual(issued?.variables, ["UserPrincipalName": "alice@example.com", "DeviceID": "dev-7"])
        let request = try XCTUnwrap(server.requests.first)
        XCTAssertEqual(server.requestCount, 1)
        XCTAssertEqual(request.method, "GET")
        XCTAssertEqual(request.target, "/challenge?device=dev-7")
        // The trailing newline of the token file is not sent.
        XCTAssertEqual(request.headers["Authorization"], "Bearer \(Self.token)")
        XCTAssertEqual(request.headers["Accept"], "application/json")
    }

    func testTokenFileWhitespaceIsTrimmed() async throws {
        try "  \t\(Self.token)\r\n\n".write(toFile: tokenPath, atomically: true, encoding: .utf8)
        let server = try serve([Self.goodAnswer])
        _ = try await provider(url: server.urlString).fetchChallenge()
        XCTAssertEqual(server.requests.first?.headers["Authorization"], "Bearer \(Self.token)")
    }

    func testAnswerWithoutVariablesGivesEmptyVariables() async throws {
        let server = try serve([Self.json(#"{"challenge": "c-1"}"#)])
        let issued = try await provider(url: server.urlString).fetchChallenge()
        XCTAssertEqual(issued?.secret.value, "c-1")
        XCTAssertEqual(issued?.variables, [:])
    }

    func testRefusedTokenIsFinalAndLeaksNothing() async throws {
        for status in [401, 403] {
            let refusal = TestHTTPResponse(
                status: status, headers: ["Content-Type": "text/plain"],
                body: Array("token \(Self.token) refused; \(Self.bodySecret)".utf8))
            let server = try serve([refusal])
            let sleeper = RecordingSleeper()
            let error = await expectAgentError { try await self.provider(url: server.urlString, sleeper: sleeper).fetchChallenge() }

            XCTAssertEqual(error?.code, .challenge, "HTTP \(status)")
            XCTAssertTrue(error?.message.contains("refused") ?? false, "HTTP \(status): \(error?.message ?? "")")
            XCTAssertTrue(error?.message.contains("\(status)") ?? false, "HTTP \(status): \(error?.message ?? "")")
            assertNoLeak(error)
            XCTAssertEqual(server.requestCount, 1, "HTTP \(status) must not be retried")
            XCTAssertEqual(sleeper.sleeps, [])
            server.stop()
        }
    }

    func testTooManyRequestsHonoursRetryAfter() async throws {
        let busy = TestHTTPResponse(status: 429, headers: ["Retry-After": "7"])
        let server = try serve([busy, Self.goodAnswer])
        let sleeper = RecordingSleeper()
        let started = Date()
        let issued = try await provider(url: server.urlString, sleeper: sleeper).fetchChallenge()

        XCTAssertEqual(issued?.secret.value, "one-time-challenge-42")
        XCTAssertEqual(sleeper.sleeps, [7])
        XCTAssertEqual(server.requestCount, 2)
        XCTAssertLessThan(Date().timeIntervalSince(started), 5, "the provider must sleep through the Sleeper only")
    }

    func testUnavailableWithoutRetryAfterBacksOffBoundedly() async throws {
        let server = try serve([.status(503), Self.goodAnswer])
        let sleeper = RecordingSleeper()
        let provider = provider(url: server.urlString, sleeper: sleeper)
        let issued = try await provider.fetchChallenge()

        XCTAssertEqual(issued?.secret.value, "one-time-challenge-42")
        XCTAssertEqual(server.requestCount, 2)
        XCTAssertEqual(sleeper.sleeps.count, 1)
        let delay = try XCTUnwrap(sleeper.sleeps.first)
        XCTAssertGreaterThan(delay, 0)
        XCTAssertLessThanOrEqual(delay, provider.maxRetryAfter)
    }

    /// RFC 9110 §10.2.3: Retry-After may be an HTTP-date. Measured from the reply's
    /// own Date header, so our clock (wrong here on purpose) does not matter.
    func testRetryAfterAsHTTPDateIsMeasuredFromTheReplysDate() async throws {
        let busy = TestHTTPResponse(status: 503, headers: [
            "Date": "Sun, 06 Nov 1994 08:49:37 GMT", "Retry-After": "Sun, 06 Nov 1994 08:50:27 GMT"])
        let server = try serve([busy, Self.goodAnswer])
        let sleeper = RecordingSleeper()
        _ = try await provider(url: server.urlString, sleeper: sleeper, clock: ManualClock(Date(timeIntervalSince1970: 0)))
            .fetchChallenge()
        XCTAssertEqual(sleeper.sleeps, [50])
        XCTAssertEqual(waitLines.count, 1, log.text)
        XCTAssertTrue(waitLines.first?.contains("waiting 50 s before attempt 2 of 4 (as Retry-After asked)") ?? false, log.text)
    }

    func testRetryAfterAsHTTPDateWithoutADateHeaderIsMeasuredFromOurClock() async throws {
        let busy = TestHTTPResponse(status: 429, headers: ["Retry-After": "Sunday, 06-Nov-94 08:51:37 GMT"])
        let server = try serve([busy, Self.goodAnswer])
        let sleeper = RecordingSleeper()
        let now = ManualClock(Date(timeIntervalSince1970: 784_111_777))  // Sun, 06 Nov 1994 08:49:37 GMT
        _ = try await provider(url: server.urlString, sleeper: sleeper, clock: now).fetchChallenge()
        XCTAssertEqual(sleeper.sleeps, [120])
    }

    func testRetryAfterAsAPastHTTPDateRetriesAtOnce() async throws {
        let busy = TestHTTPResponse(status: 503, headers: ["Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"])
        let server = try serve([busy, Self.goodAnswer])
        let sleeper = RecordingSleeper()
        _ = try await provider(url: server.urlString, sleeper: sleeper).fetchChallenge()
        XCTAssertEqual(sleeper.sleeps, [0])
        XCTAssertEqual(server.requestCount, 2)
    }

    /// One log line per wait: endpoint without its query, status, seconds, attempt N of M.
    func testEachWaitIsLoggedWithTheEndpointStatusDelayAndAttempt() async throws {
        let server = try serve([TestHTTPResponse(status: 429, headers: ["Retry-After": "7"]), .status(503), Self.goodAnswer])
        let sleeper = RecordingSleeper()
        _ = try await provider(url: server.urlString + "/challenge?device=QUERY-SECRET", sleeper: sleeper).fetchChallenge()

        XCTAssertEqual(sleeper.sleeps, [7, 4])
        let lines = waitLines
        XCTAssertEqual(lines.count, 2, log.text)
        let endpoint = "the management endpoint \(server.urlString)/challenge?…"
        XCTAssertTrue(lines[0].contains("\(endpoint) answered HTTP 429; waiting 7 s before attempt 2 of 4 (as Retry-After asked)"), lines[0])
        XCTAssertTrue(lines[1].contains("\(endpoint) answered HTTP 503; waiting 4 s before attempt 3 of 4 (no usable Retry-After, backing off)"), lines[1])
        XCTAssertFalse(log.text.contains("QUERY-SECRET"), log.text)
        XCTAssertFalse(log.text.contains(Self.token), log.text)
    }

    func testAHugeRetryAfterIsClampedAndTheLogSaysSo() async throws {
        let server = try serve([TestHTTPResponse(status: 429, headers: ["Retry-After": "99999999"]), Self.goodAnswer])
        let sleeper = RecordingSleeper()
        let provider = provider(url: server.urlString, sleeper: sleeper)
        _ = try await provider.fetchChallenge()
        XCTAssertEqual(sleeper.sleeps, [300])
        XCTAssertEqual(provider.maxRetryAfter, 300)
        XCTAssertEqual(waitLines.count, 1, log.text)
        XCTAssertTrue(waitLines.first?.contains("waiting 300 s before attempt 2 of 4 (Retry-After asked for 99999999 s, clamped)") ?? false, log.text)
    }

    /// Clamped waits of 300 s would add up to 15 minutes over four attempts; the total stays within 600 s.
    func testTotalWaitingIsBoundedAndTheErrorSaysSo() async throws {
        let server = try serve([TestHTTPResponse(status: 429, headers: ["Retry-After": "99999999"], body: Array(Self.bodySecret.utf8))])
        let sleeper = RecordingSleeper()
        let provider = provider(url: server.urlString, sleeper: sleeper)
        XCTAssertEqual(provider.maxTotalWait, 600)
        let error = await expectAgentError { try await provider.fetchChallenge() }

        XCTAssertEqual(sleeper.sleeps, [300, 300])
        XCTAssertLessThanOrEqual(sleeper.sleeps.reduce(0, +), provider.maxTotalWait)
        XCTAssertEqual(server.requestCount, 3)
        XCTAssertEqual(waitLines.count, 2, log.text)
        XCTAssertEqual(error?.code, .challenge)
        let message = error?.message ?? ""
        XCTAssertTrue(message.contains("HTTP 429"), message)
        XCTAssertTrue(message.contains("600 s of waiting") || message.contains("600 s bound"), message)
        XCTAssertTrue(message.contains("the next run tries again"), message)
        assertNoLeak(error)
    }

    func testLongBackoffsAreBoundedInTotalToo() async throws {
        // Without Retry-After the backoff is 2, 4, 8 s; a smaller bound cuts the third wait.
        let server = try serve([.status(503)])
        let sleeper = RecordingSleeper()
        var provider = provider(url: server.urlString, sleeper: sleeper)
        provider.maxTotalWait = 10
        let error = await expectAgentError { try await provider.fetchChallenge() }
        XCTAssertEqual(sleeper.sleeps, [2, 4])
        XCTAssertTrue(error?.message.contains("10 s bound on waiting") ?? false, error?.message ?? "")
    }

    func testRetryAfterAboveTheClampIsClamped() async throws {
        let busy = TestHTTPResponse(status: 429, headers: ["Retry-After": "86400"])
        let server = try serve([busy, Self.goodAnswer])
        let sleeper = RecordingSleeper()
        let provider = provider(url: server.urlString, sleeper: sleeper)
        _ = try await provider.fetchChallenge()
        XCTAssertEqual(sleeper.sleeps, [provider.maxRetryAfter])
        XCTAssertLessThan(provider.maxRetryAfter, 86400)
    }

    func testTooManyRequestsForeverGivesUpAfterBoundedAttempts() async throws {
        let busy = TestHTTPResponse(status: 429, headers: ["Retry-After": "1"], body: Array(Self.bodySecret.utf8))
        let server = try serve([busy])
        let sleeper = RecordingSleeper()
        let provider = provider(url: server.urlString, sleeper: sleeper)
        let error = await expectAgentError { try await provider.fetchChallenge() }

        XCTAssertEqual(error?.code, .challenge)
        XCTAssertTrue(error?.message.contains("429") ?? false, error?.message ?? "")
        XCTAssertTrue(error?.message.contains(server.urlString) ?? false, error?.message ?? "")
        assertNoLeak(error)
        XCTAssertEqual(server.requestCount, provider.maxAttempts)
        XCTAssertEqual(sleeper.sleeps.count, provider.maxAttempts - 1)
    }

    func testUnavailableForeverGivesUpAfterBoundedAttempts() async throws {
        let server = try serve([.status(503)])
        let sleeper = RecordingSleeper()
        let provider = provider(url: server.urlString, sleeper: sleeper)
        let error = await expectAgentError { try await provider.fetchChallenge() }

        XCTAssertEqual(error?.code, .challenge)
        XCTAssertTrue(error?.message.contains("503") ?? false, error?.message ?? "")
        XCTAssertEqual(server.requestCount, provider.maxAttempts)
        XCTAssertEqual(sleeper.sleeps.count, provider.maxAttempts - 1)
        XCTAssertTrue(sleeper.sleeps.allSatisfy { $0 > 0 && $0 <= provider.maxRetryAfter }, "\(sleeper.sleeps)")
    }

    func testOtherStatusIsAnErrorWithoutTheBody() async throws {
        let failure = TestHTTPResponse(status: 500, headers: ["Content-Type": "text/plain"], body: Array(Self.bodySecret.utf8))
        let server = try serve([failure])
        let error = await expectAgentError { try await self.provider(url: server.urlString).fetchChallenge() }
        XCTAssertEqual(error?.code, .challenge)
        XCTAssertTrue(error?.message.contains("500") ?? false, error?.message ?? "")
        assertNoLeak(error)
    }

    func testSlowAnswerTimesOutInsteadOfHanging() async throws {
        let server = try serve([Self.goodAnswer.delayed(by: 30)])
        let started = Date()
        let error = await expectAgentError {
            try await self.provider(url: server.urlString, totalTimeout: 1).fetchChallenge()
        }
        let elapsed = Date().timeIntervalSince(started)

        XCTAssertEqual(error?.code, .challenge)
        XCTAssertTrue(error?.message.contains(server.urlString) ?? false, error?.message ?? "")
        XCTAssertGreaterThanOrEqual(elapsed, 0.8)
        XCTAssertLessThan(elapsed, 5, "a 1 s timeout took \(elapsed) s")
    }

    func testHangingServerTimesOut() async throws {
        let server = try serve([.hang])
        let started = Date()
        let error = await expectAgentError {
            try await self.provider(url: server.urlString, totalTimeout: 1).fetchChallenge()
        }
        XCTAssertEqual(error?.code, .challenge)
        XCTAssertLessThan(Date().timeIntervalSince(started), 5)
    }

    func testMalformedAnswersAreClearErrorsThatDoNotEchoTheBody() async throws {
        let bodies = [
            "<html>\(Self.bodySecret)</html>",                                 // not JSON
            #"{"challenge": "\#(Self.bodySecret)""#,                           // truncated JSON
            #"{"token": "\#(Self.bodySecret)", "expires_in": 600}"#,           // no "challenge"
            #"{"challenge": 42, "note": "\#(Self.bodySecret)"}"#,              // wrong type
            #"{"challenge": "", "note": "\#(Self.bodySecret)"}"#,              // empty challenge
            #"{"challenge": "x", "variables": {"n": 5}, "note": "\#(Self.bodySecret)"}"#,  // non-string variable
            "",                                                                // empty body
        ]
        for body in bodies {
            let server = try serve([Self.json(body)])
            let error = await expectAgentError { try await self.provider(url: server.urlString).fetchChallenge() }
            XCTAssertEqual(error?.code, .challenge, body)
            XCTAssertTrue(error?.message.contains(server.urlString) ?? false, "\(body): \(error?.message ?? "")")
            assertNoLeak(error)
            server.stop()
        }
    }

    func testEmptyChallengeIsNamedAsSuch() async throws {
        let server = try serve([Self.json(#"{"challenge": ""}"#)])
        let error = await expectAgentError { try await self.provider(url: server.urlString).fetchChallenge() }
        XCTAssertTrue(error?.message.contains("empty challenge") ?? false, error?.message ?? "")
    }

    func testUnreachableEndpointNamesTheURL() async throws {
        // A bound socket that never listens: connecting is refused, and no
        // other test can take the port meanwhile.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        XCTAssertTrue(bound)
        let url = "http://127.0.0.1:\(UInt16(bigEndian: address.sin_port))/challenge"

        let started = Date()
        let error = await expectAgentError { try await self.provider(url: url).fetchChallenge() }
        XCTAssertEqual(error?.code, .challenge)
        XCTAssertTrue(error?.message.contains(url) ?? false, error?.message ?? "")
        assertNoLeak(error)
        XCTAssertLessThan(Date().timeIntervalSince(started), 5)
    }

    func testMissingTokenFileNamesTheFileAndSendsNothing() async throws {
        let server = try serve([Self.goodAnswer])
        let missing = workspace.appending("no-such-token")
        let error = await expectAgentError {
            try await self.provider(url: server.urlString, tokenFile: missing).fetchChallenge()
        }
        XCTAssertEqual(error?.code, .challenge)
        XCTAssertTrue(error?.message.contains(missing) ?? false, error?.message ?? "")
        XCTAssertEqual(server.requestCount, 0)
    }

    /// Proven before the fix: a second line in token_file arrived at the server as a header of its own.
    func testATokenWithALineBreakIsRefusedAndNothingIsSent() async throws {
        let server = try serve([Self.goodAnswer])
        try "\(Self.token)\nX-Injected: yes\n".write(toFile: tokenPath, atomically: true, encoding: .utf8)
        let error = await expectAgentError { try await self.provider(url: server.urlString).fetchChallenge() }

        XCTAssertEqual(error?.code, .challenge)
        let message = error?.message ?? ""
        XCTAssertTrue(message.contains("token_file \(tokenPath)"), message)
        XCTAssertTrue(message.contains("control character (U+000A)"), message)
        XCTAssertFalse(message.contains("X-Injected"), message)
        assertNoLeak(error)
        XCTAssertEqual(server.requestCount, 0)
        XCTAssertEqual(server.connectionCount, 0)
    }

    func testEveryControlCharacterInsideATokenIsRefused() async throws {
        let server = try serve([Self.goodAnswer])
        for control in ["\r", "\t", "\u{00}", "\u{1B}", "\u{7F}", "\u{85}", "\u{9F}"] {
            try "\(Self.token)\(control)rest".write(toFile: tokenPath, atomically: true, encoding: .utf8)
            let error = await expectAgentError { try await self.provider(url: server.urlString).fetchChallenge() }
            let code = SecretText.codePoint(control.unicodeScalars.first!)
            XCTAssertTrue(error?.message.contains("control character (\(code))") ?? false, "\(code): \(error?.message ?? "")")
            assertNoLeak(error)
        }
        XCTAssertEqual(server.requestCount, 0)
    }

    func testAnOversizeTokenFileIsRefusedAndNothingIsSent() async throws {
        let server = try serve([Self.goodAnswer])
        try String(repeating: "T", count: SecretText.maximumBytes + 1).write(toFile: tokenPath, atomically: true, encoding: .utf8)
        let error = await expectAgentError { try await self.provider(url: server.urlString).fetchChallenge() }
        let message = error?.message ?? ""
        XCTAssertEqual(error?.code, .challenge)
        XCTAssertTrue(message.contains("token_file \(tokenPath) is 65537 bytes"), message)
        XCTAssertTrue(message.contains("at most 65536 bytes"), message)
        XCTAssertFalse(message.contains("TTTT"), message)
        XCTAssertEqual(server.requestCount, 0)
    }

    func testAChallengeWithAControlCharacterFromTheEndpointIsRefused() async throws {
        for escaped in ["\\n", "\\r", "\\t", "\\u0007", "\\u007f", "\\u0085"] {
            let server = try serve([Self.json(#"{"challenge": "\#(Self.bodySecret)\#(escaped)X-Injected: yes"}"#)])
            let error = await expectAgentError { try await self.provider(url: server.urlString + "/c?q=1").fetchChallenge() }
            let message = error?.message ?? ""
            XCTAssertEqual(error?.code, .challenge, escaped)
            XCTAssertTrue(message.contains("the management endpoint \(server.urlString)/c?…: the challenge contains a control character"), message)
            XCTAssertFalse(message.contains("X-Injected"), message)
            assertNoLeak(error)
            server.stop()
        }
    }

    func testEmptyTokenFileNamesTheFileAndSendsNothing() async throws {
        let server = try serve([Self.goodAnswer])
        try " \n\n".write(toFile: tokenPath, atomically: true, encoding: .utf8)
        let error = await expectAgentError { try await self.provider(url: server.urlString).fetchChallenge() }
        XCTAssertEqual(error?.code, .challenge)
        XCTAssertTrue(error?.message.contains(tokenPath) ?? false, error?.message ?? "")
        XCTAssertTrue(error?.message.contains("empty") ?? false, error?.message ?? "")
        XCTAssertEqual(server.requestCount, 0)
    }
}

// MARK: - File provider

final class FileChallengeProviderTests: XCTestCase {
    private var workspace: TemporaryDirectory!

    override func setUpWithError() throws { workspace = try TemporaryDirectory(prefix: "challenge-file") }
    override func tearDown() { workspace?.remove() }

    func testTrimsWhitespaceAndNewline() async throws {
        let path = workspace.appending("challenge")
        try "  static-challenge-9 \n\n".write(toFile: path, atomically: true, encoding: .utf8)
        let issued = try await FileChallengeProvider(path: path).fetchChallenge()
        XCTAssertEqual(issued?.secret.value, "static-challenge-9")
        XCTAssertEqual(issued?.variables, [:])
    }

    func testEmptyFileIsAnError() async throws {
        let path = workspace.appending("challenge")
        try " \n".write(toFile: path, atomically: true, encoding: .utf8)
        let error = await expectAgentError { try await FileChallengeProvider(path: path).fetchChallenge() }
        XCTAssertEqual(error?.code, .challenge)
        XCTAssertTrue(error?.message.contains(path) ?? false, error?.message ?? "")
        XCTAssertTrue(error?.message.contains("empty") ?? false, error?.message ?? "")
    }

    func testAChallengeFileAtTheLimitIsRead() async throws {
        let path = workspace.appending("challenge")
        try (String(repeating: "c", count: SecretText.maximumBytes - 1) + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        let issued = try await FileChallengeProvider(path: path).fetchChallenge()
        XCTAssertEqual(issued?.secret.value.count, SecretText.maximumBytes - 1)
    }

    func testAnOversizeChallengeFileIsRefused() async throws {
        let path = workspace.appending("challenge")
        try String(repeating: "c", count: SecretText.maximumBytes + 1).write(toFile: path, atomically: true, encoding: .utf8)
        let error = await expectAgentError { try await FileChallengeProvider(path: path).fetchChallenge() }
        XCTAssertEqual(error?.code, .challenge)
        XCTAssertTrue(error?.message.contains("the challenge file \(path) is 65537 bytes") ?? false, error?.message ?? "")
        XCTAssertTrue(error?.message.contains("at most 65536 bytes") ?? false, error?.message ?? "")
    }

    func testAnEndlessChallengeFileIsRefused() async throws {
        let error = await expectAgentError { try await FileChallengeProvider(path: "/dev/zero").fetchChallenge() }
        XCTAssertTrue(error?.message.contains("/dev/zero is larger than the limit") ?? false, error?.message ?? "")
    }

    func testAChallengeWithAControlCharacterInsideIsRefusedWithoutEchoingIt() async throws {
        let path = workspace.appending("challenge")
        for control in ["\n", "\r", "\t", "\u{0B}", "\u{1B}", "\u{7F}", "\u{85}"] {
            try "FILE-SECRET-77\(control)more\n".write(toFile: path, atomically: true, encoding: .utf8)
            let error = await expectAgentError { try await FileChallengeProvider(path: path).fetchChallenge() }
            let message = error?.message ?? ""
            XCTAssertEqual(error?.code, .challenge)
            XCTAssertTrue(message.contains("the challenge file \(path): the challenge contains a control character"), message)
            XCTAssertFalse(message.contains("FILE-SECRET-77"), message)
            XCTAssertFalse(message.contains("more"), message)
        }
    }

    func testMissingFileNamesThePath() async throws {
        let path = workspace.appending("absent/challenge")
        let error = await expectAgentError { try await FileChallengeProvider(path: path).fetchChallenge() }
        XCTAssertEqual(error?.code, .challenge)
        XCTAssertTrue(error?.message.contains(path) ?? false, error?.message ?? "")
    }
}

// MARK: - Command provider

final class CommandChallengeProviderTests: XCTestCase {
    private static let stdoutSecret = "STDOUT-SECRET-a71c"
    private var workspace: TemporaryDirectory!

    override func setUpWithError() throws { workspace = try TemporaryDirectory(prefix: "challenge-command") }
    override func tearDown() { workspace?.remove() }

    func testFirstLineOfStdoutIsTheChallenge() async throws {
        let script = try writeScript("printf ' cmd-challenge-123 \\nsecond line\\n'", named: "ok.sh", in: workspace)
        let issued = try await CommandChallengeProvider(argv: [script]).fetchChallenge()
        XCTAssertEqual(issued?.secret.value, "cmd-challenge-123")
        XCTAssertEqual(issued?.variables, [:])
    }

    func testArgumentsAreForwarded() async throws {
        let script = try writeScript(#"echo "for-$1-$2""#, named: "args.sh", in: workspace)
        let issued = try await CommandChallengeProvider(argv: [script, "device", "7"]).fetchChallenge()
        XCTAssertEqual(issued?.secret.value, "for-device-7")
    }

    func testNonZeroExitReportsStatusButNotStdout() async throws {
        let script = try writeScript("echo \(Self.stdoutSecret)\nexit 3", named: "fail.sh", in: workspace)
        let error = await expectAgentError { try await CommandChallengeProvider(argv: [script]).fetchChallenge() }
        XCTAssertEqual(error?.code, .challenge)
        XCTAssertTrue(error?.message.contains("status 3") ?? false, error?.message ?? "")
        XCTAssertTrue(error?.message.contains(script) ?? false, error?.message ?? "")
        XCTAssertFalse(error?.message.contains(Self.stdoutSecret) ?? true, error?.message ?? "")
    }

    func testAFirstLineWithAControlCharacterIsRefusedWithoutEchoingIt() async throws {
        for control in ["\\r", "\\t", "\\033", "\\177"] {
            let script = try writeScript("printf '\(Self.stdoutSecret)\(control)tail\\n'", named: "ctl.sh", in: workspace)
            let error = await expectAgentError { try await CommandChallengeProvider(argv: [script]).fetchChallenge() }
            let message = error?.message ?? ""
            XCTAssertEqual(error?.code, .challenge, control)
            XCTAssertTrue(message.contains("the challenge command \(script): the challenge contains a control character"), message)
            XCTAssertFalse(message.contains(Self.stdoutSecret), message)
        }
    }

    func testAFirstLineAsLongAsTheOutputLimitIsRefused() async throws {
        let script = try writeScript("head -c 70000 /dev/zero | tr '\\0' 'x'", named: "long.sh", in: workspace)
        let error = await expectAgentError { try await CommandChallengeProvider(argv: [script]).fetchChallenge() }
        XCTAssertEqual(error?.code, .challenge)
        XCTAssertTrue(error?.message.contains("printed a first line of 65536 bytes or more") ?? false, error?.message ?? "")
    }

    func testCommandPrintingNothingIsAnError() async throws {
        let script = try writeScript("exit 0", named: "silent.sh", in: workspace)
        let error = await expectAgentError { try await CommandChallengeProvider(argv: [script]).fetchChallenge() }
        XCTAssertEqual(error?.code, .challenge)
        XCTAssertTrue(error?.message.contains("printed nothing") ?? false, error?.message ?? "")
    }

    func testMissingExecutableIsAnError() async throws {
        let path = workspace.appending("not-there")
        let error = await expectAgentError { try await CommandChallengeProvider(argv: [path]).fetchChallenge() }
        XCTAssertEqual(error?.code, .challenge)
        XCTAssertTrue(error?.message.contains(path) ?? false, error?.message ?? "")
    }

    func testEmptyArgvIsAConfigError() async throws {
        let error = await expectAgentError { try await CommandChallengeProvider(argv: []).fetchChallenge() }
        XCTAssertEqual(error?.code, .config)
    }

    /// The command itself sleeps (exec): it must be stopped at the timeout,
    /// not waited for.
    func testCommandSleepingPastTheTimeoutIsStopped() async throws {
        let pidFile = workspace.appending("pid")
        let script = try writeScript("echo $$ > '\(pidFile)'\nexec sleep 6", named: "slow.sh", in: workspace)
        let started = Date()
        let error = await expectAgentError {
            try await CommandChallengeProvider(argv: [script], timeout: 1).fetchChallenge()
        }
        let elapsed = Date().timeIntervalSince(started)

        XCTAssertEqual(error?.code, .challenge)
        XCTAssertTrue(error?.message.contains("did not finish within 1 s") ?? false, error?.message ?? "")
        XCTAssertLessThan(elapsed, 3.5, "a 1 s timeout took \(elapsed) s")
        let pid = try XCTUnwrap(ScriptProcessProbe.readPid(pidFile))
        defer { kill(pid, SIGKILL) }
        XCTAssertTrue(ScriptProcessProbe.hasExited(pid, within: 3), "the challenge command \(pid) still runs")
    }

    /// A shell script whose child holds stdout open: the provider must still
    /// return at the timeout instead of waiting for end-of-file.
    func testScriptWithSleepingChildReturnsAtTheTimeout() async throws {
        let script = try writeScript("sleep 6\necho late-challenge", named: "slow-child.sh", in: workspace)
        let started = Date()
        let error = await expectAgentError {
            try await CommandChallengeProvider(argv: [script], timeout: 1).fetchChallenge()
        }
        let elapsed = Date().timeIntervalSince(started)
        XCTAssertEqual(error?.code, .challenge)
        XCTAssertLessThan(elapsed, 3.5, "a 1 s timeout took \(elapsed) s")
    }

    /// The command has exited but a child it left behind still holds stdout open: its
    /// exit ends the read; nothing waits for end-of-file.
    func testACommandThatExitsWhileItsChildHoldsStdoutReturnsAtOnce() async throws {
        let pidFile = workspace.appending("child")
        let script = try writeScript("echo early-challenge\nsleep 30 &\necho $! > '\(pidFile)'", named: "leaves-child.sh", in: workspace)
        let started = ContinuousClock.now
        let issued = try await CommandChallengeProvider(argv: [script], timeout: 20).fetchChallenge()
        let elapsed = ContinuousClock.now - started
        if let child = ScriptProcessProbe.readPid(pidFile) { kill(child, SIGKILL) }

        XCTAssertEqual(issued?.secret.value, "early-challenge")
        XCTAssertLessThan(elapsed, .seconds(2), "waited \(elapsed) for a pipe the command's child held open")
    }

    /// Output beyond the 64 KiB kept is read and dropped: the command never blocks on a
    /// full pipe, and its first line still counts.
    func testOutputBeyondTheLimitIsDrainedAndTheFirstLineKept() async throws {
        let script = try writeScript("echo first-line-challenge\nhead -c 1000000 /dev/zero", named: "verbose.sh", in: workspace)
        let issued = try await CommandChallengeProvider(argv: [script], timeout: 10).fetchChallenge()
        XCTAssertEqual(issued?.secret.value, "first-line-challenge")
    }

    /// Shutdown is not a broken command: the caller gets CancellationError, and the
    /// command is stopped.
    func testCancellingTheFetchStopsTheCommandAndThrowsCancellationError() async throws {
        let pidFile = workspace.appending("pid")
        let script = try writeScript("echo $$ > '\(pidFile)'\nexec sleep 30", named: "slow.sh", in: workspace)
        let fetch = Task { try await CommandChallengeProvider(argv: [script]).fetchChallenge() }
        let pid = try XCTUnwrap(ScriptProcessProbe.readPid(pidFile), "the command never started")
        defer { kill(pid, SIGKILL) }
        let cancelled = ContinuousClock.now
        fetch.cancel()
        let result = await fetch.result
        let elapsed = ContinuousClock.now - cancelled

        XCTAssertThrowsError(try result.get()) { error in
            XCTAssertTrue(error is CancellationError, "expected CancellationError, got \(type(of: error)): \(error)")
        }
        XCTAssertLessThan(elapsed, .seconds(1), "the cancelled fetch took \(elapsed)")
        XCTAssertTrue(ScriptProcessProbe.hasExited(pid, within: 1), "the command \(pid) outlived the cancellation")
    }
}

// MARK: - Secret

final class SecretTests: XCTestCase {
    private let raw = "s3cr3t-challenge-value"

    private func assertHidden(_ text: String, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertFalse(text.contains(raw), "\(what) revealed the secret: \(text)", file: file, line: line)
    }

    func testDescriptionsNeverRevealTheValue() {
        let secret = Secret(raw)
        XCTAssertEqual(secret.value, raw)
        assertHidden("\(secret)", "interpolation")
        assertHidden("token=\(secret) in \([secret]) and \(["k": secret])", "interpolation of collections")
        assertHidden(String(describing: secret), "String(describing:)")
        assertHidden(String(reflecting: secret), "String(reflecting:)")
        assertHidden(secret.debugDescription, "debugDescription")
        assertHidden(String(describing: Optional(secret)), "Optional")
        assertHidden("\(IssuedChallenge(secret: secret, variables: ["UPN": "a@b"]))", "IssuedChallenge interpolation")
    }

    func testDumpNeverRevealsTheValue() {
        var dumped = ""
        dump(Secret(raw), to: &dumped)
        assertHidden(dumped, "dump")

        var nested = ""
        dump(IssuedChallenge(secret: Secret(raw), variables: [:]), to: &nested)
        assertHidden(nested, "dump of IssuedChallenge")
    }

    func testMirrorDoesNotExposeTheValue() {
        let children = Mirror(reflecting: Secret(raw)).children.map { String(describing: $0.value) }
        XCTAssertFalse(children.contains { $0.contains(raw) }, "Mirror children: \(children)")
    }
}
