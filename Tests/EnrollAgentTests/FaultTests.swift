import EnrollmentPlan
import Foundation
import SwiftASN1
import KeyInterface
import TPMKeys
import TestSupport
import X509
import XCTest

@testable import SCEPClient

/// The real binary under faults: every test first enrolls against the real
/// scepserver, then breaks one thing and runs `renew --force`. Each must end
/// with the documented exit code, a message that names what broke, and the
/// installed certificate untouched.
final class FaultTests: XCTestCase {
    private var fixture: AgentStoreFixture!

    override func tearDown() {
        fixture = nil
    }

    /// Starts the fixture and enrolls; returns what `live` looked like.
    @discardableResult
    private func enrolled(configure: (inout AgentTestProfile) -> Void = { _ in }) throws -> StoreSnapshot {
        fixture = try AgentStoreFixture(configure: configure)
        let enroll = try fixture.run(["enroll"])
        // A failed precondition fails the test (never a skip: CI must see it).
        guard enroll.exitCode == 0 else { throw AgentProcessError("the enrollment before the fault failed:\n\(enroll.transcript)") }
        return try StoreSnapshot(profileDirectory: fixture.profileDirectory)
    }

    /// The last `error:` line of stderr.
    private func errorLine(_ run: AgentRun) -> String {
        run.standardError.split(separator: "\n").last { $0.hasPrefix("error:") }.map(String.init) ?? ""
    }

    private func assertLiveIntact(_ before: StoreSnapshot, softwareKey: Bool = true, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(try StoreSnapshot(profileDirectory: fixture.profileDirectory), before,
                       "the installed generation changed", file: file, line: line)
        XCTAssertEqual(StoreInspector.problems(in: fixture.profileDirectory, caPath: fixture.server.caCertificatePath,
                                               softwareKey: softwareKey), [], file: file, line: line)
    }

    /// The next normal run must succeed again (resuming or abandoning whatever the fault left).
    private func assertRecovers(file: StaticString = #filePath, line: UInt = #line) throws {
        let recovery = try fixture.run(["renew", "--force"])
        XCTAssertEqual(recovery.exitCode, 0, "the run after the fault did not recover:\n\(recovery.transcript)", file: file, line: line)
        XCTAssertEqual(StoreInspector.problems(in: fixture.profileDirectory, caPath: fixture.server.caCertificatePath), [],
                       file: file, line: line)
    }

    // MARK: - Network

    func testServerDownExits69NamingTheURL() throws {
        let before = try enrolled()
        let closedURL = "http://127.0.0.1:\(try SCEPServerProcess.freeLoopbackPort())/scep"
        let config = try fixture.writeConfig(named: "down.toml") { $0.scepURL = closedURL }

        let run = try fixture.run(["renew", "--force"], configPath: config)
        XCTAssertEqual(run.exitCode, 69, run.transcript)
        XCTAssertTrue(errorLine(run).contains(closedURL), "the error does not name the URL:\n\(run.transcript)")
        XCTAssertLessThan(run.result.duration, 20, "bounded retries took too long")
        assertLiveIntact(before)
        XCTAssertEqual(try StoreInspector.state(in: fixture.profileDirectory)?.failures, 1)
        XCTAssertTrue(try StoreInspector.state(in: fixture.profileDirectory)?.lastError?.contains(closedURL) ?? false)
    }

