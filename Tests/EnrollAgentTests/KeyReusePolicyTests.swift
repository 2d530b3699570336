@testable import EnrollAgent
import Logging
import TestSupport
import KeyInterface
import TPMKeys
import XCTest

/// `reuse_key = true` keeps a stored key only where `key_storage` would put
/// a new one: a scenario table over the pure rule, then the wiring of the
/// TPM probe against a real (or absent) swtpm.
final class KeyReusePolicyTests: XCTestCase {
    private let tcti = "swtpm:path=/run/example/tpm.sock"

    /// What the TPM probe answers in a scenario, or that the rule must not ask it.
    private enum Probe: Equatable {
        case tpmAnswers
        case noTPM
        case notAsked
    }

    func testScenarios() {
        let scenarios: [(policy: KeyStoragePolicy, stored: KeyStorageKind, probe: Probe, reuse: Bool, warns: Bool)] = [
            // key_storage = "tpm": never a software key.
            (.tpm, .tpm, .notAsked, reuse: true, warns: false),
            (.tpm, .software, .notAsked, reuse: false, warns: true),
            // key_storage = "tpm-preferred": a software key only while no TPM answers.
            (.tpmPreferred, .tpm, .notAsked, reuse: true, warns: false),
            (.tpmPreferred, .software, .noTPM, reuse: true, warns: true),
            (.tpmPreferred, .software, .tpmAnswers, reuse: false, warns: true),
            // key_storage = "software": whatever it has.
            (.software, .software, .notAsked, reuse: true, warns: false),
            (.software, .tpm, .notAsked, reuse: true, warns: false),
        ]
        for scenario in scenarios {
            let label = "\(scenario.policy.rawValue) with a stored \(scenario.stored.rawValue) key"
            var asked = false
            let decision = KeyReuseRule.decide(policy: scenario.policy, storedKey: scenario.stored, tcti: tcti) {
                asked = true
                return scenario.probe == .tpmAnswers ? nil : "swtpm socket missing"
            }
            XCTAssertEqual(decision.mayReuse, scenario.reuse, "\(label): \(decision)")
            XCTAssertEqual(asked, scenario.probe != .notAsked, "\(label): probe asked = \(asked)")
            let message: String?
            switch decision {
            case .reuse(let warning): message = warning
            case .replace(let reason): message = reason
            }
            XCTAssertEqual(message != nil, scenario.warns, "\(label): \(decision)")
            if let message {
                XCTAssertTrue(message.contains(scenario.policy.rawValue), "\(label): the log line names the policy: \(message)")
                XCTAssertTrue(message.contains(tcti), "\(label): the log line names the TCTI: \(message)")
            }
        }
    }

    func testKeptSoftwareKeySaysWhyNoTPMWasUsed() {
        let decision = KeyReuseRule.decide(policy: .tpmPreferred, storedKey: .software, tcti: tcti) { "swtpm socket missing" }
        guard case .reuse(let warning?) = decision else { return XCTFail("\(decision)") }
        XCTAssertTrue(warning.contains("swtpm socket missing"), warning)
        XCTAssertTrue(warning.contains("SOFTWARE"), warning)
    }

    // MARK: - KeyProvider with the real probe

    private func provider(_ policy: KeyStoragePolicy, tcti: String) -> KeyProvider {
        KeyProvider(policy: policy, tcti: tcti, algorithm: .rsa(bits: 2048),
                    logger: Logger(label: "key-reuse-test", factory: { _ in SwiftLogNoOpLogHandler() }))
    }

    func testSoftwareKeyIsKeptUnderTPMPreferredWhenNoTPMAnswers() throws {
        let directory = try TemporaryDirectory(prefix: "no-tpm")
        let absent = "swtpm:path=\(directory.appending("tpm.sock"))"
        let softwareKey = try SoftwareKey.generate(KeySpec())

        let preferred = provider(.tpmPreferred, tcti: absent).reuseDecision(for: softwareKey)
        guard case .reuse(let warning?) = preferred else { return XCTFail("\(preferred)") }
        XCTAssertTrue(warning.contains("does not exist"), "the probe's cause is in the log line: \(warning)")

        // Under "tpm" the answer does not depend on whether a TPM is there.
        XCTAssertFalse(provider(.tpm, tcti: absent).reuseDecision(for: softwareKey).mayReuse)
        XCTAssertTrue(provider(.software, tcti: absent).reuseDecision(for: softwareKey).mayReuse)
    }

    func testSoftwareKeyIsReplacedUnderTPMPreferredWhenATPMAnswers() throws {
        let swtpm = try startSwtpm()
        defer { swtpm.stop() }
        let softwareKey = try SoftwareKey.generate(KeySpec())
        let tpmKey = try TPMKeyFactory(tcti: swtpm.tcti).createKey(spec: KeySpec())

        let preferred = provider(.tpmPreferred, tcti: swtpm.tcti)
        XCTAssertFalse(preferred.reuseDecision(for: softwareKey).mayReuse)
        XCTAssertEqual(preferred.reuseDecision(for: tpmKey), .reuse(warning: nil))
        XCTAssertEqual(provider(.tpm, tcti: swtpm.tcti).reuseDecision(for: tpmKey), .reuse(warning: nil))
    }

    /// swtpm, or XCTSkip when it is not installed and CI is not "true" (in CI the test fails).
    private func startSwtpm() throws -> SwtpmProcess {
        do {
            return try SwtpmProcess.start()
        } catch let missing as PeerUnavailable where missing.maySkip {
            throw XCTSkip(missing.description)
        }
    }
}
