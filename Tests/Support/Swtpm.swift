import Foundation
import Glibc

/// A private software TPM 2.0 (`swtpm socket --tpm2`, Debian package swtpm
/// 0.7.1) on a unix socket in a fresh directory, for tests of TPM keys.
///
/// Facts that shape its use (see /work/shared/PEERS.md):
/// - it serves **one client connection at a time**: a second client blocks
///   until the first disconnects, so never hold an ESYS context open while
///   running tpm2-tools or `openssl -provider tpm2` against it;
/// - it has **no resource manager** and three object slots: every transient
///   object must be flushed;
/// - the TCTI is `swtpm:path=<socket>` (tpm2-tss 3.2's swtpm TCTI takes
///   unix sockets; `mssim:` does not work with swtpm).
///
/// ```swift
/// let tpm = try SwtpmProcess.start()      // PeerUnavailable if swtpm is missing
/// defer { tpm.stop() }
/// let factory = TPMKeyFactory(tcti: tpm.tcti)
/// ```
public final class SwtpmProcess: @unchecked Sendable {
    /// TCTI configuration string for tpm2-tss, tpm2-tools (`-T`) and
    /// tpm2-openssl (`TPM2OPENSSL_TCTI`): "swtpm:path=<dir>/tpm.sock".
    public let tcti: String
    /// The data socket.
    public let socketPath: String
    /// The control socket (`swtpm_ioctl --unix <path>`).
    public let controlSocketPath: String
    /// The TPM state directory (and home of the sockets and the log).
    public let directory: TemporaryDirectory
    /// swtpm's combined stdout and stderr.
    public let logPath: String

    private let process: ChildProcess

    /// Whether swtpm is still running.
    public var isRunning: Bool { process.isRunning }

    /// swtpm's pid.
    public var pid: pid_t { process.pid }

    /// The swtpm log so far.
    public func readLog() -> String { String(decoding: ChildProcess.readFile(logPath), as: UTF8.self) }

    /// Environment for a tool that talks to this TPM: tpm2-tools
    /// (`TPM2TOOLS_TCTI`) and the tpm2-openssl provider (`TPM2OPENSSL_TCTI`).
    public var toolEnvironment: [String: String] {
        ["TPM2TOOLS_TCTI": tcti, "TPM2OPENSSL_TCTI": tcti]
    }

    /// Starts swtpm with fresh state (manufactured on first start, ~20 ms;
    /// TPM2_Startup done by `--flags startup-clear`) and waits until its data
    /// socket accepts connections.
    ///
    /// - Throws: `PeerUnavailable` if swtpm is not installed (the test may
    ///   skip unless `CI=true`, see `PeerRequirement`), `TestSupportError`
    ///   if it does not come up within `timeout` seconds.
    public static func start(binary: String = "swtpm", timeout: TimeInterval = 10) throws -> SwtpmProcess {
        let executable = try PeerRequirement.require(binary: binary)
        let directory = try TemporaryDirectory(prefix: "swtpm")
        let socket = directory.appending("tpm.sock")
        let control = directory.appending("tpm.sock.ctrl")
        let log = directory.appending("swtpm.log")
        let process = try ChildProcess(
            executable: executable,
            arguments: ["socket", "--tpm2",
                        "--tpmstate", "dir=\(directory.path)",
                        "--server", "type=unixio,path=\(socket)",
                        "--ctrl", "type=unixio,path=\(control)",
                        "--flags", "not-need-init,startup-clear"],
            outputPath: log)
        let swtpm = SwtpmProcess(socketPath: socket, controlSocketPath: control, directory: directory,
                                 logPath: log, process: process)
        try swtpm.waitUntilAccepting(timeout: timeout)
        return swtpm
    }

    private init(socketPath: String, controlSocketPath: String, directory: TemporaryDirectory,
                 logPath: String, process: ChildProcess) {
        self.tcti = "swtpm:path=\(socketPath)"
        self.socketPath = socketPath
        self.controlSocketPath = controlSocketPath
        self.directory = directory
        self.logPath = logPath
        self.process = process
    }

    /// SIGTERM, wait (SIGKILL after 5 s); returns how swtpm ended. The
    /// directory stays until deinit so the log can still be read. Idempotent.
    @discardableResult
    public func stop() -> ChildExitStatus {
        process.terminate(gracePeriod: 5)
    }

    deinit {
        process.terminate(gracePeriod: 5)
        directory.remove()
    }

    private func waitUntilAccepting(timeout: TimeInterval) throws {
        let deadline = Date(timeIntervalSinceNow: timeout)
        var lastError = "socket not created yet"
        while Date() < deadline {
            if let status = process.exitStatus {
                throw TestSupportError(.peerNotReady, "swtpm exited (\(status)) before serving: \(readLog())")
            }
            if FileManager.default.fileExists(atPath: socketPath) {
                // A connect that succeeds and closes at once is harmless: swtpm
                // logs "Data client disconnected" and waits for the next client.
                switch Self.connect(unixSocket: socketPath) {
                case .success: return
                case .failure(let error): lastError = "\(error)"
                }
            }
            usleep(10_000)
        }
        process.terminate(gracePeriod: 2)
        throw TestSupportError(.peerNotReady,
                               "swtpm did not accept on \(socketPath) within \(timeout) s (\(lastError)); log: \(readLog())")
    }

    private static func connect(unixSocket path: String) -> Result<Void, TestSupportError> {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return .failure(.posix(.socketFailed, "socket(AF_UNIX)")) }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let pathBytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard pathBytes.count < capacity else {
            return .failure(TestSupportError(.socketFailed, "unix socket path longer than \(capacity - 1) bytes: \(path)"))
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: pathBytes)
            raw[pathBytes.count] = 0
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        return connected == 0 ? .success(()) : .failure(.posix(.socketFailed, "connect \(path)"))
    }
}