    /// The reply to the request breaks off after the request was sent. The same run
    /// polls the transaction (micromdm answers every CertPoll with HTTP 500: it does not
    /// implement CertPoll), then sends the same request once more, and succeeds.
    func testAConnectionResetAfterTheRequestWasSentIsRecoveredInTheSameRun() throws {
        let before = try enrolled()
        let first = FirstTime()
        let proxy = try SCEPFaultProxy(upstream: fixture.server) { forward in
            first.claim() ? try forward().resettingMidBody() : try forward()
        }
        defer { proxy.stop() }
        let config = try fixture.writeConfig(named: "reset.toml") { $0.scepURL = proxy.url }

        let run = try fixture.run(["renew", "--force"], configPath: config)
        XCTAssertEqual(run.exitCode, 0, run.transcript)
        XCTAssertEqual(proxy.pkiOperationCount, 3, "RenewalReq (cut off), CertPoll (HTTP 500), the same RenewalReq again:\n\(run.transcript)")
        XCTAssertTrue(run.standardError.contains("sending the same request again"), run.transcript)
        XCTAssertNotEqual(try StoreSnapshot(profileDirectory: fixture.profileDirectory), before, "no new certificate")
        XCTAssertEqual(StoreInspector.problems(in: fixture.profileDirectory, caPath: fixture.server.caCertificatePath), [])
        XCTAssertNil(try StoreInspector.state(in: fixture.profileDirectory)?.phase.transaction)
    }

    func testServerHangingPastTheTimeoutExits69InBoundedTime() throws {
        let before = try enrolled { $0.extraLines.append("http_timeout = \"2s\"") }
        let proxy = try SCEPFaultProxy(upstream: fixture.server) { _ in .hang }
        defer { proxy.stop() }
        let config = try fixture.writeConfig(named: "hang.toml") { $0.scepURL = proxy.url }

        let run = try fixture.run(["renew", "--force"], configPath: config)
        XCTAssertEqual(run.exitCode, 69, run.transcript)
        XCTAssertTrue(errorLine(run).contains(proxy.url), run.transcript)
        XCTAssertTrue(errorLine(run).lowercased().contains("time"), "the error does not say it timed out:\n\(run.transcript)")
        // The request, then one CertPoll for it (the answer may just have been lost); both
        // time out, and the transaction stays on file as submitted.
        XCTAssertGreaterThanOrEqual(run.result.duration, 4)
        XCTAssertLessThan(run.result.duration, 12, "the timeout did not bound the run:\n\(run.transcript)")
        XCTAssertEqual(proxy.pkiOperationCount, 2)
        XCTAssertEqual(try StoreInspector.state(in: fixture.profileDirectory)?.phase.name, "submitted")
        assertLiveIntact(before)
    }

    func testServerErrorsAreRetriedBoundedlyThenExit69() throws {
        let before = try enrolled()
        let proxy = try SCEPFaultProxy(upstream: fixture.server) { _ in .text("upstream CA is down\n", status: 503) }
        defer { proxy.stop() }
        let config = try fixture.writeConfig(named: "5xx.toml") { $0.scepURL = proxy.url }

        let run = try fixture.run(["renew", "--force"], configPath: config)
        XCTAssertEqual(run.exitCode, 69, run.transcript)
        XCTAssertTrue(errorLine(run).contains("HTTP 503"), run.transcript)
        XCTAssertTrue(errorLine(run).contains(proxy.url), run.transcript)
        // The request three times (503 means it was not acted on), then one CertPoll for it,
        // three times too: the transaction stays on file for the next run.
        XCTAssertEqual(proxy.pkiOperationCount, 6, "5xx must be retried, and only a bounded number of times")
        XCTAssertLessThan(run.result.duration, 20)
        assertLiveIntact(before)
        try assertRecovers()
    }

    func testManagementEndpointDownExits76() throws {
        let before = try enrolled()
        let tokenPath = fixture.directory.appending("token")
        try AgentTestFiles.writeSecret("device-token-123\n", to: tokenPath)
        let endpoint = "http://127.0.0.1:\(try SCEPServerProcess.freeLoopbackPort())/v1/scep/challenge"
        let config = try fixture.writeConfig(named: "endpoint.toml") { text in
            text.replacingOccurrences(
                of: "source = \"file\"\nfile = \"\(fixture.challengePath)\"",
                with: "source = \"endpoint\"\nurl = \"\(endpoint)\"\ntoken_file = \"\(tokenPath)\"")
        }
        XCTAssertTrue(try String(contentsOfFile: config, encoding: .utf8).contains(endpoint), "the config edit did not apply")

        let run = try fixture.run(["renew", "--force"], configPath: config)
        XCTAssertEqual(run.exitCode, 76, run.transcript)
        XCTAssertTrue(errorLine(run).contains("127.0.0.1"), "the error does not name the endpoint:\n\(run.transcript)")
        run.assertDoesNotLeak("device-token-123", "the bearer token")
        assertLiveIntact(before)
    }

