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
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = Array(argv.dropFirst())
        let output = Pipe()
        process.standardOutput = output
        process.standardInput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw AgentError(.challenge, "cannot run the challenge command \(executable): \((error as NSError).localizedDescription)")
        }
        let deadline = Date().addingTimeInterval(timeout)
        let data = output.fileHandleForReading.readDataToEndOfFile()
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning {
            process.terminate()
            throw AgentError(.challenge, "the challenge command \(executable) did not finish within \(Int(timeout)) s")
        }
        guard process.terminationStatus == 0 else {
            throw AgentError(.challenge, "the challenge command \(executable) exited with status \(process.terminationStatus)")
        }
        let firstLine = String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
        let challenge = firstLine.trimmingCharacters(in: .whitespaces)
        guard !challenge.isEmpty else {
            throw AgentError(.challenge, "the challenge command \(executable) printed nothing")
        }
        return IssuedChallenge(secret: Secret(challenge), variables: [:])
    }
}
