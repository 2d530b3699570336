#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import EnrollmentPlan
import Foundation
import TestSupport
import XCTest
@testable import CertStore

/// Real kills: this test binary is started again as a child that installs generations in a
/// loop, SIGKILLed at a random install, and the store it leaves behind is checked.
final class KillTests: XCTestCase {
    /// Set in the child: the profile directory to install into until killed.
    private static let childDirectoryVariable = "CERTSTORE_KILL_TEST_DIR"
    private static let childTest = "CertStoreTests.KillTests/testInstallLoop"

    private var scratch: ScratchDirectory!

    override func setUpWithError() throws { scratch = try ScratchDirectory() }
    override func tearDown() { scratch.remove() }

    /// In the parent run: a short loop that must end with live + previous only.
    /// In the child (variable set): installs until killed, reporting each one on stdout.
    func testInstallLoop() throws {
        if let directory = ProcessInfo.processInfo.environment[Self.childDirectoryVariable] {
            try installLoop(directory: directory, count: 5_000, report: true)
            return
        }
        let profile = scratch.path + "/device"
        try installLoop(directory: profile, count: 12, report: false)
        assertLive(profile, holds: "12")
        XCTAssertEqual(try ProfileStore(directory: profile).loadState().failures, 12)
        XCTAssertEqual(try ProfileStore(directory: profile).generationIDs(), ["000011", "000012"])
    }

    func testSIGKILLDuringInstallsLeavesACompleteLiveGeneration() throws {
        let binary = try testBinary()
        for round in 0..<6 {
            let profile = scratch.path + "/round-\(round)"
            let child = try ChildProcess(
                executable: binary, arguments: [Self.childTest],
                extraEnvironment: [Self.childDirectoryVariable: profile],
                outputPath: scratch.path + "/round-\(round).out", errorPath: "/dev/null")

            // Kill while install number `target + 1` is running (or a little later): on the
            // child's report, not a timer.
            let target = Int.random(in: 1...40)
            XCTAssertTrue(child.waitForOutput(timeout: 60) { Self.lastReportedInstall(in: $0) >= target },
                          "round \(round): child stopped reporting: \(child.readOutput())")
            child.send(signal: SIGKILL)
            XCTAssertEqual(child.wait(timeout: 30), .signaled(SIGKILL), "round \(round): child ended on its own")
            // The child may have finished more installs before the signal landed.
            let installed = Self.lastReportedInstall(in: child.readOutput())
            XCTAssertGreaterThanOrEqual(installed, target, "round \(round): child stopped reporting")

            // Whatever instant the kill hit, live is a complete, consistent generation.
            let cert = try XCTUnwrap(readText(profile + "/live/cert.pem"), "round \(round)")
            let liveTag = try XCTUnwrap(tag(in: cert, kind: "cert"))
            XCTAssertTrue(Int(liveTag).map { $0 == installed || $0 == installed + 1 } ?? false,
                          "round \(round): live is \(liveTag) after \(installed) reported installs")
            assertLive(profile, holds: liveTag)
            let reopened = try ProfileStore(directory: profile)
            XCTAssertNoThrow(try reopened.loadState(), "state.json is never half-written")

            try reopened.install(taggedBundle("after"))
            assertLive(profile, holds: "after")
            XCTAssertEqual(try reopened.generationIDs().count, 2)
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: profile + "/generations")
                .filter { $0.hasPrefix(".") }
            XCTAssertEqual(leftovers, [], "round \(round)")
        }
    }

    private func installLoop(directory: String, count: Int, report: Bool) throws {
        let store = try ProfileStore(directory: directory)
        for number in 1...count {
            try store.install(taggedBundle("\(number)"))
            try store.saveState(ProfileState(failures: number, lastError: "after install \(number)"))
            if report {
                // write(2) directly: the parent reads stdout (a file) while we run, and print() would buffer.
                FileHandle.standardOutput.write(Data("installed \(number)\n".utf8))
            }
        }
    }

    /// The number in the last complete "installed N" line the child wrote (0 if none).
    private static func lastReportedInstall(in output: String) -> Int {
        let complete = output.hasSuffix("\n") ? output[...] : output[..<(output.lastIndex(of: "\n") ?? output.startIndex)]
        return complete.split(separator: "\n").reversed().lazy
            .compactMap { $0.hasPrefix("installed ") ? Int($0.dropFirst("installed ".count)) : nil }.first ?? 0
    }

    /// The running test binary (the .xctest executable SwiftPM built).
    private func testBinary() throws -> String {
        let candidate = CommandLine.arguments.first ?? ""
        if candidate.hasSuffix(".xctest") && FileManager.default.isExecutableFile(atPath: candidate) {
            return candidate
        }
        if ProcessInfo.processInfo.environment["CI"] == "true" {
            throw CertStoreError(.fileSystem, path: candidate,
                                 message: "cannot re-run the test binary (\(candidate)) for the kill test")
        }
        throw XCTSkip("the test binary cannot be re-run from here (\(candidate))")
    }
}
