import EnrollmentPlan
import Foundation
import TestSupport
import XCTest

@testable import CertStore

/// DESIGN.md's promise for the store, tested against the real binary: "a kill at
/// any instant leaves either the old or the new generation live, never a broken
/// one" — and the next normal run cleans up after the killed one.
///
/// The kill instants are random but seeded; the seed is printed, and
/// `CRASH_TEST_SEED=<n>` replays a failing sequence.
final class CrashSafetyTests: XCTestCase {
    private var fixture: AgentStoreFixture!

    override func setUpWithError() throws {
        fixture = try AgentStoreFixture()
        let enroll = try fixture.run(["enroll"])
        // A failed precondition fails the test (never a skip: CI must see it).
        guard enroll.exitCode == 0 else { throw AgentProcessError("the first enrollment failed; nothing to crash-test:\n\(enroll.transcript)") }
    }

    override func tearDown() {
        fixture = nil
    }

    func testKillingRenewForceAtRandomInstantsNeverBreaksTheLiveGeneration() throws {
        try killAtRandomInstants(["renew", "--force"], rounds: 25)
    }

    func testKillingEnrollForceAtRandomInstantsNeverBreaksTheLiveGeneration() throws {
        try killAtRandomInstants(["enroll", "--force"], rounds: 15)
    }

    /// A run killed while it holds the profile lock leaves the lock file behind;
    /// flock dies with the process, so a run already waiting proceeds at once
    /// and a later run never waits.
    func testLockOfAKilledRunIsTakenOver() throws {
        // The holder hangs on its first request, lock held, until it is killed.
        let hangingServer = try TestHTTPServer(response: .hang)
        defer { hangingServer.stop() }
        let holderConfig = try fixture.writeConfig(named: "holder.toml") { $0.scepURL = hangingServer.urlString + "/scep" }
        let holder = try fixture.start(["renew", "--force"], configPath: holderConfig)
        defer { holder.terminate(gracePeriod: 1) }
        XCTAssertTrue(hangingServer.waitForRequests(count: 1, timeout: 30), "the holder never reached the server")
        XCTAssertTrue(StoreInspector.isLocked(fixture.profilePath("lock")), "the holder does not hold the profile lock")

        // A second run (against the real server) must wait for the holder…
        let waiter = try fixture.start(["renew", "--force"])
        defer { waiter.terminate(gracePeriod: 1) }
        XCTAssertTrue(AgentStoreFixture.waitUntil(timeout: 30) { waiter.readErrorOutput().contains("holds the lock") || !waiter.isRunning },
                      "the second run neither waited nor finished: \(waiter.readErrorOutput())")
        XCTAssertTrue(waiter.isRunning, "the second run did not wait for the lock:\n\(waiter.readErrorOutput())")
        XCTAssertTrue(waiter.readErrorOutput().contains("holds the lock"), waiter.readErrorOutput())

        // …and proceed as soon as the holder is SIGKILLed (no unlock, no cleanup).
        holder.send(signal: SIGKILL)
        XCTAssertEqual(holder.wait(timeout: 10), .signaled(SIGKILL))
        XCTAssertEqual(waiter.wait(timeout: 60), .exited(0), waiter.readErrorOutput())
        XCTAssertEqual(StoreInspector.problems(in: fixture.profileDirectory, caPath: fixture.server.caCertificatePath), [])

        // The lock file stays behind (it names the last holder); nobody waits on it.
        XCTAssertTrue(FileManager.default.fileExists(atPath: fixture.profilePath("lock")))
        let later = try fixture.run(["renew", "--force"], timeout: 60)
        XCTAssertEqual(later.exitCode, 0, later.transcript)
        XCTAssertFalse(later.standardError.contains("holds the lock"), "a dead holder still blocks:\n\(later.transcript)")
    }