    // MARK: - Store

    /// A read-only bind mount of the profile directory (EROFS), made in a private
    /// mount namespace around the agent only.
    func testReadOnlyStateDirectoryExits73NamingThePath() throws {
        let before = try enrolled()
        try requireRoot("a read-only bind mount")
        let profile = fixture.profileDirectory
        let run = try fixture.runInMountNamespace(
            setUp: "mount --bind \"$P\" \"$P\" && mount -o remount,bind,ro \"$P\" \"$P\"", variables: ["P": profile],
            arguments: ["renew", "--force"])
        XCTAssertEqual(run.exitCode, 73, run.transcript)
        XCTAssertTrue(errorLine(run).contains(profile), "the error does not name the path:\n\(run.transcript)")
        assertLiveIntact(before)
    }

    /// `chattr +i` on the profile directory (EPERM on create/rename inside it).
    func testImmutableProfileDirectoryExits73NamingThePath() throws {
        let before = try enrolled()
        try requireRoot("chattr +i")
        let chattr = try PeerSkip.unlessCI { try PeerRequirement.require(binary: "chattr") }
        let profile = fixture.profileDirectory
        let set = try ChildProcess.run(executable: chattr, arguments: ["+i", profile], timeout: 10)
        guard set.status.isSuccess else {
            if PeerRequirement.isCI { return XCTFail("chattr +i failed: \(set.errorOutput)") }
            throw XCTSkip("chattr +i is not supported here: \(set.errorOutput)")
        }
        defer { _ = try? ChildProcess.run(executable: chattr, arguments: ["-i", profile], timeout: 10) }

        let run = try fixture.run(["renew", "--force"])
        XCTAssertEqual(run.exitCode, 73, run.transcript)
        XCTAssertTrue(errorLine(run).contains(profile), "the error does not name the path:\n\(run.transcript)")
        assertLiveIntact(before)
        _ = try ChildProcess.run(executable: chattr, arguments: ["-i", profile], timeout: 10)
        try assertRecovers()
    }

    /// The state directory on a tiny tmpfs that is then filled up, all inside a
    /// private mount namespace: enroll, fill, `renew --force` → 73, live intact.
    func testFullDiskExits73AndKeepsLive() throws {
        try fullDiskScenario(freeKiB: 0)
    }

    /// Room for the pending key but not for a whole generation: the request goes
    /// out, the certificate comes back, and the install runs out of space.
    func testDiskFillingUpDuringInstallExits73AndKeepsLive() throws {
        try fullDiskScenario(freeKiB: 12)
    }

