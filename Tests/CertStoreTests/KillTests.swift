#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import EnrollmentPlan
import Foundation
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
            let child = Process()
            child.executableURL = URL(fileURLWithPath: binary)
            child.arguments = [Self.childTest]
            var environment = ProcessInfo.processInfo.environment
            environment[Self.childDirectoryVariable] = profile
            child.environment = environment
            let output = Pipe()
            child.standardOutput = output
            child.standardError = FileHandle.nullDevice
            try child.run()

            // Kill while install number `target + 1` is running: an event, not a timer.
            let target = Int.random(in: 1...40)
            let lines = LineReader(output.fileHandleForReading)
            var installed = 0
            while installed < target, let line = lines.next() {
                if let number = Int(line.split(separator: " ").last ?? "") { installed = number }
            }
            kill(child.processIdentifier, SIGKILL)
            child.waitUntilExit()
            XCTAssertEqual(child.terminationReason, .uncaughtSignal, "round \(round): child ended on its own")
            XCTAssertGreaterThanOrEqual(installed, target, "round \(round): child stopped reporting")
            // The child may have finished more installs before the signal landed.
            while let line = lines.next() {
                if let number = Int(line.split(separator: " ").last ?? "") { installed = number }
            }

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
                // write(2) directly: stdout is a pipe, and print() would buffer.
                FileHandle.standardOutput.write(Data("installed \(number)\n".utf8))
            }
        }
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

/// Lines from a pipe, read a byte at a time so nothing past the current line is consumed.
private final class LineReader {
    private let handle: FileHandle
    init(_ handle: FileHandle) { self.handle = handle }

    func next() -> String? {
        var bytes: [UInt8] = []
        while true {
            let chunk = handle.readData(ofLength: 1)
            guard let byte = chunk.first else { return bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self) }
            if byte == UInt8(ascii: "\n") { return String(decoding: bytes, as: UTF8.self) }
            bytes.append(byte)
        }
    }
}