    /// Leftovers of a killed install — a half-written staging directory, a numbered
    /// generation missing key.pem, a temp symlink — are never read, and are cleaned up.
    func testHalfWrittenGenerationsAreIgnoredAndCleanedUp() throws {
        let before = try StoreSnapshot(profileDirectory: fixture.profileDirectory)
        let generations = fixture.profilePath("generations")
        let staging = generations + "/.staging-xyz"
        let bogus = generations + "/000099"
        try FileManager.default.createDirectory(atPath: staging, withIntermediateDirectories: false)
        try Data("-----BEGIN CERTIFICATE-----\nMIIB".utf8).write(to: URL(fileURLWithPath: staging + "/cert.pem"))
        try FileManager.default.createDirectory(atPath: bogus, withIntermediateDirectories: false)
        for name in ["cert.pem", "chain.pem", "fullchain.pem"] {
            try FileManager.default.copyItem(atPath: fixture.livePath(name), toPath: bogus + "/" + name)
        }
        let tempLink = fixture.profilePath(".live.tmp-killed")
        XCTAssertEqual(symlink("generations/000099", tempLink), 0)

        // Readers are unaffected: status reads the old live generation.
        let status = try fixture.run(["status", "--json"])
        XCTAssertEqual(status.exitCode, 0, status.transcript)
        let profile = (try status.jsonObject()["profiles"] as? [[String: Any]])?.first
        XCTAssertEqual(profile?["state"] as? String, "valid", status.transcript)
        XCTAssertEqual(try StoreSnapshot(profileDirectory: fixture.profileDirectory), before)
        // …and change nothing: status never cleans up, the lock being free or not.
        XCTAssertTrue(StoreInspector.exists(staging), "status removed the staging directory")
        XCTAssertTrue(StoreInspector.exists(tempLink), "status removed the temp symlink")

        // A no-op enroll takes the lock, removes staging leftovers, leaves live alone.
        let enroll = try fixture.run(["enroll"])
        XCTAssertEqual(enroll.exitCode, 0, enroll.transcript)
        XCTAssertEqual(try StoreSnapshot(profileDirectory: fixture.profileDirectory), before)
        XCTAssertFalse(StoreInspector.exists(staging), "the staging directory was not cleaned up")
        XCTAssertFalse(StoreInspector.exists(tempLink), "the temp symlink was not cleaned up")

        // An install skips past the bogus number and prunes it.
        let renew = try fixture.run(["renew", "--force"])
        XCTAssertEqual(renew.exitCode, 0, renew.transcript)
        XCTAssertEqual(StoreInspector.problems(in: fixture.profileDirectory, caPath: fixture.server.caCertificatePath), [])
        let after = try StoreSnapshot(profileDirectory: fixture.profileDirectory)
        XCTAssertNotEqual(after.liveTarget, before.liveTarget)
        XCTAssertFalse(StoreInspector.exists(bogus), "the incomplete generation 000099 was not pruned")
        XCTAssertEqual(after.liveTarget, "generations/000100", "a new generation must not reuse or undercut a number on disk")
        XCTAssertEqual(try StoreInspector.readLink(fixture.profilePath("previous")), before.liveTarget)
    }

    // MARK: - Kill loop

