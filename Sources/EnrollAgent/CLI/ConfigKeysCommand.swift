import ArgumentParser
import SCEPClient

struct ConfigKeysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config-keys",
        abstract: "List every configuration key with its type, default and meaning.")

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case text
        /// The README's key table.
        case markdown
        /// A complete, commented example configuration.
        case example
        /// The example with its profile commented out: what a package installs, so that a
        /// fresh install enrolls nothing until configured.
        case disabledExample = "disabled-example"
        /// The manual page enroll-agent.toml(5), in roff.
        case man
    }

    @Option(help: "A list for the terminal, the README's markdown table, a commented config.toml, the same with its profile commented out (what a package installs), or the enroll-agent.toml(5) manual page in roff.")
    var format: Format = .text

    func run() throws {
        switch format {
        case .text: print(ConfigReference.plainList(), terminator: "")
        case .markdown: print(ConfigReference.markdownTable(), terminator: "")
        case .example: print(ConfigReference.exampleFile(), terminator: "")
        case .disabledExample: print(ConfigReference.disabledExampleFile(), terminator: "")
        case .man: print(ConfigReference.manualPage(version: AgentVersion.string), terminator: "")
        }
    }
}
