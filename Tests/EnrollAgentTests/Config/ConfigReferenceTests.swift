import Foundation
import TestSupport
import XCTest
@testable import EnrollAgent

/// The key declarations drive the decoder and the documentation: these tests fail when the
/// generated files drift, or when a declaration says something the decoder does not do.
final class ConfigReferenceTests: XCTestCase {
    private static let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    private static let regenerate = "run scripts/generate-config-docs.sh and commit the result"

    func testTheExampleFileIsTheGeneratedOne() throws {
        let file = try String(contentsOf: Self.repository.appendingPathComponent("packaging/config.example.toml"), encoding: .utf8)
        XCTAssertEqual(file, ConfigReference.exampleFile(), "packaging/config.example.toml drifted; \(Self.regenerate)")
    }

    func testTheReadmeTableIsTheGeneratedOne() throws {
        let readme = try String(contentsOf: Self.repository.appendingPathComponent("README.md"), encoding: .utf8)
        let table = ConfigReference.markdownTable()
        let replaced = try XCTUnwrap(ConfigReference.replacingMarkdownTable(in: readme, with: table),
                                     "README.md has no config-keys markers")
        XCTAssertEqual(replaced, readme, "the README key table drifted; \(Self.regenerate)")
    }

    /// The example is a configuration the agent accepts, and it shows every key it does not omit.
    func testTheExampleDecodesAndShowsTheKeys() throws {
        let config = try AgentConfig.parse(ConfigReference.exampleFile(), path: "config.example.toml")
        XCTAssertEqual(config.profiles.map(\.name), ["device"])
        XCTAssertEqual(config.warnings, [])
        let example = ConfigReference.exampleFile()
        for key in ProfileKeys.all where key.example != .omitted {
            XCTAssertTrue(example.contains("\n\(key.name) = ") || example.contains("\n# \(key.name) = "), key.name)
        }
        for key in ChallengeKeys.names {
            XCTAssertTrue(example.contains("\(key) = "), key)
        }
    }

    /// A documented default is the real one: writing it out decodes to the same profile as
    /// leaving the key out.
    func testEveryDocumentedDefaultIsWhatTheDecoderUses() throws {
        let withDefaults = ProfileKeys.all.compactMap { key -> (String, String)? in
            guard case .value(let text) = key.defaultValue else { return nil }
            return (key.name, text)
        }
        XCTAssertGreaterThanOrEqual(withDefaults.count, 15)
        let implicit = try Self.profile(extra: "")
        for (name, text) in withDefaults {
            let explicit = try Self.profile(extra: "\(name) = \(text)\n")
            var comparable = explicit
            comparable.sourceLines = implicit.sourceLines
            XCTAssertEqual(comparable, implicit, "\(name) = \(text) is documented as the default but decodes differently")
        }
    }

    /// Every declared key is accepted (not reported as unknown), and a near miss is offered it.
    func testEveryDeclaredKeyIsKnownToTheDecoder() {
        for key in ProfileKeys.names {
            XCTAssertEqual(didYouMean(key + "x", among: ProfileKeys.names), "; did you mean \"\(key)\"?", key)
        }
        let text = Self.minimalProfile.replacingOccurrences(of: "[profile.challenge]", with: "key_bitz = 2048\n[profile.challenge]")
        let unknown = AgentConfig.decode(text)
        guard case .failure(let error) = unknown else { return XCTFail("an unknown key was accepted") }
        XCTAssertTrue(error.problems.contains { $0.message.contains("did you mean \"key_bits\"") }, "\(error.problems)")
    }

    func testTheExampleNamesEveryBuiltInVariable() {
        let example = ConfigReference.exampleFile()
        for name in HostIdentity.builtInVariableNames {
            XCTAssertTrue(example.contains("{{\(name)}}"), name)
        }
    }

    func testThePlainListNamesEveryKey() {
        let list = ConfigReference.plainList()
        for key in RootKeys.names { XCTAssertTrue(list.contains("\n\(key)  (") || list.hasPrefix("\(key)  ("), key) }
        for key in ProfileKeys.names { XCTAssertTrue(list.contains("profile.\(key)  ("), key) }
        for key in ChallengeKeys.names { XCTAssertTrue(list.contains("profile.challenge.\(key)  ("), key) }
    }

    func testChallengeSourcesUseOnlyDeclaredKeys() {
        for source in ChallengeKeys.sources {
            for key in source.usedKeys {
                XCTAssertTrue(ChallengeKeys.names.contains(key), "\(source.name) uses undeclared \(key)")
            }
        }
    }

