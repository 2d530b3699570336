import Foundation
import Logging
import SCEPClient

/// Fetches a one-time challenge from the management endpoint: `GET url`, authenticated
/// as `auth` says (`Authorization: Bearer <token_file>`, or HTTP Basic / NTLM with
/// `username` and `password_file`, done by the transport), answered as `format` says:
/// our JSON `{"challenge": "...", "expires_in": 600, "variables": {...}}`, a bare line,
/// or an NDES `mscep_admin` page (also what Okta's generic dynamic challenge URL serves).
///
/// 401/403 are final (the credentials were refused); 429/503 are retried after
/// Retry-After, each wait clamped and logged, the total bounded; the token, password and
/// challenge never appear in errors or logs, and all pass `SecretText`.
struct EndpointChallengeProvider: ChallengeProvider {
    let url: String
    let auth: EndpointAuth
    let format: ChallengeFormat
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

    init(url: String, auth: EndpointAuth, format: ChallengeFormat = .json, transport: any HTTPTransport,
         sleeper: any Sleeper, logger: Logger, clock: any AgentClock = SystemClock()) {
        self.url = url
        self.auth = auth
        self.format = format
        self.transport = transport
        self.sleeper = sleeper
        self.logger = logger
        self.clock = clock
    }

    /// Our JSON contract with an optional bearer token (the endpoint source before `auth` and `format`).
    init(url: String, tokenFile: String?, transport: any HTTPTransport, sleeper: any Sleeper, logger: Logger,
         clock: any AgentClock = SystemClock()) {
        self.init(url: url, auth: tokenFile.map { .bearer(tokenFile: $0) } ?? .noCredentials, transport: transport,
                  sleeper: sleeper, logger: logger, clock: clock)
    }

    /// The URL for messages: without its query, which might carry a credential.
    private var displayURL: String { CurlTransport.redacted(url) }

    func fetchChallenge() async throws -> IssuedChallenge? {
        // The configuration allows plain http only to loopback; checked again here, before a
        // secret is read, because a token or a Basic password on the wire is readable by anyone.
        if let scheme = auth.httpSchemeName, let parsed = URL(string: url), parsed.scheme?.lowercased() != "https",
           !ConfigURL.isLoopback(parsed) {
            throw AgentError(.config, "refusing to send \(scheme) credentials to \(displayURL) without TLS: plain http is allowed "
                             + "only to 127.0.0.1, ::1 or localhost; use an https:// URL")
        }
        var request = HTTPRequest(method: .get, url: url, headers: ["Accept": format.acceptedMediaTypes])
        switch auth {
        case .noCredentials:
            break
        case .bearer(let tokenFile):
            request.headers["Authorization"] = "Bearer " + (try SecretText.read(.tokenFile(path: tokenFile), path: tokenFile)).value
        case .basic(let username, let passwordFile), .ntlm(let username, let passwordFile):
            let password = try SecretText.read(.passwordFile(path: passwordFile), path: passwordFile)
            request.credentials = HTTPCredentials(scheme: auth.transportScheme ?? .basic, username: username, password: password.value)
        }
        var attempt = 1
        var waited: Double = 0
        while true {
            let response: HTTPResponse
            do {
                response = try await transport.perform(request)
            } catch let error as SCEPError {
                throw AgentError(.challenge, "the management endpoint \(displayURL) cannot be reached: \(error.message)")
            }
            switch response.status {
            case 200:
                return try decode(response)
            case 401, 403:
                throw AgentError(.challenge, refusal(response))
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
                throw AgentError(.challenge, "the management endpoint \(displayURL) answered \(response.statusText)")
            }
        }
    }

    private func decode(_ response: HTTPResponse) throws -> IssuedChallenge {
        switch format {
        case .json:
            return try EndpointAnswer.decode(response.body, url: displayURL)
        case .text:
            return try ChallengePage.text(response.body, contentType: response.contentType, url: displayURL)
        case .ndesAdmin:
            return try ChallengePage.ndesAdmin(response.body, contentType: response.contentType, url: displayURL, username: auth.username)
        }
    }

    /// What a 401/403 means for the credentials we sent, and which file to check. Names the
    /// scheme the endpoint asked for (WWW-Authenticate) when it is not ours; never its data.
    private func refusal(_ response: HTTPResponse) -> String {
        let status = response.statusText
        let offered = response.headers["www-authenticate"]
            .flatMap { $0.split(separator: " ").first }
            .map { String($0).trimmingCharacters(in: CharacterSet(charactersIn: ",")) }
        let hint: String
        if let offered, !offered.isEmpty, offered.lowercased() != auth.httpSchemeName?.lowercased() {
            let suggestion = ["basic": " (auth = \"basic\")", "ntlm": " (auth = \"ntlm\")", "bearer": " (auth = \"bearer\")"][offered.lowercased()] ?? ""
            hint = "; it asks for \(ServerText.excerpt(offered, limit: 20)) authentication\(suggestion)"
        } else {
            hint = ""
        }
        switch auth {
        case .noCredentials:
            return "the management endpoint \(displayURL) requires authentication (\(status))\(hint); configure auth with token_file, or username and password_file"
        case .bearer(let tokenFile):
            return "the management endpoint \(displayURL) refused our token (\(status))\(hint); check token_file \(tokenFile) — the device may need a new token"
        case .basic(let username, let passwordFile), .ntlm(let username, let passwordFile):
            return "the management endpoint \(displayURL) refused the \(auth.httpSchemeName ?? "") credentials of \(username) (\(status))\(hint); "
                + "check username and password_file \(passwordFile) — the password may have been reset"
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

extension ChallengeFormat {
    /// The Accept header for what this format reads.
    var acceptedMediaTypes: String {
        switch self {
        case .json: return "application/json"
        case .text: return "text/plain, */*;q=0.5"
        case .ndesAdmin: return "text/html, */*;q=0.5"
        }
    }
}

extension EndpointAuth {
    /// The scheme the transport performs; nil when the agent builds the header (bearer) or sends none.
    var transportScheme: HTTPCredentials.Scheme? {
        switch self {
        case .basic: return .basic
        case .ntlm: return .ntlm
        case .bearer, .noCredentials: return nil
        }
    }

    /// As in WWW-Authenticate: "Bearer", "Basic", "NTLM".
    var httpSchemeName: String? {
        switch self {
        case .noCredentials: return nil
        case .bearer: return "Bearer"
        case .basic: return "Basic"
        case .ntlm: return "NTLM"
        }
    }

    var username: String? {
        switch self {
        case .basic(let username, _), .ntlm(let username, _): return username
        case .bearer, .noCredentials: return nil
        }
    }
}
