#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import XCTest
@testable import CertStore

/// A reader thread checks, while installs run, that `live` always resolves and that the
/// certificate and key in the generation it names belong together.
final class ConcurrentReaderTests: XCTestCase {
    private var scratch: ScratchDirectory!

    override func setUpWithError() throws { scratch = try ScratchDirectory() }
    override func tearDown() { scratch.remove() }

    func testReadersNeverSeeAMixedPairOrAMissingLive() throws {
        let profile = scratch.path + "/device"
        let store = try ProfileStore(directory: profile)
        try store.install(taggedBundle("0"))

        let reader = LiveReader(profile: profile)
        let thread = Thread { reader.run() }
        thread.start()
        for generation in 1...100 {
            try store.install(taggedBundle("\(generation)"))
        }
        reader.stop()
        let report = reader.waitForReport()

        XCTAssertEqual(report.problems, [], "first problems seen by the reader")
        XCTAssertGreaterThan(report.consistentReads, 50, "the reader must actually have overlapped the installs")
        assertLive(profile, holds: "100")
    }
}

/// Reads the way a careful consumer does: resolve `live` once, then read cert and key from
/// that generation; and also open `live/cert.pem` directly, which must never fail.
private final class LiveReader: @unchecked Sendable {
    struct Report { var consistentReads = 0; var problems: [String] = [] }

    private let profile: String
    private let condition = NSCondition()
    private var stopping = false
    private var finished = false
    private var report = Report()

    init(profile: String) { self.profile = profile }

    func run() {
        var local = Report()
        while !shouldStop() && local.problems.count < 5 {
            guard let target = symlinkTarget(profile + "/live") else {
                local.problems.append("live did not resolve")
                continue
            }
            if readText(profile + "/live/cert.pem") == nil {
                local.problems.append("live/cert.pem missing while live -> \(target)")
            }
            let directory = profile + "/" + target
            guard let cert = readText(directory + "/cert.pem"), let key = readText(directory + "/key.pem") else {
                // Only acceptable if the generation was pruned after we resolved it, which
                // needs live to have moved on by at least two installs.
                if symlinkTarget(profile + "/live") == target {
                    local.problems.append("\(target) is live but unreadable")
                }
                continue
            }
            let certTag = tag(in: cert, kind: "cert"), keyTag = tag(in: key, kind: "key")
            if certTag == nil || certTag != keyTag {
                local.problems.append("mixed pair in \(target): cert \(certTag ?? "?") key \(keyTag ?? "?")")
            } else {
                local.consistentReads += 1
            }
        }
        condition.lock()
        report = local
        finished = true
        condition.broadcast()
        condition.unlock()
    }

    func stop() {
        condition.lock()
        stopping = true
        condition.unlock()
    }

    func waitForReport() -> Report {
        condition.lock()
        defer { condition.unlock() }
        while !finished { condition.wait() }
        return report
    }

    private func shouldStop() -> Bool {
        condition.lock()
        defer { condition.unlock() }
        return stopping
    }
}
