import Foundation

/// Where challenges come from (DESIGN.md "Challenge providers"). A fresh one
/// is fetched for every PKCSReq; none is ever logged or stored.
protocol ChallengeProvider: Sendable {
    func fetchChallenge() async throws -> IssuedChallenge?
}

/// No challenge (servers that enroll without one, or RenewalReq-only flows).
struct NoChallengeProvider: ChallengeProvider {
    func fetchChallenge() async throws -> IssuedChallenge? { nil }
}

/// A static challenge in a root-only file (bounded and checked: `SecretText`).
struct FileChallengeProvider: ChallengeProvider {
    let path: String

    func fetchChallenge() async throws -> IssuedChallenge? {
        IssuedChallenge(secret: try SecretText.read(.challengeFile(path: path), path: path), variables: [:])
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
            // A challenge is one short line: no more than the longest one allowed is kept.
            outcome = try await ChildCommand(argv: argv, timeout: .seconds(timeout), outputLimit: SecretText.maximumBytes).run()
        } catch let error as AgentError {
            throw error
        } catch let cancelled as CancellationError {
            throw cancelled  // shutdown, not a broken command: the caller tells them apart
        } catch {
            throw AgentError(.challenge, "cannot run the challenge command \(executable): \(error)")
        }
        let data: [UInt8]
        switch outcome {
        case .timedOut:
            throw AgentError(.challenge, "the challenge command \(executable) did not finish within \(Int(timeout)) s and was stopped")
        case .signaled(let signal):
            throw AgentError(.challenge, "the challenge command \(executable) was ended by signal \(signal)")
        case .exited(let status, _) where status != 0:
            throw AgentError(.challenge, "the challenge command \(executable) exited with status \(status)")
        case .exited(_, let output):
            data = output
        }
        let source = SecretSource.challengeCommand(executable: executable)
        // Lines end at LF only: a CR or other control character inside the line is refused below, not a line end.
        let firstLine = data.split(separator: UInt8(ascii: "\n")).first ?? []
        // Only maximumBytes of stdout were kept: a first line that long was probably cut off.
        guard firstLine.count < SecretText.maximumBytes else {
            throw AgentError(.challenge, "\(source.name) printed a first line of \(SecretText.maximumBytes) bytes or more; "
                             + "a challenge may be at most \(SecretText.maximumBytes - 1) bytes: \(source.remedy)")
        }
        let secret = try SecretText.validated(String(decoding: firstLine, as: UTF8.self), from: source)
        return IssuedChallenge(secret: secret, variables: [:])
    }
}
