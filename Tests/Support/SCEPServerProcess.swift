import Foundation
import Glibc

/// The real micromdm `scepserver` (Debian package `scep`, 2.1.0) with a fresh
/// CA, on a free loopback port, for interoperability tests.
///
/// scepserver has no bind-address option and listens on all interfaces;
/// always talk to it through `url` (127.0.0.1). Its CertRep is always
/// DES-CBC encrypted and SHA-1 signed (see /work/shared/PEERS.md).
///
/// ```swift
/// let server = try SCEPServerProcess.start()      // PeerUnavailable if not installed
/// defer { server.stop() }
/// // point the client at server.url with server.challenge, pin server.caCertificatePEM
/// ```
public final class SCEPServerProcess: @unchecked Sendable {
    /// Server flags beyond the defaults. Everything maps to a flag or
    /// environment variable that `scepserver -help` lists for 2.1.0.
    public struct Options: Sendable {
        /// `-crtvalid`: validity of issued certificates in days (server default 365).
        public var certificateValidityDays: Int?
        /// `-allowrenew`: renewal allowed only this many days before expiry;
        /// 0 (the default here) always allows a second certificate for a DN.
        public var allowRenewDays: Int
        /// `-csrverifierexec`: a program given each CSR (on stdin); exit 0 accepts.
        public var csrVerifierExecutable: String?
        /// `-debug`: verbose server log.
        public var debug: Bool
        /// Further raw flags, appended last.
        public var extraArguments: [String]
        /// CA key size (`ca -keySize`); 2048 keeps `ca -init` around 0.2 s.
        public var caKeySize: Int
        /// CA validity (`ca -years`).
        public var caYears: Int
        /// CA organization (`ca -organization`).
        public var caOrganization: String
        /// How long to wait for the server to answer GetCACaps.
        public var startupTimeout: TimeInterval
        /// A fixed port; nil picks a free one (and retries on a clash).
        public var port: UInt16?

        public init(
            certificateValidityDays: Int? = nil, allowRenewDays: Int = 0,
            csrVerifierExecutable: String? = nil, debug: Bool = false,
            extraArguments: [String] = [], caKeySize: Int = 2048, caYears: Int = 1,
            caOrganization: String = "enroll-agent test CA", startupTimeout: TimeInterval = 10,
            port: UInt16? = nil
        ) {
            self.port = port
            self.certificateValidityDays = certificateValidityDays
            self.allowRenewDays = allowRenewDays
            self.csrVerifierExecutable = csrVerifierExecutable
            self.debug = debug
            self.extraArguments = extraArguments
            self.caKeySize = caKeySize
            self.caYears = caYears
            self.caOrganization = caOrganization
            self.startupTimeout = startupTimeout
        }
    }

    /// The SCEP endpoint, "http://127.0.0.1:PORT/scep".
    public let url: URL
    /// The port it listens on (all interfaces).
    public let port: UInt16
    /// The challenge password it enforces.
    public let challenge: String
    /// The temporary directory holding the depot and the log.
    public let directory: TemporaryDirectory
    /// The CA depot (ca.pem, ca.key, issued certificates, index.txt, serial).
    public let depotPath: String
    /// `depot/ca.pem`, the CA certificate in PEM.
    public let caCertificatePath: String
    /// Contents of `ca.pem`.
    public let caCertificatePEM: String
    /// The CA certificate in DER, exactly as GetCACert returned it.
    public let caCertificateDER: [UInt8]

    private let executable: String
    private let options: Options
    private let lock = NSRecursiveLock()
    private var process: ChildProcess
    private var currentLogPath: String
    private var restarts = 0

    /// `url` as a string.
    public var urlString: String { url.absoluteString }

    /// The current server process's combined stdout and stderr.
    public var logPath: String {
        lock.lock()
        defer { lock.unlock() }
        return currentLogPath
    }

    /// Whether the server process is still alive.
    public var isRunning: Bool { currentProcess.isRunning }

    /// The server's pid (for tests that signal it).
    public var pid: pid_t { currentProcess.pid }

    private var currentProcess: ChildProcess {
        lock.lock()
        defer { lock.unlock() }
        return process
    }

