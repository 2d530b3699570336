import EnrollmentPlan
import Foundation
import TestSupport
import XCTest

/// Several `enroll-agent` processes on one profile at the same moment (the
/// daemon, the timer and an administrator): the profile lock serializes them,
/// a certificate is requested only when needed, and the store stays consistent.
final class ConcurrencyTests: XCTestCase {
    private var fixture: AgentStoreFixture!

    override func setUpWithError() throws {
        fixture = try AgentStoreFixture()
    }

    override func tearDown() {
        fixture = nil
    }

    func testSimultaneousFirstEnrollmentsIssueExactlyOneCertificate() throws {
        let runs = try runTogether(["enroll"], count: 4)
        for run in runs { XCTAssertEqual(run.status, .exited(0), run.stderr) }

        XCTAssertEqual(fixture.server.issuedCertificatePaths().count, 1,
                       "the CA issued more than one certificate for one profile:\n\(runs.map(\.stderr).joined(separator: "\n---\n"))")
        XCTAssertEqual(StoreInspector.problems(in: fixture.profileDirectory, caPath: fixture.server.caCertificatePath), [])
        XCTAssertEqual(try generationNames(), ["000001"], "one enrollment, one generation")
        XCTAssertFalse(StoreInspector.exists(fixture.profilePath("previous")))
        // The live certificate is the one the CA issued, and the one every run reports.
        let issued = try String(contentsOfFile: fixture.server.issuedCertificatePaths()[0], encoding: .utf8)
        let live = try String(contentsOfFile: fixture.livePath("cert.pem"), encoding: .utf8)
        XCTAssertEqual(Self.pemBody(live), Self.pemBody(issued))
        XCTAssertEqual(runs.filter { $0.stderr.contains("certificate installed") }.count, 1,
                       runs.map(\.stderr).joined(separator: "\n---\n"))
        XCTAssertEqual(runs.filter { $0.stderr.contains("nothing to do") }.count, 3,
                       "the other runs must find the installed certificate after waiting:\n\(runs.map(\.stderr).joined(separator: "\n---\n"))")
        XCTAssertEqual(try StoreInspector.state(in: fixture.profileDirectory)?.failures, 0)
    }

    func testSimultaneousForcedRenewalsTakeTurnsAndLeaveAConsistentStore() throws {
        let enroll = try fixture.run(["enroll"])
        XCTAssertEqual(enroll.exitCode, 0, enroll.transcript)
        let before = try StoreSnapshot(profileDirectory: fixture.profileDirectory)

        let runs = try runTogether(["renew", "--force"], count: 3)
        for run in runs { XCTAssertEqual(run.status, .exited(0), run.stderr) }

        // --force renews every time: each run renewed in turn under the lock.
        XCTAssertEqual(fixture.server.issuedCertificatePaths().count, 4)
        XCTAssertEqual(runs.filter { $0.stderr.contains("certificate installed") }.count, 3)
        XCTAssertEqual(StoreInspector.problems(in: fixture.profileDirectory, caPath: fixture.server.caCertificatePath), [])
        XCTAssertEqual(StoreInspector.leftovers(in: fixture.profileDirectory), [])
        let after = try StoreSnapshot(profileDirectory: fixture.profileDirectory)
        XCTAssertEqual(after.liveTarget, "generations/000004", "three installs after the first, numbered in order")
        XCTAssertEqual(try StoreInspector.readLink(fixture.profilePath("previous")), "generations/000003")
        XCTAssertNotEqual(after.certificate, before.certificate)
        let state = try StoreInspector.state(in: fixture.profileDirectory)
        XCTAssertNil(state?.phase.transaction)
        XCTAssertEqual(state?.failures, 0)
    }

