import Foundation

/// A one-time SCEP challenge and the template variables that came with it.
struct IssuedChallenge: Sendable {
    let secret: Secret
    /// Values for the subject/SAN templates (the endpoint's `variables`).
    let variables: [String: String]
}

/// Where challenges come from (DESIGN.md "Challenge providers"). A fresh one
/// is fetched for every PKCSReq; none is ever logged or stored.
protocol ChallengeProvider: Sendable {
    func fetchChallenge() async throws -> IssuedChallenge?
}

/// No challenge (servers that enroll without one, or RenewalReq-only flows).
struct NoChallengeProvider: ChallengeProvider {
    func fetchChallenge() async throws -> IssuedChallenge? { nil }
}

/// A static challenge in a root-only file.
struct FileChallengeProvider: ChallengeProvider {
    let path: String

    func fetchChallenge() async throws -> IssuedChallenge? {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw AgentError(.challenge, "cannot read the challenge file \(path): \((error as NSError).localizedDescription)")
        }
        let challenge = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !challenge.isEmpty else {
            throw AgentError(.challenge, "the challenge file \(path) is empty")
        }
        return IssuedChallenge(secret: Secret(challenge), variables: [:])
    }
}

/// An executable that prints the challenge on its first line of stdout.
/// Its stderr is passed through to ours (it is the integration's log, not ours
/// to judge); its stdout is never shown.
struct CommandChallengeProvider: ChallengeProvider {
    let argv: [String]
    var timeout: TimeInterval = 60

    func fetchChallenge() async throws -> IssuedChallenge? {
        guard let executable = argv.first else { throw AgentError(.config, "challenge.command is empty") }
        let outcome: ChildCommand.Outcome
        do {
            outcome = try ChildCommand(argv: argv, timeout: timeout, captureOutput: true).run()
        } catch let error as AgentError {
            throw error
        } catch {
            throw AgentError(.challenge, "cannot run the challenge command \(executable): \((error as NSError).localizedDescription)")
        }
        let data: [UInt8]
        switch outcome {
        case .timedOut:
            throw AgentError(.challenge, "the challenge command \(executable) did not finish within \(Int(timeout)) s and was stopped")
        case .exited(let status, _) where status != 0:
            throw AgentError(.challenge, "the challenge command \(executable) exited with status \(status)")
        case .exited(_, let output):
            data = output
        }
        let firstLine = String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
        let challenge = firstLine.trimmingCharacters(in: .whitespaces)
        guard !challenge.isEmpty else {
            throw AgentError(.challenge, "the challenge command \(executable) printed nothing")
        }
        return IssuedChallenge(secret: Secret(challenge), variables: [:])
    }
}
