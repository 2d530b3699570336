import Foundation
import TestSupport
import XCTest

/// A real NTLM peer: `Tests/Peers/ntlm_challenge_server.py`, an NDES-style admin page behind
/// NTLM, verified by pyspnego's NTLM acceptor (an independent MS-NLMP implementation: it
/// checks the NTLMv2 response against the account's password). pyspnego lives in the
/// virtualenv `scripts/install-deps.sh` makes; `ENROLL_AGENT_NTLM_PYTHON` names another
/// interpreter that has it. Without it the test skips, and fails under CI=true.
final class NTLMChallengePeer {
    static let pythonVariable = "ENROLL_AGENT_NTLM_PYTHON"
    static let defaultPython = "/var/cache/enroll-agent-tests/ntlm-venv/bin/python"
    static let domain = "EXAMPLE"
    static let user = "ndes-svc"
    static let password = "Corr3ct-Horse-NTLM-77"
    /// `DOMAIN\user`, as the agent's `username`.
    static var username: String { domain + "\\" + user }

    let challenge: String
    private let process: ChildProcess
    private let directory: TemporaryDirectory
    let port: Int

    /// The page URL, e.g. "http://127.0.0.1:PORT/certsrv/mscep_admin/".
    var url: String { "http://127.0.0.1:\(port)/certsrv/mscep_admin/" }

    /// Starts the peer, serving `challenge` on its page.
    init(challenge: String) throws {
        let python = try Self.requirePython()
        self.challenge = challenge
        directory = try TemporaryDirectory(prefix: "ntlm-peer")
        let users = directory.appending("users.txt")
        try "\(Self.domain):\(Self.user):\(Self.password)\n".write(toFile: users, atomically: true, encoding: .utf8)
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Peers/ntlm_challenge_server.py").path
        process = try ChildProcess(executable: python, arguments: [script],
                                   extraEnvironment: ["NTLM_USER_FILE": users, "NDES_CHALLENGE": challenge],
                                   outputPath: directory.appending("stdout"), errorPath: directory.appending("stderr"))
        guard process.waitForOutput(timeout: 30, until: { $0.contains("\n") }),
              let line = process.readOutput().split(separator: "\n").first, line.hasPrefix("PORT "),
              let port = Int(line.dropFirst("PORT ".count)) else {
            _ = process.terminate(gracePeriod: 2)
            throw TestSupportError(.spawnFailed, "the NTLM peer did not start: \(process.readOutput()) \(process.readErrorOutput())")
        }
        self.port = port
    }

    deinit {
        _ = process.terminate(gracePeriod: 2)
        directory.remove()
    }

    /// What the peer saw, one event a line: "NEGOTIATE <flags>", "AUTHENTICATED <user>", "REFUSED <why>".
    var events: [String] { process.readOutput().split(separator: "\n").map(String.init).filter { !$0.hasPrefix("PORT ") } }

    /// The peer's stderr (Python tracebacks), for failure messages.
    var errors: String { process.readErrorOutput() }

    /// The interpreter with pyspnego, or XCTSkip (an error under CI=true: the test fails).
    static func requirePython() throws -> String {
        let python = ProcessInfo.processInfo.environment[pythonVariable].flatMap { $0.isEmpty ? nil : $0 } ?? defaultPython
        let hint = " (scripts/install-deps.sh makes the NTLM peer's virtualenv; \(pythonVariable) names another interpreter)"
        do {
            try PeerRequirement.require(binary: python)
        } catch let missing as PeerUnavailable where missing.maySkip {
            throw XCTSkip(missing.description + hint)
        }
        let probe = try ChildProcess.run(executable: python, arguments: ["-c", "import spnego"], timeout: 60)
        guard probe.status.isSuccess else {
            let message = "\(python) cannot import spnego (pyspnego)\(hint): \(probe.errorOutput)"
            if PeerRequirement.isCI { throw TestSupportError(.peerNotReady, message + "; required under CI=true") }
            throw XCTSkip(message)
        }
        return python
    }
}
