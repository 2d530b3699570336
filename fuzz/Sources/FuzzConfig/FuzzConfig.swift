// libFuzzer harness: the TOML configuration (AgentConfig.decode: TOML parser, the config model,
// subject/SAN templates and every value parser). Any text is either a config or a list of
// problems; a problem's line must lie inside the file.
@testable import AgentConfig

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfig(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    let text = String(decoding: bytes, as: UTF8.self)
    let lineCount = bytes.filter { $0 == UInt8(ascii: "\n") }.count + 1
    let problems: [ConfigProblem]
    switch AgentConfig.decode(text, path: "/fuzz/config.toml") {
    case .success(let config):
        precondition(!config.profiles.isEmpty, "a config without profiles was accepted")
        problems = config.warnings
    case .failure(let error):
        precondition(!error.problems.isEmpty, "a config was rejected without a problem")
        _ = error.description
        problems = error.problems
    }
    for problem in problems {
        if let line = problem.line {
            precondition((1...lineCount).contains(line), "problem on line \(line) of a \(lineCount)-line file: \(problem)")
        }
    }
    return 0
}
