import Foundation

/// A one-time SCEP challenge and the template variables that came with it.
struct IssuedChallenge: Sendable {
    let secret: Secret
    /// Values for the subject/SAN templates (the endpoint's `variables`).
    let variables: [String: String]
}

/// The management endpoint's answer to a challenge request:
/// `{"challenge": "...", "expires_in": 600, "variables": {...}}`.
///
/// Apart from `EndpointChallengeProvider` so that it builds with Foundation, `AgentError`
/// and `SecretText` alone: the fuzzing package compiles it (target `textinputs`).
enum EndpointAnswer {
    /// The challenge (checked by `SecretText`) and the template variables. Errors name
    /// `url` (already without its query) and never quote the body: it holds the challenge.
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