    /// The server log so far (useful in failure messages).
    public func readLog() -> String { String(decoding: ChildProcess.readFile(logPath), as: UTF8.self) }

    /// Creates a CA in a fresh directory, starts the server on a free
    /// loopback port and waits until GetCACaps answers and GetCACert returns
    /// this CA (so a stray server on a reused port cannot be mistaken for it).
    ///
    /// - Parameters:
    ///   - challenge: the enforced challenge password; random by default.
    ///     Passed in the environment (`SCEP_CHALLENGE_PASSWORD`), not argv.
    ///   - binary: name or path of scepserver.
    /// - Throws: `PeerUnavailable` if scepserver is missing (see its doc for
    ///   the skip/fail rule), `TestSupportError` if it does not come up.
    public static func start(
        challenge: String = SCEPServerProcess.randomChallenge(),
        options: Options = Options(),
        binary: String = "scepserver"
    ) throws -> SCEPServerProcess {
        let executable = try PeerRequirement.require(binary: binary)
        let directory = try TemporaryDirectory(prefix: "scepserver")
        let depot = directory.appending("depot")
        let initResult = try ChildProcess.run(
            executable: executable,
            arguments: ["ca", "-init", "-depot", depot, "-keySize", String(options.caKeySize),
                        "-organization", options.caOrganization, "-years", String(options.caYears)],
            workingDirectory: directory.path, timeout: 60)
        guard initResult.status.isSuccess else {
            throw TestSupportError(.processFailed, """
                scepserver ca -init failed (\(initResult.status)): \(initResult.output)\(initResult.errorOutput)
                """)
        }
        let caPath = "\(depot)/ca.pem"
        guard let caPEMData = FileManager.default.contents(atPath: caPath),
              let caDER = pemBody(String(decoding: caPEMData, as: UTF8.self)) else {
            throw TestSupportError(.processFailed, "scepserver ca -init left no readable PEM at \(caPath)")
        }

        // A port picked by binding :0 and closing can be taken by someone else
        // before scepserver binds it; then it exits and we try another.
        let attempts = options.port == nil ? 5 : 1
        var lastFailure = ""
        for attempt in 1...attempts {
            let port = try options.port ?? freeLoopbackPort()
            let logPath = directory.appending("scepserver-\(attempt).log")
            switch try launch(executable: executable, depot: depot, port: port, challenge: challenge,
                              options: options, expectedCA: caDER, logPath: logPath) {
            case .ready(let process):
                return SCEPServerProcess(
                    url: URL(string: "http://127.0.0.1:\(port)/scep")!, port: port, challenge: challenge,
                    executable: executable, options: options,
                    directory: directory, depotPath: depot, caCertificatePath: caPath,
                    caCertificatePEM: String(decoding: caPEMData, as: UTF8.self), caCertificateDER: caDER,
                    logPath: logPath, process: process)
            case .portTaken(let why):
                lastFailure = why
            }
        }
        throw TestSupportError(.peerNotReady, """
            scepserver could not listen on \(options.port.map { "port \($0)" } ?? "a free port (5 attempts)"): \
            \(lastFailure)
            """)
    }

    /// Stops the server and starts it again on the same port with the same
    /// depot, CA and challenge — for tests of a server that goes away and
    /// comes back mid-enrollment. The new log goes to a new file (`logPath`).
    ///
    /// - Throws: `TestSupportError.peerNotReady` if the port was taken meanwhile
    ///   or the server does not come back.
    public func restart() throws {
        lock.lock()
        defer { lock.unlock() }
        process.terminate(gracePeriod: 5)
        restarts += 1
        let logPath = directory.appending("scepserver-restart-\(restarts).log")
        switch try Self.launch(executable: executable, depot: depotPath, port: port, challenge: challenge,
                               options: options, expectedCA: caCertificateDER, logPath: logPath) {
        case .ready(let process):
            self.process = process
            self.currentLogPath = logPath
        case .portTaken(let why):
            throw TestSupportError(.peerNotReady, "scepserver could not get port \(port) back: \(why)")
        }
    }

    private enum LaunchOutcome {
        case ready(ChildProcess)
        case portTaken(String)
    }