    /// What a package installs: a fresh host enrolls nothing, and says why and what to do.
    func testTheDisabledExampleDefinesNoProfile() {
        guard case .failure(let error) = AgentConfig.decode(ConfigReference.disabledExampleFile()) else {
            return XCTFail("the disabled example decoded into a configuration with profiles")
        }
        XCTAssertEqual(error.problems.map(\.key), ["profile"], "\(error.problems)")
        let message = error.problems.first?.message ?? ""
        XCTAssertTrue(message.contains("no [[profile]] defined"), message)
        XCTAssertTrue(message.contains("enroll-agent check-config"), message)
        XCTAssertTrue(ConfigReference.disabledExampleFile().contains(ConfigReference.disabledExampleEnableCommand))
    }

    /// The command the disabled example's header gives, run with sed, turns it into the example.
    func testUncommentingTheDisabledExampleGivesTheExample() throws {
        let sed = try requirePeer("sed")
        let directory = try TemporaryDirectory(prefix: "disabled-example")
        let path = directory.appending("config.toml")
        try ConfigReference.disabledExampleFile().write(toFile: path, atomically: true, encoding: .utf8)
        let expression = try XCTUnwrap(ConfigReference.disabledExampleEnableCommand.split(separator: "'").dropFirst().first)
        let result = try ChildProcess.run(executable: sed, arguments: ["-i", String(expression), path])
        XCTAssertEqual(result.status, .exited(0), result.errorOutput)

        let enabled = try String(contentsOfFile: path, encoding: .utf8)
        let profilePart = { (text: String) -> Substring? in text.range(of: "\n[[profile]]\n").map { text[$0.lowerBound...] } }
        XCTAssertEqual(try XCTUnwrap(profilePart(enabled)), try XCTUnwrap(profilePart(ConfigReference.exampleFile())))
        let config = try AgentConfig.parse(enabled, path: "config.toml")
        XCTAssertEqual(config.profiles.map(\.name), ["device"])
        XCTAssertEqual(config.warnings, [])
    }

    /// enroll-agent.toml(5) documents every key, and groff renders it without a warning.
    func testTheManualPageNamesEveryKeyAndRenders() throws {
        let page = ConfigReference.manualPage(version: "1.2.3")
        let escaped = { (name: String) in name.replacingOccurrences(of: "-", with: "\\-") }
        for name in RootKeys.names + ProfileKeys.names + ChallengeKeys.names {
            XCTAssertTrue(page.contains("\n.TP\n.B \(escaped(name))\n"), name)
        }
        XCTAssertEqual(page.components(separatedBy: "\n.TP\n.B ").count - 1,   // one entry per key, no other .TP .B
                       RootKeys.names.count + ProfileKeys.names.count + ChallengeKeys.names.count)
        XCTAssertTrue(page.contains("Type: absolute path; default: \\fB\"/var/lib/enroll\\-agent\"\\fR."), page)
        XCTAssertTrue(page.hasPrefix(".\\\" Generated"))
        XCTAssertTrue(page.contains(".TH ENROLL\\-AGENT.TOML 5 \"\" \"enroll\\-agent 1.2.3\""))
        XCTAssertFalse(page.split(separator: "\n").contains { $0.hasPrefix("\\.") }, "a line would be read as a request")

        let groff = try requirePeer("groff")
        let directory = try TemporaryDirectory(prefix: "manual-page")
        let path = directory.appending("enroll-agent.toml.5")
        try page.write(toFile: path, atomically: true, encoding: .utf8)
        let result = try ChildProcess.run(executable: groff, arguments: ["-man", "-Tutf8", "-ww", "-z", path])
        XCTAssertEqual(result.status, .exited(0), result.errorOutput)
        XCTAssertEqual(result.errorOutput, "", "groff warned")
        let text = try ChildProcess.run(executable: groff, arguments: ["-man", "-Tascii", "-P", "-cbou", path]).output
        XCTAssertTrue(text.contains("poll_max_wait"), text)
        XCTAssertTrue(text.contains("scep_url = \"https://scep.example.com/scep\""), text)
    }

    private func requirePeer(_ name: String) throws -> String {
        do {
            return try PeerRequirement.require(binary: name)
        } catch let missing as PeerUnavailable where missing.maySkip {
            throw XCTSkip(missing.description)
        }
    }

    private static let minimalProfile = """
        [[profile]]
        name = "device"
        scep_url = "https://scep.example.com/scep"
        ca_pin_sha256 = "\(String(repeating: "ab", count: 32))"
        [profile.challenge]
        source = "none"

        """

    private static func profile(extra: String) throws -> ProfileConfig {
        // Keys before the [profile.challenge] header belong to the profile.
        let text = minimalProfile.replacingOccurrences(of: "[profile.challenge]", with: extra + "[profile.challenge]")
        let config = try AgentConfig.parse(text)
        return try XCTUnwrap(config.profiles.first)
    }
}