    private func killAtRandomInstants(_ arguments: [String], rounds: Int) throws {
        let seed = ProcessInfo.processInfo.environment["CRASH_TEST_SEED"].flatMap(UInt64.init) ?? UInt64.random(in: 1...UInt64.max)
        var random = KillScheduleGenerator(seed: seed)
        let caPath = fixture.server.caCertificatePath

        // The fastest of three uninterrupted runs sets the range of kill instants: RSA key
        // generation and a loaded machine make single runs vary a lot, and a slow outlier
        // would put most kill instants after the run has ended.
        var durations: [TimeInterval] = []
        for _ in 1...3 {
            let timed = try fixture.run(arguments)
            XCTAssertEqual(timed.exitCode, 0, timed.transcript)
            durations.append(timed.result.duration)
        }
        let typicalMilliseconds = max(50, Int((durations.min() ?? 0) * 1000))
        print("CrashSafetyTests: \(arguments.joined(separator: " ")): seed \(seed) (replay with CRASH_TEST_SEED=\(seed)), "
              + "\(rounds) kills within 0–\(typicalMilliseconds * 14 / 10) ms (fastest run \(typicalMilliseconds) ms)")

        var killed = 0
        var liveChanges = 0
        var leftPending = 0
        var outcomes: [String] = []
        var roundsRun = 0
        var liveTarget = try? StoreInspector.readLink(fixture.profilePath("live"))
        for round in 1...rounds {
            // Odd rounds: anywhere in a run. Even rounds: around its end, where the request is
            // sent and the install happens — a short window that uniform instants rarely hit.
            let window = round.isMultiple(of: 2) ? (typicalMilliseconds * 6 / 10)...(typicalMilliseconds * 14 / 10)
                                                 : 0...typicalMilliseconds
            let delay = Int.random(in: window, using: &random)
            roundsRun = round
            let child = try fixture.start(arguments)
            usleep(useconds_t(delay * 1000))
            child.send(signal: SIGKILL)
            guard let status = child.wait(timeout: 30) else {
                return XCTFail("seed \(seed) round \(round): the agent survived SIGKILL for 30 s")
            }
            if status == .signaled(SIGKILL) { killed += 1 }
            outcomes.append("\(delay)ms:\(status)")
            let problems = StoreInspector.problems(in: fixture.profileDirectory, caPath: caPath)
            XCTAssertEqual(problems, [], "seed \(seed) round \(round): killed after \(delay) ms (\(status)); stderr:\n\(child.readErrorOutput())")
            if !problems.isEmpty { break }
            let target = try? StoreInspector.readLink(fixture.profilePath("live"))
            if target != liveTarget { liveChanges += 1 }

            // A kill between sending and installing leaves the transaction pending. The next run
            // must complete it — and must do so now, or the following rounds would all be killed
            // while resuming instead of at instants spread over a whole enrollment.
            if StoreInspector.exists(fixture.profilePath("pending/key.pem")) {
                leftPending += 1
                let recovery = try fixture.run(["renew", "--force"])
                XCTAssertEqual(recovery.exitCode, 0,
                               "seed \(seed) round \(round): the run after a kill \(delay) ms in did not complete the pending transaction\n\(recovery.transcript)")
                XCTAssertEqual(StoreInspector.problems(in: fixture.profileDirectory, caPath: caPath), [], "seed \(seed) round \(round)")
                guard recovery.exitCode == 0 else { break }
            }
            liveTarget = try? StoreInspector.readLink(fixture.profilePath("live"))
        }
        print("CrashSafetyTests: \(killed) of \(rounds) runs killed mid-way; \(liveChanges) rounds ended with a new live generation; "
              + "\(leftPending) left a pending transaction that the next run completed")
        if roundsRun == rounds {
            XCTAssertGreaterThanOrEqual(killed, rounds / 3, "too few runs were actually killed mid-way: \(outcomes)")
        }

        // A normal run afterwards completes whatever was left: pending transaction, staging, temp files.
        let recovery = try fixture.run(["renew", "--force"])
        XCTAssertEqual(recovery.exitCode, 0, "seed \(seed): the run after the kills failed\n\(recovery.transcript)")
        XCTAssertEqual(StoreInspector.problems(in: fixture.profileDirectory, caPath: caPath), [], "seed \(seed)")
        XCTAssertEqual(StoreInspector.leftovers(in: fixture.profileDirectory), [], "seed \(seed): leftovers after a clean run")
        let state = try StoreInspector.state(in: fixture.profileDirectory)
        XCTAssertNil(state?.phase.transaction, "seed \(seed): a transaction is still pending after a successful run")
        XCTAssertFalse(StoreInspector.exists(fixture.profilePath("pending")), "seed \(seed): pending/ left behind")
        XCTAssertEqual(state?.failures, 0, "seed \(seed)")
    }
}

// MARK: - Shared fixture for the fault, crash and concurrency tests

/// A real micromdm scepserver, a state directory, a 0600 challenge file and a
/// software-key profile, plus the real `enroll-agent` binary run with a config
/// file at a fixed path (so background runs and later runs share it).
final class AgentStoreFixture {
    let server: SCEPServerProcess
    let directory: TemporaryDirectory
    let stateDirectory: String
    let challengePath: String
    /// `config.toml`, written from `profile`.
    let configPath: String
    private(set) var profile: AgentTestProfile
    private var outputCounter = 0

    /// - Parameter configure: changes to the default software-key profile.
    init(serverOptions: SCEPServerProcess.Options = .init(),
         configure: (inout AgentTestProfile) -> Void = { _ in }) throws {
        server = try PeerSkip.unlessCI { try SCEPServerProcess.start(options: serverOptions) }
        directory = try TemporaryDirectory(prefix: "agent-faults")
        stateDirectory = directory.appending("state")
        challengePath = directory.appending("challenge")
        configPath = directory.appending("config.toml")
        try AgentTestFiles.writeSecret(server.challenge, to: challengePath)
        profile = AgentTestProfile(scepURL: server.urlString, caPinFile: server.caCertificatePath, challengeFile: challengePath)
        configure(&profile)
        try AgentTestFiles.writeSecret(profile.configText(stateDirectory: stateDirectory), to: configPath)
    }

    deinit {
        server.stop()
        directory.remove()
    }