    private func fullDiskScenario(freeKiB: Int) throws {
        fixture = try AgentStoreFixture()
        try requireRoot("a tmpfs mount")
        let output = fixture.directory.appending("tmpfs-out")
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: fixture.stateDirectory, withIntermediateDirectories: true)
        // Enroll, fill, free `freeKiB`, renew; copy the store out before the namespace (and tmpfs) goes.
        let script = """
            mount -t tmpfs -o size=256k,mode=0755 tmpfs "$STATE" || exit 90
            "$AGENT" enroll --config "$CONFIG" 2>"$OUT/enroll.err"; echo $? >"$OUT/enroll.rc"
            cp -a "$STATE/device" "$OUT/before"
            dd if=/dev/zero of="$STATE/filler" bs=4096 2>/dev/null
            if [ "$FREE_KIB" -gt 0 ]; then
                truncate -s "-${FREE_KIB}K" "$STATE/filler"
            fi
            df -k "$STATE" >"$OUT/df"
            "$AGENT" renew --force --config "$CONFIG" >"$OUT/renew.out" 2>"$OUT/renew.err"; echo $? >"$OUT/renew.rc"
            cp -a "$STATE/device" "$OUT/after"
            """
        let result = try ChildProcess.run(
            executable: try PeerSkip.unlessCI { try PeerRequirement.require(binary: "unshare") },
            arguments: ["-m", "--propagation", "private", "/bin/sh", "-c", script],
            extraEnvironment: ["STATE": fixture.stateDirectory, "AGENT": try AgentProcess.locateBinary(),
                               "CONFIG": fixture.configPath, "OUT": output, "FREE_KIB": String(freeKiB)],
            timeout: 120)
        guard result.status != .exited(90) else {
            if PeerRequirement.isCI { return XCTFail("cannot mount a tmpfs: \(result.errorOutput)") }
            throw XCTSkip("cannot mount a tmpfs here: \(result.errorOutput)")
        }
        func read(_ name: String) -> String {
            (try? String(contentsOfFile: output + "/" + name, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        }
        XCTAssertEqual(read("enroll.rc"), "0", "enroll on the tmpfs failed: \(read("enroll.err")) \(result.errorOutput)")
        let transcript = "df:\n\(read("df"))\nrenew stderr:\n\(read("renew.err"))"
        XCTAssertEqual(read("renew.rc"), "73", transcript)
        let error = read("renew.err").split(separator: "\n").last { $0.hasPrefix("error:") } ?? ""
        XCTAssertTrue(error.contains(fixture.stateDirectory), "the error does not name the path: \(transcript)")
        XCTAssertTrue(error.lowercased().contains("space"), "the error does not say the disk is full: \(transcript)")

        let before = try StoreSnapshot(profileDirectory: output + "/before")
        XCTAssertEqual(try StoreSnapshot(profileDirectory: output + "/after"), before, "live changed: \(transcript)")
        XCTAssertEqual(StoreInspector.problems(in: output + "/after", caPath: fixture.server.caCertificatePath), [], transcript)
    }

    // MARK: - TPM

    /// swtpm goes away after the request was signed with TPM keys and before the
    /// reply is decrypted with one: exit 71 naming the TCTI, no crash, live intact.
    func testTPMDisappearingMidEnrollmentExits71NamingTheTCTI() throws {
        let tpm = try PeerSkip.unlessCI { try SwtpmProcess.start() }
        defer { tpm.stop() }
        let before = try enrolled { $0.keyStorage = "tpm"; $0.tcti = tpm.tcti }
        XCTAssertTrue(before.key.starts(with: Data("-----BEGIN TSS2 PRIVATE KEY-----".utf8)))

        let proxy = try SCEPFaultProxy(upstream: fixture.server) { forward in
            tpm.stop()  // the request is signed; the reply still has to be decrypted
            return try forward()
        }
        defer { proxy.stop() }
        let config = try fixture.writeConfig(named: "tpm-gone.toml") { $0.scepURL = proxy.url }

        let run = try fixture.run(["renew", "--force"], configPath: config, timeout: 120)
        XCTAssertEqual(proxy.pkiOperationCount, 1, "the fault was not injected at the PKIOperation:\n\(run.transcript)")
        XCTAssertEqual(run.exitCode, 71, run.transcript)
        XCTAssertTrue(errorLine(run).contains(tpm.tcti), "the error does not name the TCTI:\n\(run.transcript)")
        assertLiveIntact(before, softwareKey: false)
    }

    // MARK: - CA answers

    /// FAILURE with each failInfo: exit 77, the failInfo named, nothing installed
    /// over the live certificate, the transaction not left pending.
    func testEveryFailInfoExits77NamingIt() throws {
        let before = try enrolled()
        for failInfo in FailInfo.allCases {
            let server = try StatusOnlySCEPServer(directory: fixture.directory, status: .failure(failInfo, text: "policy says no"))
            defer { server.stop() }
            let config = try fixture.writeConfig(named: "fail-\(failInfo.name).toml") {
                $0.scepURL = server.url
                $0.caPinFile = server.caPath
            }
            let run = try fixture.run(["renew", "--force"], configPath: config)
            XCTAssertEqual(run.exitCode, 77, "\(failInfo.name):\n\(run.transcript)")
            XCTAssertTrue(errorLine(run).contains("failInfo \(failInfo.name)"), "\(failInfo.name):\n\(run.transcript)")
            XCTAssertTrue(errorLine(run).contains("policy says no"), run.transcript)
            XCTAssertEqual(server.pkiOperationCount, 1, "\(failInfo.name): a refusal must not be retried")
            assertLiveIntact(before)
            XCTAssertNil(try StoreInspector.state(in: fixture.profileDirectory)?.phase.transaction, "\(failInfo.name): left pending")
            XCTAssertFalse(StoreInspector.exists(fixture.profilePath("pending")), "\(failInfo.name): pending key left behind")
        }
    }

    /// A CA that answers PENDING forever: polling stops at `poll_max_wait` with
    /// exit 75, the transaction stays on file, and the next run resumes it with
    /// CertPoll instead of spending another challenge.
    func testPendingForeverIsBoundedByPollMaxWaitAndResumed() throws {
        let before = try enrolled()
        let server = try StatusOnlySCEPServer(directory: fixture.directory, status: .pending)
        defer { server.stop() }
        let config = try fixture.writeConfig(named: "pending.toml") {
            $0.scepURL = server.url
            $0.caPinFile = server.caPath
            $0.extraLines += ["poll_max_wait = \"3s\"", "poll_initial_interval = \"1s\""]
        }

        let first = try fixture.run(["renew", "--force"], configPath: config)
        XCTAssertEqual(first.exitCode, 75, first.transcript)
        XCTAssertTrue(errorLine(first).contains("PENDING"), first.transcript)
        XCTAssertLessThan(first.result.duration, 10, "poll_max_wait = 3s did not bound the run")
        let pending = try XCTUnwrap(try StoreInspector.state(in: fixture.profileDirectory)?.phase.transaction, "the transaction was not kept")
        XCTAssertTrue(StoreInspector.exists(fixture.profilePath("pending/key.pem")))
        assertLiveIntact(before)
        let firstTypes = server.messageTypes
        XCTAssertEqual(firstTypes.first, MessageType.renewalReq.rawValue, "\(firstTypes)")
        XCTAssertGreaterThanOrEqual(firstTypes.count, 2, "no CertPoll was sent: \(firstTypes)")
        XCTAssertTrue(firstTypes.dropFirst().allSatisfy { $0 == MessageType.certPoll.rawValue }, "\(firstTypes)")

        let second = try fixture.run(["renew"], configPath: config)
        XCTAssertEqual(second.exitCode, 75, second.transcript)
        XCTAssertTrue(second.standardError.contains("polling the CA for the request on file"), second.transcript)
        let resumed = server.messageTypes.dropFirst(firstTypes.count)
        XCTAssertFalse(resumed.isEmpty, "the second run sent nothing")
        XCTAssertTrue(resumed.allSatisfy { $0 == MessageType.certPoll.rawValue }, "the second run did not resume: \(Array(resumed))")
        XCTAssertEqual(Set(server.transactionIDs), [pending.transactionID], "every message must carry the one transactionID")
        assertLiveIntact(before)
    }

    // MARK: - Helpers

    private func requireRoot(_ what: String) throws {
        guard geteuid() == 0 else {
            if PeerRequirement.isCI { throw AgentProcessError("\(what) needs root, and CI=true requires this test to run") }
            throw XCTSkip("\(what) needs root; skipped outside CI")
        }
    }
}

extension AgentStoreFixture {
    /// Runs `enroll-agent <arguments>` inside `unshare -m` after the shell
    /// commands `setUp` (exit 90 from setUp means the mount could not be made).
    func runInMountNamespace(setUp: String, variables: [String: String], arguments: [String]) throws -> AgentRun {
        let script = "\(setUp) || exit 90\nexec \"$AGENT\" \"$@\""
        let fullArguments = ["-m", "--propagation", "private", "/bin/sh", "-c", script, "sh"] + arguments + ["--config", configPath]
        let result = try ChildProcess.run(
            executable: try PeerSkip.unlessCI { try PeerRequirement.require(binary: "unshare") }, arguments: fullArguments,
            extraEnvironment: variables.merging(["AGENT": try AgentProcess.locateBinary()]) { _, new in new }, timeout: 90)
        if result.status == .exited(90) {
            if PeerRequirement.isCI { throw AgentProcessError("the mount namespace setup failed: \(result.errorOutput)") }
            throw XCTSkip("cannot make mounts here: \(result.errorOutput)")
        }
        return AgentRun(arguments: arguments, result: result)
    }
}

// MARK: - A proxy in front of scepserver

/// A loopback HTTP server that forwards every request to a real scepserver,
/// except that each PKIOperation goes through `pkiOperation`, which may forward
/// it (the closure it gets), replace the answer, or break the connection.
final class SCEPFaultProxy: @unchecked Sendable {
    typealias Forward = () throws -> TestHTTPResponse
    private let http: TestHTTPServer
    private let counter: Counter

