import Foundation
import Logging
import SCEPClient

/// Fetches a one-time challenge from the management endpoint:
/// `GET url` with `Authorization: Bearer <token from token_file>`, answered by
/// `{"challenge": "...", "expires_in": 600, "variables": {...}}`.
///
/// 401/403 are final (the token was refused); 429/503 are retried after
/// Retry-After, each wait clamped and logged, the total bounded; the token and
/// challenge never appear in errors or logs, and both pass `SecretText`.
struct EndpointChallengeProvider: ChallengeProvider {
    let url: String
    let tokenFile: String?
    let transport: any HTTPTransport
    let sleeper: any Sleeper
    /// Each wait for a busy endpoint is logged here: a run that seems stuck says why.
    let logger: Logger
    /// Measures Retry-After dates when the reply has no Date header.
    var clock: any AgentClock = SystemClock()
    var maxAttempts = 4
    /// Retry-After values above this are clamped: a daemon retries later anyway.
    var maxRetryAfter: Double = 300
    /// All waits of one fetch together stay within this: a run (and the profile
    /// lock it holds) must not be stuck behind a busy endpoint for long.
    var maxTotalWait: Double = 600

    /// The URL for messages: without its query, which might carry a credential.
    private var displayURL: String { CurlTransport.redacted(url) }

    func fetchChallenge() async throws -> IssuedChallenge? {
        var headers = ["Accept": "application/json"]
        if let tokenFile {
            headers["Authorization"] = "Bearer " + (try SecretText.read(.tokenFile(path: tokenFile), path: tokenFile)).value
        }
        var attempt = 1
        var waited: Double = 0
        while true {
            let response: HTTPResponse
            do {
                response = try await transport.perform(HTTPRequest(method: .get, url: url, headers: headers))
            } catch let error as SCEPError {
                throw AgentError(.challenge, "the management endpoint \(displayURL) cannot be reached: \(error.message)")
            }
            switch response.status {
            case 200:
                return try EndpointAnswer.decode(response.body, url: displayURL)
            case 401, 403:
                throw AgentError(.challenge, "the management endpoint \(displayURL) refused our token (HTTP \(response.status)); check token_file \(tokenFile ?? "(none)") — the device may need a new token")
            case 429 where attempt < maxAttempts, 503 where attempt < maxAttempts:
                let wait = plannedWait(after: response, attempt: attempt)
                guard waited + wait.seconds <= maxTotalWait else {
                    throw AgentError(.challenge, "the management endpoint \(displayURL) is still busy (HTTP \(response.status)) after \(attempt) attempt(s) and \(Self.seconds(waited)) of waiting; "
                                     + "waiting \(Self.seconds(wait.seconds)) more would pass the \(Self.seconds(maxTotalWait)) bound on waiting, so the next run tries again")
                }
                attempt += 1
                logger.warning("\(wait.logLine(endpoint: displayURL, status: response.status, nextAttempt: attempt, of: maxAttempts))")
                waited += wait.seconds
                try await sleeper.sleep(seconds: wait.seconds)
            case 429, 503:
                throw AgentError(.challenge, "the management endpoint \(displayURL) is still busy (HTTP \(response.status)) after \(maxAttempts) attempts; the next run tries again")
            default:
                throw AgentError(.challenge, "the management endpoint \(displayURL) answered HTTP \(response.status)")
            }
        }
    }

    /// One wait before trying a busy endpoint again.
    struct Wait: Equatable {
        var seconds: Double
        /// What Retry-After asked for; nil when it was absent or not understood.
        var requested: Double?

        var wasClamped: Bool { requested.map { $0 > seconds } ?? false }

        /// "the management endpoint URL answered HTTP 429; waiting 300 s before attempt 2 of 4 (Retry-After asked for 99999999 s, clamped)".
        func logLine(endpoint: String, status: Int, nextAttempt: Int, of maxAttempts: Int) -> String {
            let why: String
            switch requested {
            case nil: why = "no usable Retry-After, backing off"
            case let asked? where wasClamped: why = "Retry-After asked for \(EndpointChallengeProvider.seconds(asked)), clamped"
            case _?: why = "as Retry-After asked"
            }
            return "the management endpoint \(endpoint) answered HTTP \(status); waiting \(EndpointChallengeProvider.seconds(seconds)) before attempt \(nextAttempt) of \(maxAttempts) (\(why))"
        }
    }

    /// Retry-After when the server sent one we understand (dates measured from the
    /// reply's own Date header when present), else exponential backoff; clamped either way.
    func plannedWait(after response: HTTPResponse, attempt: Int) -> Wait {
        let serverNow = response.headers["date"].flatMap { HTTPDate.parse($0, now: clock.now()) }
        let requested = RetryAfter.delay(response.headers["retry-after"], now: serverNow ?? clock.now())
        let seconds = min(maxRetryAfter, requested ?? Double(1 << attempt))
        return Wait(seconds: seconds, requested: requested)
    }

    /// "7 s", "2.5 s": no fraction for whole seconds, no exponent for huge ones.
    static func seconds(_ value: Double) -> String {
        if value.rounded() == value, value < 1e15 { return "\(Int(value)) s" }
        return value < 1e15 ? String(format: "%.1f s", value) : "more than 10^15 s"
    }
}