    /// `<state>/<profile>`.
    var profileDirectory: String { stateDirectory + "/" + profile.name }
    /// `<state>/<profile>/<relative>`.
    func profilePath(_ relative: String) -> String { profileDirectory + "/" + relative }
    /// `<state>/<profile>/live/<name>`.
    func livePath(_ name: String) -> String { profilePath("live/" + name) }

    /// Writes another config (same state directory) with `change` applied to the
    /// profile; returns its path. `config.toml` itself is not touched.
    @discardableResult
    func writeConfig(named name: String, _ change: (inout AgentTestProfile) -> Void) throws -> String {
        var changed = profile
        change(&changed)
        let path = directory.appending(name)
        try AgentTestFiles.writeSecret(changed.configText(stateDirectory: stateDirectory), to: path)
        return path
    }

    /// Writes a config whose text is `edit` applied to the profile's rendered TOML.
    @discardableResult
    func writeConfig(named name: String, editingText edit: (String) -> String) throws -> String {
        let path = directory.appending(name)
        try AgentTestFiles.writeSecret(edit(profile.configText(stateDirectory: stateDirectory)), to: path)
        return path
    }

    /// Polls `condition` every 20 ms until it holds or `timeout` passes.
    static func waitUntil(timeout: TimeInterval, _ condition: () -> Bool) -> Bool {
        let deadline = Date(timeIntervalSinceNow: timeout)
        while Date() < deadline {
            if condition() { return true }
            usleep(20_000)
        }
        return condition()
    }

    /// Runs `enroll-agent <arguments> --config <configPath>` to completion.
    func run(_ arguments: [String], configPath: String? = nil, timeout: TimeInterval = 90) throws -> AgentRun {
        let fullArguments = arguments + ["--config", configPath ?? self.configPath]
        let result = try ChildProcess.run(executable: try AgentProcess.locateBinary(), arguments: fullArguments, timeout: timeout)
        return AgentRun(arguments: fullArguments, result: result)
    }

    /// Starts `enroll-agent <arguments> --config <configPath>` in the background;
    /// stdout and stderr go to fresh files in the fixture directory.
    func start(_ arguments: [String], configPath: String? = nil) throws -> ChildProcess {
        outputCounter += 1
        return try ChildProcess(
            executable: try AgentProcess.locateBinary(), arguments: arguments + ["--config", configPath ?? self.configPath],
            outputPath: directory.appending("run-\(outputCounter).out"), errorPath: directory.appending("run-\(outputCounter).err"))
    }
}

/// The peer-missing rule: skip outside CI, fail (the error propagates) when `CI=true`.
enum PeerSkip {
    static func unlessCI<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let missing as PeerUnavailable where missing.maySkip {
            throw XCTSkip(missing.description)
        }
    }
}

/// What a reader sees of the live generation, byte for byte.
struct StoreSnapshot: Equatable {
    let liveTarget: String
    let certificate: Data
    let chain: Data
    let key: Data

    init(profileDirectory: String) throws {
        liveTarget = try StoreInspector.readLink(profileDirectory + "/live")
        func read(_ name: String) throws -> Data {
            guard let data = FileManager.default.contents(atPath: profileDirectory + "/live/" + name) else {
                throw AgentProcessError("cannot read live/\(name) in \(profileDirectory)")
            }
            return data
        }
        certificate = try read("cert.pem")
        chain = try read("chain.pem")
        key = try read("key.pem")
    }
}