    /// The SCEP URL to configure: "http://127.0.0.1:PORT/scep".
    var url: String { http.urlString + "/scep" }

    /// How many PKIOperations arrived.
    var pkiOperationCount: Int { counter.value }

    init(upstream: SCEPServerProcess, pkiOperation: @escaping @Sendable (Forward) throws -> TestHTTPResponse) throws {
        let port = upstream.port
        let counter = Counter()
        self.counter = counter
        http = try TestHTTPServer { request in
            let forward: Forward = {
                var headers: TestHTTPHeaders = [:]
                if let type = request.headers["Content-Type"] { headers.add(name: "Content-Type", value: type) }
                let reply = try TestHTTPClient.send(method: request.method, port: port, target: request.target,
                                                    headers: headers, body: request.body, timeout: 30)
                var replyHeaders: TestHTTPHeaders = [:]
                if let type = reply.headers["Content-Type"] { replyHeaders.add(name: "Content-Type", value: type) }
                return TestHTTPResponse(status: reply.status, headers: replyHeaders, body: reply.body)
            }
            do {
                guard request.query("operation") == "PKIOperation" else { return try forward() }
                counter.increment()
                return try pkiOperation(forward)
            } catch {
                return .text("proxy failure: \(error)\n", status: 502)
            }
        }
    }

