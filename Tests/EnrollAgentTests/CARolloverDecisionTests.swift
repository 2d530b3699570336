import CertStore
import Foundation
import XCTest

@testable import SCEPClient
@testable import SCEPTestSupport
@testable import EnrollAgent

/// The pure parts of the CA rollover: when to ask GetNextCACert, how an announcement
/// changes the record, and which pins a server's answer matches.
private let now = Date(timeIntervalSince1970: 1_800_000_000)
private let day: TimeInterval = 86_400

final class CARolloverDecisionTests: XCTestCase {

    func testNextCACheckDueScenarios() {
        let cases: [(String, NextCARecord?, Bool, Bool)] = [
            ("server does not offer it", NextCARecord(checkedAt: nil), false, false),
            ("never asked", nil, true, true),
            ("record without a check", NextCARecord(checkedAt: nil), true, true),
            ("asked an hour ago", NextCARecord(checkedAt: now - 3600), true, false),
            ("asked a day ago", NextCARecord(checkedAt: now - day), true, true),
            ("clock set back: checked in the future", NextCARecord(checkedAt: now + 3600), true, true),
        ]
        for (name, record, offers, expected) in cases {
            XCTAssertEqual(ProfileRunner.nextCACheckDue(record: record, serverOffers: offers, now: now), expected, name)
        }
    }

    private func candidate(_ sha: String, announcedAt: Date = now, inUse: Date? = nil) -> NextCARecord.Candidate {
        NextCARecord.Candidate(sha256: sha, subject: "CN=\(sha)", notBefore: now, notAfter: now + 365 * day,
                               certificatePEM: "", announcedAt: announcedAt, announcedWhileCA: "old", signedBy: "old", inUseSince: inUse)
    }

    func testRecordAfterAnAnnouncementScenarios() {
        let earlier = now - 10 * day
        let cases: [(String, NextCARecord?, [NextCARecord.Candidate], [String], Date?)] = [
            // name, record before, announced, candidates after, announcedAt of "b" after
            ("first announcement", nil, [candidate("b")], ["b"], now),
            ("announced again keeps the first date", NextCARecord(candidates: [candidate("b", announcedAt: earlier)]), [candidate("b")], ["b"], earlier),
            ("withdrawn", NextCARecord(candidates: [candidate("b")]), [], [], nil),
            ("a CA in use stays", NextCARecord(candidates: [candidate("a", inUse: earlier)]), [candidate("b")], ["a", "b"], now),
            ("a CA in use is not announced twice", NextCARecord(candidates: [candidate("a", inUse: earlier)]), [candidate("a")], ["a"], nil),
        ]
        for (name, before, announced, expected, dateOfB) in cases {
            let after = ProfileRunner.record(before, after: announced, now: now)
            XCTAssertEqual(after.candidates.map(\.sha256), expected, name)
            XCTAssertEqual(after.candidates.first { $0.sha256 == "b" }?.announcedAt, dateOfB, name)
            XCTAssertEqual(after.checkedAt, now, name)
            XCTAssertTrue(after.serverOffersNextCA, name)
        }
    }

    func testTheRecordRoundTripsThroughTheStore() throws {
        let directory = try TemporaryDirectoryForTests()
        defer { directory.remove() }
        let store = try ProfileStore(directory: directory.path + "/device")
        XCTAssertNil(try store.loadNextCA())
        let record = NextCARecord(checkedAt: now, serverOffersNextCA: true, candidates: [candidate("b", inUse: now + 5)])
        try store.saveNextCA(record)
        XCTAssertEqual(try store.loadNextCA(), record)
        try "{ not json".write(toFile: store.nextCAPath, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try store.loadNextCA()) { XCTAssertEqual(($0 as? CertStoreError)?.code, .corruptState) }
    }

    func testWhichPinsTheServerMatches() throws {
        let old = try TestPKI.ca(), next = try TestPKI.nextCA()
        let oldSHA = PinnedCA.fingerprint(of: old.certificate), newSHA = PinnedCA.fingerprint(of: next.certificate)
        let pin = try PinnedCA(pinnedCertificates: [old.certificate], fingerprints: [oldSHA])
        XCTAssertEqual(ServerPinCheck.matches(pin: pin, server: [old.certificate]).map(\.presentedAt), [1])
        let both = try PinnedCA(pinnedCertificates: [], fingerprints: [oldSHA, newSHA])
        XCTAssertEqual(ServerPinCheck.matches(pin: both, server: [next.certificate]).map(\.presentedAt), [nil, 1])
        let announced = try old.pin().addingCandidates([next.certificate])
        let matches = ServerPinCheck.matches(pin: announced, server: [next.certificate])
        XCTAssertEqual(matches.map(\.sha256), [oldSHA, newSHA])
        XCTAssertEqual(matches.map(\.presentedAt), [nil, 1])
        XCTAssertTrue(matches[1].pin.hasPrefix("announced next CA"))
    }
}

/// A temporary directory for a store (the store creates what is missing under it).
private struct TemporaryDirectoryForTests {
    let path: String
    init() throws {
        path = NSTemporaryDirectory() + "rollover-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    func remove() { try? FileManager.default.removeItem(atPath: path) }
}
