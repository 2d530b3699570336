import ArgumentParser
import Foundation

struct CheckConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Check the configuration and the files it names; print every problem with its key and line.")

    @OptionGroup var options: CommonOptions

    func run() async throws {
        let config: AgentConfig
        do {
            config = try AgentConfig.load(path: options.config)
        } catch let error as ConfigError {
            print(error.description)
            throw ExitCode(AgentError.Code.config.exitCode)
        }
        let problems = config.warnings + config.validateEnvironment()
        for problem in ConfigProblem.sorted(problems) {
            print(problem.formatted(path: options.config))
        }
        if problems.contains(where: \.isError) {
            throw ExitCode(AgentError.Code.config.exitCode)
        }
        print("\(options.config): OK (\(config.profiles.count) profile\(config.profiles.count == 1 ? "" : "s"): \(config.profiles.map(\.name).joined(separator: ", ")))")
    }
}
