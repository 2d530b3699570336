import ArgumentParser

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
    }

    @Option(help: "A list for the terminal, the README's markdown table, or a commented config.toml.")
    var format: Format = .text

    func run() throws {
        switch format {
        case .text: print(ConfigReference.plainList(), terminator: "")
        case .markdown: print(ConfigReference.markdownTable(), terminator: "")
        case .example: print(ConfigReference.exampleFile(), terminator: "")
        }
    }
}
