import Foundation
import SCEPClient

/// Fetches a one-time challenge from the management endpoint:
/// `GET url` with `Authorization: Bearer <token from token_file>`, answered by
/// `{"challenge": "...", "expires_in": 600, "variables": {...}}`.
///
/// 401/403 are final (the token was refused); 429/503 are retried after
/// Retry-After (bounded); the token and challenge never appear in errors, and
/// both pass `SecretText`.
struct EndpointChallengeProvider: ChallengeProvider {
    let url: String
    let tokenFile: String?
    let transport: any HTTPTransport
    let sleeper: any Sleeper
    var maxAttempts = 4
    /// Retry-After values above this are clamped: a daemon retries later anyway.
    var maxRetryAfter: Double = 300

    /// The URL for messages: without its query, which might carry a credential.
    private var displayURL: String { CurlTransport.redacted(url) }

    func fetchChallenge() async throws -> IssuedChallenge? {
        var headers = ["Accept": "application/json"]
        if let tokenFile {
            headers["Authorization"] = "Bearer " + (try SecretText.read(.tokenFile(path: tokenFile), path: tokenFile)).value
        }
        var attempt = 1
        while true {
            let response: HTTPResponse
            do {
                response = try await transport.perform(HTTPRequest(method: .get, url: url, headers: headers))
            } catch let error as SCEPError {
                throw AgentError(.challenge, "the management endpoint \(displayURL) cannot be reached: \(error.message)")
            }
            switch response.status {
            case 200:
                return try Self.decode(response.body, url: displayURL)
            case 401, 403:
                throw AgentError(.challenge, "the management endpoint \(displayURL) refused our token (HTTP \(response.status)); check token_file \(tokenFile ?? "(none)") — the device may need a new token")
            case 429 where attempt < maxAttempts, 503 where attempt < maxAttempts:
                let delay = min(maxRetryAfter, Self.retryAfter(response.headers["retry-after"]) ?? Double(1 << attempt))
                attempt += 1
                try await sleeper.sleep(seconds: delay)
            case 429, 503:
                throw AgentError(.challenge, "the management endpoint \(displayURL) is still busy (HTTP \(response.status)) after \(maxAttempts) attempts; the next run tries again")
            default:
                throw AgentError(.challenge, "the management endpoint \(displayURL) answered HTTP \(response.status)")
            }
        }
    }

    /// Retry-After as delta-seconds (the HTTP-date form is treated as absent).
    static func retryAfter(_ value: String?) -> Double? {
        guard let value, let seconds = Double(value.trimmingCharacters(in: .whitespaces)), seconds >= 0 else { return nil }
        return seconds
    }

    static func decode(_ body: [UInt8], url: String) throws -> IssuedChallenge {
        struct Answer: Decodable {
            let challenge: String
            let expires_in: Double?
            let variables: [String: String]?
        }
        let answer: Answer
        do {
            answer = try JSONDecoder().decode(Answer.self, from: Data(body))
        } catch {
            // Never echo the body: it holds the challenge.
            throw AgentError(.challenge, "the management endpoint \(url) answered with malformed JSON (expected {\"challenge\": \"...\", \"expires_in\": N, \"variables\": {...}})")
        }
        let secret = try SecretText.validated(answer.challenge, from: .endpoint(displayURL: url))
        return IssuedChallenge(secret: secret, variables: answer.variables ?? [:])
    }
}