    func stop() { http.stop() }
    deinit { http.stop() }

    private final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var count = 0
        var value: Int { lock.lock(); defer { lock.unlock() }; return count }
        func increment() { lock.lock(); count += 1; lock.unlock() }
    }
}

/// True the first time only (thread-safe): "break the first PKIOperation".
final class FirstTime: @unchecked Sendable {
    private let lock = NSLock()
    private var claimed = false
    func claim() -> Bool {
        lock.lock(); defer { lock.unlock() }
        defer { claimed = true }
        return !claimed
    }
}

// MARK: - A CA that only ever says PENDING or FAILURE

/// A minimal SCEP server with its own CA: GetCACaps, GetCACert, and a CertRep
/// with a fixed pkiStatus (PENDING, or FAILURE with a failInfo) for every
/// PKIOperation — built with the client's own CMS types, signed by the CA.
/// It reads only the signed attributes of requests (transactionID,
/// senderNonce, messageType); it never decrypts them.
final class StatusOnlySCEPServer: @unchecked Sendable {
    enum Status: Sendable {
        case pending
        case failure(FailInfo, text: String?)
    }

    private let http: TestHTTPServer
    private let log: RequestLog
    /// The CA certificate (PEM) to pin.
    let caPath: String

    /// "http://127.0.0.1:PORT/scep".
    var url: String { http.urlString + "/scep" }
    var pkiOperationCount: Int { log.entries.count }
    /// messageType of every PKIOperation ("17" RenewalReq, "19" PKCSReq, "20" CertPoll).
    var messageTypes: [String] { log.entries.map(\.messageType) }
    var transactionIDs: [String] { log.entries.map(\.transactionID) }