    func testSimultaneousUnforcedRenewalsOfAFreshCertificateStayOffline() throws {
        let enroll = try fixture.run(["enroll"])
        XCTAssertEqual(enroll.exitCode, 0, enroll.transcript)
        let before = try StoreSnapshot(profileDirectory: fixture.profileDirectory)
        fixture.server.stop()  // any request would now fail with exit 69

        let runs = try runTogether(["renew"], count: 3)
        for run in runs {
            XCTAssertEqual(run.status, .exited(0), run.stderr)
            XCTAssertTrue(run.stderr.contains("not due"), run.stderr)
            XCTAssertFalse(run.stderr.contains("error"), run.stderr)
        }
        XCTAssertEqual(try StoreSnapshot(profileDirectory: fixture.profileDirectory), before)
        XCTAssertEqual(fixture.server.issuedCertificatePaths().count, 1)
    }

    /// A run that has to wait for the lock touches nothing before it has it: the staging
    /// directory it finds may be the holder's install in progress. Once it holds the
    /// lock, it removes what is left.
    func testARunWaitingForTheLockLeavesTheHoldersInstallAlone() throws {
        let enroll = try fixture.run(["enroll"])
        XCTAssertEqual(enroll.exitCode, 0, enroll.transcript)
        let staging = fixture.profilePath("generations/.staging-0123456789abcdef")
        try FileManager.default.createDirectory(atPath: staging, withIntermediateDirectories: false)
        try Data("-----BEGIN CERTIFICATE-----\nMIIB".utf8).write(to: URL(fileURLWithPath: staging + "/cert.pem"))

        // The holder, as another process would hold it: the lock on an open descriptor of
        // a process that then only sleeps; killing that one process releases it.
        let holder = try ChildProcess(
            executable: "/bin/sh",
            arguments: ["-c", "exec 9<\"$0\" && flock 9 && echo locked && exec sleep 120", fixture.profilePath("lock")],
            outputPath: fixture.directory.appending("holder.out"))
        defer { holder.terminate(gracePeriod: 1) }
        XCTAssertTrue(AgentStoreFixture.waitUntil(timeout: 10) { holder.readOutput().contains("locked") }, "the holder never locked")

        let waiter = try fixture.start(["renew", "--force"])
        defer { waiter.terminate(gracePeriod: 1) }
        XCTAssertTrue(AgentStoreFixture.waitUntil(timeout: 30) { waiter.readErrorOutput().contains("holds the lock") || !waiter.isRunning },
                      "the second run neither waited nor finished: \(waiter.readErrorOutput())")
        XCTAssertTrue(waiter.isRunning, "the second run did not wait for the lock:\n\(waiter.readErrorOutput())")
        XCTAssertTrue(StoreInspector.exists(staging), "the waiting run deleted the holder's staging directory")
        XCTAssertTrue(StoreInspector.exists(staging + "/cert.pem"))

        holder.send(signal: SIGKILL)
        XCTAssertEqual(holder.wait(timeout: 10), .signaled(SIGKILL))
        XCTAssertEqual(waiter.wait(timeout: 60), .exited(0), waiter.readErrorOutput())
        XCTAssertFalse(StoreInspector.exists(staging), "the leftover was not cleaned up once the lock was held")
        XCTAssertEqual(StoreInspector.leftovers(in: fixture.profileDirectory), [])
        XCTAssertEqual(StoreInspector.problems(in: fixture.profileDirectory, caPath: fixture.server.caCertificatePath), [])
    }

    // MARK: - Helpers

    private struct FinishedRun {
        let status: ChildExitStatus?
        let stderr: String
    }

    /// Starts `count` runs as close together as possible and waits for all.
    private func runTogether(_ arguments: [String], count: Int) throws -> [FinishedRun] {
        let children = try (0..<count).map { _ in try fixture.start(arguments) }
        return children.map { child in
            let status = child.wait(timeout: 90)
            if status == nil { child.terminate(gracePeriod: 1) }
            return FinishedRun(status: status, stderr: child.readErrorOutput())
        }
    }

    private func generationNames() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: fixture.profilePath("generations")).sorted()
    }

    private static func pemBody(_ pem: String) -> String {
        pem.split(whereSeparator: \.isNewline).filter { !$0.hasPrefix("-----") }.joined()
    }
}