    /// Starts one server process and waits for it; throws if it fails for a
    /// reason other than its port being taken.
    private static func launch(
        executable: String, depot: String, port: UInt16, challenge: String,
        options: Options, expectedCA: [UInt8], logPath: String
    ) throws -> LaunchOutcome {
        let process = try ChildProcess(
            executable: executable,
            arguments: serverArguments(depot: depot, port: port, options: options),
            extraEnvironment: ["SCEP_CHALLENGE_PASSWORD": challenge],
            workingDirectory: (depot as NSString).deletingLastPathComponent, outputPath: logPath)
        switch waitUntilServing(process: process, port: port, expectedCA: expectedCA,
                                timeout: options.startupTimeout) {
        case .ready:
            return .ready(process)
        case .portTaken(let why):
            process.terminate(gracePeriod: 2)
            return .portTaken(why)
        case .failed(let why):
            process.terminate(gracePeriod: 2)
            throw TestSupportError(.peerNotReady, """
                scepserver on 127.0.0.1:\(port) did not become ready: \(why). \
                Log (\(logPath)): \(String(decoding: ChildProcess.readFile(logPath), as: UTF8.self))
                """)
        }
    }

    private init(url: URL, port: UInt16, challenge: String, executable: String, options: Options,
                 directory: TemporaryDirectory, depotPath: String,
                 caCertificatePath: String, caCertificatePEM: String, caCertificateDER: [UInt8],
                 logPath: String, process: ChildProcess) {
        self.url = url
        self.port = port
        self.challenge = challenge
        self.executable = executable
        self.options = options
        self.directory = directory
        self.depotPath = depotPath
        self.caCertificatePath = caCertificatePath
        self.caCertificatePEM = caCertificatePEM
        self.caCertificateDER = caCertificateDER
        self.currentLogPath = logPath
        self.process = process
    }

    /// SIGTERM, wait (SIGKILL after 5 s). The directory stays until deinit
    /// so the log and depot can still be read. Idempotent.
    @discardableResult
    public func stop() -> ChildExitStatus {
        currentProcess.terminate(gracePeriod: 5)
    }

    deinit {
        process.terminate(gracePeriod: 5)
        directory.remove()
    }

    /// Certificates the CA issued so far (depot files other than ca.pem), as PEM paths.
    public func issuedCertificatePaths() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: depotPath)) ?? []
        return names.filter { $0.hasSuffix(".pem") && $0 != "ca.pem" }.sorted().map { "\(depotPath)/\($0)" }
    }

    /// 24 random hex characters.
    public static func randomChallenge() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<12).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
    }

    // MARK: - Starting

    static func serverArguments(depot: String, port: UInt16, options: Options) -> [String] {
        var arguments = ["-depot", depot, "-port", String(port), "-allowrenew", String(options.allowRenewDays)]
        if let days = options.certificateValidityDays { arguments += ["-crtvalid", String(days)] }
        if let verifier = options.csrVerifierExecutable { arguments += ["-csrverifierexec", verifier] }
        if options.debug { arguments.append("-debug") }
        return arguments + options.extraArguments
    }

    private enum StartupOutcome {
        case ready
        case portTaken(String)
        case failed(String)
    }

    private static func waitUntilServing(process: ChildProcess, port: UInt16, expectedCA: [UInt8],
                                         timeout: TimeInterval) -> StartupOutcome {
        let deadline = Date(timeIntervalSinceNow: timeout)
        var lastProbe = "no probe yet"
        while Date() < deadline {
            if let status = process.exitStatus {
                let log = String(decoding: ChildProcess.readFile(process.outputPath), as: UTF8.self)
                if log.contains("address already in use") { return .portTaken(log) }
                return .failed("exited (\(status)) before answering")
            }
            do {
                let caps = try TestHTTPClient.send(port: port, target: "/scep?operation=GetCACaps", timeout: 2)
                guard caps.status == 200, caps.bodyText.contains("POSTPKIOperation") else {
                    // Not a SCEP server: someone else holds the port; ours will fail to bind.
                    return .portTaken("a different server answers on \(port): \(caps.status) \(caps.bodyText)")
                }
                let caCert = try TestHTTPClient.send(port: port, target: "/scep?operation=GetCACert", timeout: 2)
                guard caCert.status == 200, caCert.body == expectedCA else {
                    // Another server answered on this port: ours will fail to bind.
                    return .portTaken("GetCACert on \(port) returned a different CA")
                }
                return .ready
            } catch {
                lastProbe = "\(error)"
            }
            usleep(20_000)
        }
        return .failed("no answer within \(timeout) s; last probe: \(lastProbe)")
    }

    /// A port free right now on 127.0.0.1 (bind :0, read it, close).
    public static func freeLoopbackPort() throws -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw TestSupportError.posix(.socketFailed, "socket") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        guard ok else { throw TestSupportError.posix(.socketFailed, "bind 127.0.0.1:0") }
        return UInt16(bigEndian: address.sin_port)
    }

    /// The DER inside the first PEM block.
    static func pemBody(_ pem: String) -> [UInt8]? {
        let lines = pem.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
        guard let begin = lines.firstIndex(where: { $0.hasPrefix("-----BEGIN ") }),
              let end = lines[begin...].firstIndex(where: { $0.hasPrefix("-----END ") }) else { return nil }
        let base64 = lines[(begin + 1)..<end].joined()
        return Data(base64Encoded: base64).map { [UInt8]($0) }
    }
}

