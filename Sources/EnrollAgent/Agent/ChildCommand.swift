import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Runs a configured command (challenge `command`, `post_install` hook) with a
/// deadline that holds even when the command's own children keep its output
/// open: the command runs in its own process group, which is sent SIGTERM at
/// the deadline and SIGKILL shortly after.
struct ChildCommand {
    enum Outcome {
        case exited(Int32, output: [UInt8])
        case timedOut
    }

    let argv: [String]
    var environment: [String: String]? = nil
    var timeout: TimeInterval
    var captureOutput = false
    var killGrace: TimeInterval = 2

    func run() throws -> Outcome {
        guard let executable = argv.first else { throw AgentError(.config, "empty command") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = Array(argv.dropFirst())
        if let environment { process.environment = environment }
        process.standardInput = FileHandle.nullDevice
        let pipe = captureOutput ? Pipe() : nil
        if let pipe { process.standardOutput = pipe }
        let collector = OutputCollector()
        pipe?.fileHandleForReading.readabilityHandler = { handle in collector.append(handle.availableData) }
        try process.run()
        let pid = process.processIdentifier
        setpgid(pid, pid)  // best effort: its own group, so the whole tree can be stopped

        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning {
            stop(pid, SIGTERM)
            let killAt = Date().addingTimeInterval(killGrace)
            while process.isRunning && Date() < killAt { usleep(10_000) }
            if process.isRunning { stop(pid, SIGKILL) }
            process.waitUntilExit()
            pipe?.fileHandleForReading.readabilityHandler = nil
            return .timedOut
        }
        pipe?.fileHandleForReading.readabilityHandler = nil
        if let pipe { collector.append(pipe.fileHandleForReading.readDataToEndOfFileOrNil()) }
        return .exited(process.terminationStatus, output: collector.bytes)
    }

    private func stop(_ pid: pid_t, _ signal: Int32) {
        if kill(-pid, signal) != 0 { kill(pid, signal) }
    }
}

private final class OutputCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var data: [UInt8] = []
    /// A challenge is one short line; more than this is not kept.
    private let limit = 64 * 1024
    func append(_ chunk: Data) {
        lock.lock(); defer { lock.unlock() }
        if data.count < limit { data.append(contentsOf: chunk.prefix(limit - data.count)) }
    }
    var bytes: [UInt8] { lock.lock(); defer { lock.unlock() }; return data }
}

private extension FileHandle {
    /// Whatever is still buffered, without blocking on a writer that never closes.
    func readDataToEndOfFileOrNil() -> Data {
        var flags = fcntl(fileDescriptor, F_GETFL)
        flags |= O_NONBLOCK
        _ = fcntl(fileDescriptor, F_SETFL, flags)
        var result = Data()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = Glibc.read(fileDescriptor, &buffer, buffer.count)
            if count <= 0 { break }
            result.append(contentsOf: buffer.prefix(count))
        }
        return result
    }
}