    init(directory: TemporaryDirectory, status: Status) throws {
        let ca = try StatusOnlyCA.shared.get()
        caPath = directory.appending("status-ca-\(UUID().uuidString).pem")
        try Data(try ca.certificate.serializeAsPEM().pemString.utf8).write(to: URL(fileURLWithPath: caPath))
        let log = RequestLog()
        self.log = log
        let caDER = try SCEPEnrollment.der(ca.certificate)
        http = try TestHTTPServer { request in
            switch request.query("operation") {
            case "GetCACaps":
                return .text("POSTPKIOperation\nSHA-256\nAES\nSCEPStandard\nRenewal\n")
            case "GetCACert":
                return .ok(caDER, contentType: "application/x-x509-ca-cert")
            case "PKIOperation":
                do {
                    let received = try ReceivedAttributes(request.method == "POST" ? request.body : Self.getMessage(request))
                    log.append(received)
                    return .ok(try ca.certRep(status, answering: received), contentType: "application/x-pki-message")
                } catch {
                    return .text("cannot read the pkiMessage: \(error)\n", status: 400)
                }
            default:
                return .text("unknown operation\n", status: 400)
            }
        }
    }

    func stop() { http.stop() }
    deinit { http.stop() }

    private static func getMessage(_ request: TestHTTPRequest) throws -> [UInt8] {
        guard let text = request.query("message"), let data = Data(base64Encoded: text) else {
            throw AgentProcessError("GET PKIOperation without a base64 message")
        }
        return Array(data)
    }

    /// The signed attributes of a request that a CertRep must echo.
    struct ReceivedAttributes: Sendable {
        let transactionID: String
        let senderNonce: [UInt8]
        let messageType: String

        init(_ message: [UInt8]) throws {
            let contentInfo = try ContentInfo(derEncoded: message)
            let signedData = try SignedData(derEncoded: CACertificates.bytes(of: contentInfo.content))
            guard let attributes = signedData.signerInfos.first?.signedAttributes,
                  let id = try attributes.singleValue(OID.scepTransactionID),
                  let nonce = try attributes.singleValue(OID.scepSenderNonce),
                  let type = try attributes.singleValue(OID.scepMessageType) else {
                throw AgentProcessError("the request lacks transactionID, senderNonce or messageType")
            }
            transactionID = String(try ASN1PrintableString(asn1Any: id))
            senderNonce = Array(try ASN1OctetString(asn1Any: nonce).bytes)
            messageType = String(try ASN1PrintableString(asn1Any: type))
        }
    }

    private final class RequestLog: @unchecked Sendable {
        private let lock = NSLock()
        private var received: [ReceivedAttributes] = []
        var entries: [ReceivedAttributes] { lock.lock(); defer { lock.unlock() }; return received }
        func append(_ entry: ReceivedAttributes) { lock.lock(); received.append(entry); lock.unlock() }
    }
}

/// The self-signed CA of `StatusOnlySCEPServer`, made once per test process
/// (RSA key generation is slow).
private struct StatusOnlyCA: Sendable {
    let certificate: Certificate
    let key: SoftwareKey

    static let shared = Result { try StatusOnlyCA() }