// MARK: - scepclient

/// The outcome of one `scepclient` run.
public struct SCEPClientRun: Sendable {
    /// scepclient's exit status (0 = certificate issued).
    public let status: ChildExitStatus
    /// stdout and stderr together.
    public let output: String
    /// Wall time of the run, key generation included.
    public let duration: TimeInterval
    /// The fresh directory it ran in (removed with this value's last copy).
    public let directory: TemporaryDirectory
    /// The RSA key it generated (PEM).
    public let privateKeyPath: String
    /// The issued certificate (PEM), present when `status` is success.
    public let certificatePath: String

    /// The issued certificate's PEM, if any.
    public var certificatePEM: String? {
        FileManager.default.contents(atPath: certificatePath).map { String(decoding: $0, as: UTF8.self) }
    }
}

extension SCEPServerProcess {
    /// Runs micromdm's `scepclient` once in a fresh directory (it writes
    /// csr.pem into its working directory) to enroll `commonName`.
    ///
    /// Note: scepclient only takes the challenge as `-challenge` in argv;
    /// use test secrets only.
    ///
    /// - Throws: `PeerUnavailable` if scepclient is missing; `TestSupportError`
    ///   if it cannot start or exceeds `timeout`. A refused enrollment is a
    ///   non-zero `status`, not a throw.
    public static func runSCEPClient(
        serverURL: URL, challenge: String, commonName: String,
        extraArguments: [String] = [], timeout: TimeInterval = 30, binary: String = "scepclient"
    ) throws -> SCEPClientRun {
        let executable = try PeerRequirement.require(binary: binary)
        let directory = try TemporaryDirectory(prefix: "scepclient")
        let keyPath = directory.appending("client.key")
        let certificatePath = directory.appending("client.pem")
        let logPath = directory.appending("scepclient.log")
        let child = try ChildProcess(
            executable: executable,
            arguments: ["-server-url", serverURL.absoluteString, "-challenge", challenge,
                        "-private-key", keyPath, "-certificate", certificatePath, "-cn", commonName]
                + extraArguments,
            workingDirectory: directory.path, outputPath: logPath)
        guard let status = child.wait(timeout: timeout) else {
            child.terminate()
            throw TestSupportError(.processTimedOut, """
                scepclient against \(serverURL) did not finish within \(timeout) s: \(child.readOutput())
                """)
        }
        return SCEPClientRun(status: status, output: child.readOutput(), duration: child.duration ?? 0,
                             directory: directory, privateKeyPath: keyPath, certificatePath: certificatePath)
    }

    /// `runSCEPClient` against this server with its challenge (or another).
    public func enrollWithSCEPClient(commonName: String, challenge: String? = nil,
                                     extraArguments: [String] = []) throws -> SCEPClientRun {
        try Self.runSCEPClient(serverURL: url, challenge: challenge ?? self.challenge,
                               commonName: commonName, extraArguments: extraArguments)
    }
}