/// Checks a profile directory the way an outside reader (nginx, curl) would rely on it.
enum StoreInspector {
    /// Everything wrong with the store as readers see it; empty when consistent:
    /// `live` resolves to a numbered generation with all four files, cert and key
    /// belong together (software keys), the certificate verifies against the CA,
    /// fullchain = cert + chain, key 0600, `previous` (if any) is a complete
    /// generation, state.json (if any) decodes.
    static func problems(in profileDirectory: String, caPath: String, softwareKey: Bool = true) -> [String] {
        var problems: [String] = []
        let live = profileDirectory + "/live"
        problems += generationProblems(link: live, required: true)
        guard problems.isEmpty else { return problems }

        if softwareKey {
            let certificateKey = openssl(["x509", "-in", live + "/cert.pem", "-noout", "-pubkey"])
            let privateKeysPublic = openssl(["pkey", "-in", live + "/key.pem", "-pubout"])
            if certificateKey.output.isEmpty || certificateKey.output != privateKeysPublic.output {
                problems.append("live/key.pem is not the key of live/cert.pem: \(certificateKey.error)\(privateKeysPublic.error)")
            }
        }
        let verify = openssl(["verify", "-CAfile", caPath, live + "/cert.pem"])
        if !verify.output.contains(": OK") {
            problems.append("live/cert.pem does not verify against the CA: \(verify.output)\(verify.error)")
        }
        let cert = FileManager.default.contents(atPath: live + "/cert.pem") ?? Data()
        let chain = FileManager.default.contents(atPath: live + "/chain.pem") ?? Data()
        if FileManager.default.contents(atPath: live + "/fullchain.pem") != cert + chain {
            problems.append("live/fullchain.pem is not cert.pem + chain.pem")
        }
        var info = stat()
        if stat(live + "/key.pem", &info) != 0 || info.st_mode & 0o777 != 0o600 {
            problems.append("live/key.pem is not mode 0600 (\(String(info.st_mode & 0o777, radix: 8)))")
        }
        if exists(profileDirectory + "/previous") {
            problems += generationProblems(link: profileDirectory + "/previous", required: true)
        }
        do { _ = try state(in: profileDirectory) } catch { problems.append("\(error)") }
        return problems
    }

    /// `link` must be a symlink to `generations/<digits>` holding the four files.
    private static func generationProblems(link: String, required: Bool) -> [String] {
        let name = (link as NSString).lastPathComponent
        guard let target = try? readLink(link) else { return ["\(name) is not a symlink"] }
        let digits = target.hasPrefix("generations/") ? String(target.dropFirst("generations/".count)) : ""
        guard !digits.isEmpty, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber) else {
            return ["\(name) points to \(target), not to a numbered generation (a staging directory must never be visible)"]
        }
        let directory = (link as NSString).deletingLastPathComponent + "/" + target
        return ["cert.pem", "chain.pem", "fullchain.pem", "key.pem"].compactMap { file in
            var info = stat()
            guard stat(directory + "/" + file, &info) == 0, info.st_mode & S_IFMT == S_IFREG, info.st_size > 0 else {
                return "\(name) → \(target) lacks a non-empty \(file)"
            }
            return nil
        }
    }

    /// state.json decoded with the store's own decoder; nil when there is none.
    static func state(in profileDirectory: String) throws -> ProfileState? {
        guard let data = FileManager.default.contents(atPath: profileDirectory + "/state.json") else { return nil }
        do {
            return try StateFileCoding.decode(Array(data))
        } catch {
            throw AgentProcessError("state.json does not decode: \(error)")
        }
    }

    /// Staging directories, temp files and incomplete generations a finished run must not leave.
    static func leftovers(in profileDirectory: String) -> [String] {
        let fileManager = FileManager.default
        var found: [String] = []
        for folder in ["", "generations", "pending"] {
            let path = folder.isEmpty ? profileDirectory : profileDirectory + "/" + folder
            for name in (try? fileManager.contentsOfDirectory(atPath: path)) ?? [] {
                if name.hasPrefix(".staging-") || name.contains(".tmp-") { found.append(folder + "/" + name) }
            }
        }
        let live = try? readLink(profileDirectory + "/live")
        let previous = try? readLink(profileDirectory + "/previous")
        for name in (try? fileManager.contentsOfDirectory(atPath: profileDirectory + "/generations")) ?? []
        where !name.hasPrefix(".") && "generations/\(name)" != live && "generations/\(name)" != previous {
            found.append("generations/\(name) (neither live nor previous)")
        }
        return found
    }

    static func readLink(_ path: String) throws -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink(path, &buffer, buffer.count - 1)
        guard count >= 0 else { throw AgentProcessError("\(path) is not a symlink (errno \(errno))") }
        return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Whether anything (a dangling symlink included) is at `path`.
    static func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    /// Whether another open file description holds an exclusive flock on `path`.
    static func isLocked(_ path: String) -> Bool {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        if flock(fd, LOCK_EX | LOCK_NB) == 0 {
            flock(fd, LOCK_UN)
            return false
        }
        return errno == EWOULDBLOCK
    }

    static func openssl(_ arguments: [String]) -> (output: String, error: String) {
        guard let result = try? ChildProcess.run(executable: "openssl", arguments: arguments, timeout: 30) else {
            return ("", "openssl \(arguments.first ?? "") could not run")
        }
        return (result.output, result.errorOutput)
    }
}

/// SplitMix64: a seeded generator, so a failing kill sequence can be replayed.
struct KillScheduleGenerator: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