    init() throws {
        key = try SoftwareKey.generate(KeySpec(rsaBits: 2048))
        let name = try DistinguishedName {
            OrganizationName("enroll-agent fault tests")
            CommonName("Status-only SCEP CA")
        }
        var extensions = Certificate.Extensions()
        try extensions.append(Certificate.Extension(BasicConstraints.isCertificateAuthority(maxPathLength: nil), critical: true))
        try extensions.append(Certificate.Extension(
            KeyUsage(digitalSignature: true, keyEncipherment: true, keyCertSign: true, cRLSign: true), critical: true))
        let signer = try EnrollmentKeySigner(key)
        let now = Date()
        certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: signer.publicKey,
            notValidBefore: now.addingTimeInterval(-3600), notValidAfter: now.addingTimeInterval(86_400),
            issuer: name, subject: name, signatureAlgorithm: .sha256WithRSAEncryption,
            extensions: extensions, issuerPrivateKey: Certificate.PrivateKey(signer))
    }

    /// A CertRep (RFC 8894 §3.3.2) without content: pkiStatus PENDING or FAILURE.
    func certRep(_ status: StatusOnlySCEPServer.Status, answering request: StatusOnlySCEPServer.ReceivedAttributes) throws -> [UInt8] {
        func printable(_ oid: ASN1ObjectIdentifier, _ text: String) throws -> CMSAttribute {
            CMSAttribute(type: oid, values: [try ASN1Any(erasing: ASN1PrintableString(text))])
        }
        func octets(_ oid: ASN1ObjectIdentifier, _ bytes: [UInt8]) throws -> CMSAttribute {
            CMSAttribute(type: oid, values: [try ASN1Any(erasing: ASN1OctetString(contentBytes: bytes[...]))])
        }
        var attributes: [CMSAttribute] = [
            CMSAttribute(type: OID.contentType, values: [try ASN1Any(erasing: OID.data)]),
            try octets(OID.messageDigest, try CryptoPrimitives.digest(.sha256, [])),
            try printable(OID.scepMessageType, MessageType.certRep.rawValue),
            try printable(OID.scepTransactionID, request.transactionID),
            try octets(OID.scepRecipientNonce, request.senderNonce),
            try octets(OID.scepSenderNonce, try CryptoPrimitives.randomBytes(16)),
        ]
        switch status {
        case .pending:
            attributes.append(try printable(OID.scepPKIStatus, PKIStatus.pending.rawValue))
        case .failure(let failInfo, let text):
            attributes.append(try printable(OID.scepPKIStatus, PKIStatus.failure.rawValue))
            attributes.append(try printable(OID.scepFailInfo, failInfo.rawValue))
            if let text {
                attributes.append(CMSAttribute(type: OID.scepFailInfoText, values: [try ASN1Any(erasing: ASN1UTF8String(text))]))
            }
        }
        let signedBytes = try SignerInfo.signedBytes(of: attributes)
        let signature = try key.sign(digest: try CryptoPrimitives.digest(.sha256, signedBytes), algorithm: .sha256)
        let signerInfo = try SignerInfo(
            version: 1,
            signerIdentifier: .issuerAndSerialNumber(try IssuerAndSerialNumber(certificate: certificate)),
            digestAlgorithm: AlgorithmIdentifier(algorithm: DigestAlgorithm.sha256.objectIdentifier),
            signedAttributes: attributes,
            signatureAlgorithm: .withNullParameters(OID.rsaEncryption),
            signature: ASN1OctetString(contentBytes: signature[...]))
        let signedData = SignedData(
            version: 1, digestAlgorithms: [AlgorithmIdentifier(algorithm: DigestAlgorithm.sha256.objectIdentifier)],
            encapsulatedContentInfo: EncapsulatedContentInfo(contentType: OID.data, content: nil),
            certificates: [try ASN1Any(erasing: certificate)], signerInfos: [signerInfo])
        return try SCEPEnrollment.der(ContentInfo(contentType: OID.signedData, content: try ASN1Any(erasing: signedData)))
    }
}
