import EnrollmentPlan
import Foundation
import XCTest
@testable import CertStore

final class StateTests: XCTestCase {
    private var scratch: ScratchDirectory!
    private var store: ProfileStore!

    override func setUpWithError() throws {
        scratch = try ScratchDirectory()
        store = try ProfileStore(directory: scratch.path + "/device")
    }

    override func tearDown() { scratch.remove() }

    /// 2025-01-02T03:04:05.678Z: millisecond precision is what the file keeps.
    private let started = Date(timeIntervalSince1970: 1_735_787_045.678)

    private var transaction: SCEPTransaction {
        SCEPTransaction(transactionID: "7F3A", kind: .pkcsReq, senderNonce: [9, 8, 7],
                        signerCertificateDER: [0x30, 0x82, 0x01, 0xFF], issuerDER: [0x30, 0x00], subjectDER: [0x30, 0x01, 0x02],
                        requestedExtensionsDER: [0x30, 0x00], keyStorage: "tpm", startedAt: started)
    }

    private var sampleState: ProfileState {
        ProfileState(
            phase: .pending(PendingProgress(transaction: transaction, since: started, polls: 3, lastPollAt: started.addingTimeInterval(90))),
            retryAt: started.addingTimeInterval(3600), failures: 2, lastError: "server said PENDING", lastErrorAt: started,
            renewalJitter: RenewalJitter(serial: "01ab", seconds: 1234.5), keyStorage: "tpm")
    }

    func testMissingStateIsEmpty() throws {
        XCTAssertEqual(try store.loadState(), ProfileState())
        XCTAssertEqual(ProfileState().failures, 0)
        XCTAssertEqual(ProfileState().phase, .idle)
    }

    func testRoundTripIsExactAndFileIsReadableJSONWith0644() throws {
        try store.saveState(sampleState)
        XCTAssertEqual(try store.loadState(), sampleState)
        XCTAssertEqual(permissions(store.statePath), 0o644)

        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(XCTUnwrap(readText(store.statePath)).utf8)) as? [String: Any])
        XCTAssertEqual(json["version"] as? Int, 3)
        XCTAssertEqual(json["lastErrorAt"] as? String, "2025-01-02T03:04:05.678Z")
        let phase = try XCTUnwrap(json["phase"] as? [String: Any])
        XCTAssertEqual(phase["name"] as? String, "pending")
        let pending = try XCTUnwrap((phase["pending"] as? [String: Any])?["transaction"] as? [String: Any])
        XCTAssertEqual(pending["signerCertificateDER"] as? String, "MIIB/w==", "bytes are base64 text")
        XCTAssertEqual(pending["startedAt"] as? String, "2025-01-02T03:04:05.678Z")
        XCTAssertEqual(pending["subjectDER"] as? String, "MAEC")
        XCTAssertEqual(pending["kind"] as? String, "PKCSReq")
    }

    func testEveryPhaseRoundTrips() throws {
        let phases: [EnrollmentPhase] = [
            .idle, .prepared(transaction), .submitted(Submission(transaction: transaction, sentAt: started, resends: 1, unrecognized: true)),
            .pending(PendingProgress(transaction: transaction, since: started)),
            .replyUnreadable(UnreadableReply(transaction: transaction, reason: "AES-GCM tag", attempts: 2)),
        ]
        for phase in phases {
            let state = ProfileState(phase: phase, lastAbandoned: Abandonment(transactionID: "X", reason: "old", at: started))
            try store.saveState(state)
            XCTAssertEqual(try store.loadState(), state, phase.name)
        }
    }

    func testSaveReplacesTheWholeFileAndLeavesNoTempFile() throws {
        try store.saveState(sampleState)
        try store.saveState(ProfileState(lastError: "x"))
        XCTAssertEqual(try store.loadState(), ProfileState(lastError: "x"))
        let names = try FileManager.default.contentsOfDirectory(atPath: store.directory)
        XCTAssertEqual(names.filter { $0.contains(".tmp-") }, [])
    }

    /// A newer agent's file: what this one knows is read, the rest ignored (a downgrade
    /// keeps the request on file).
    func testUnknownKeysAreIgnoredAndMissingOnesDefault() throws {
        let json = """
        {
          "version": 9,
          "futureFeature": {"anything": [1, 2, 3]},
          "lastError": "boom",
          "lastErrorAt": "2025-01-02T03:04:05Z",
          "phase": {"name": "submitted", "submission": {"sentAt": "2025-01-02T03:04:05Z", "resends": 0, "unrecognized": false,
            "transaction": {"transactionID": "AB", "kind": "RenewalReq", "senderNonce": "AQ==", "signerCertificateDER": "AQI=",
              "issuerDER": "", "subjectDER": "Aw==", "keyStorage": "software", "startedAt": "2025-01-02T03:04:05.5Z", "newField": true}}}
        }
        """
        plant(json, at: store.statePath)
        let state = try store.loadState()
        XCTAssertEqual(state.lastError, "boom")
        XCTAssertEqual(state.lastErrorAt, Date(timeIntervalSince1970: 1_735_787_045))
        XCTAssertEqual(state.failures, 0)
        XCTAssertNil(state.retryAt)
        XCTAssertEqual(state.phase.transaction?.signerCertificateDER, [1, 2])
        XCTAssertEqual(state.phase.transaction?.kind, .renewalReq)
        XCTAssertEqual(state.phase.transaction?.startedAt, Date(timeIntervalSince1970: 1_735_787_045.5))
    }

    /// Version 3 adds `revocation` (the live certificate's last CRL check): it round trips,
    /// a version 2 file (without it) reads as it is, and a record this agent cannot read
    /// is dropped instead of making the whole state corrupt.
    func testRevocationRecordRoundTripsAndAVersion2FileStillLoads() throws {
        var state = sampleState
        state.revocation = RevocationRecord(
            serial: "01ab", checkedAt: started, lastResult: .unavailable, lastCause: "HTTP 404",
            revoked: Revocation(revokedAt: started.addingTimeInterval(-60), reason: "keyCompromise", invalidityDate: started.addingTimeInterval(-120)),
            crlNextUpdate: started.addingTimeInterval(3600), crlURL: "http://crl.example.com/ca.crl", verifiedAt: started.addingTimeInterval(-30))
        try store.saveState(state)
        XCTAssertEqual(try store.loadState(), state)
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(XCTUnwrap(readText(store.statePath)).utf8)) as? [String: Any])
        let revocation = try XCTUnwrap(json["revocation"] as? [String: Any])
        XCTAssertEqual(revocation["lastResult"] as? String, "unavailable")
        XCTAssertEqual((revocation["revoked"] as? [String: Any])?["reason"] as? String, "keyCompromise")

        plant(#"{"version": 2, "failures": 1, "lastError": "x", "phase": {"name": "idle"}}"#, at: store.statePath)
        let version2 = try store.loadState()
        XCTAssertEqual(version2.failures, 1)
        XCTAssertNil(version2.revocation)

        plant(#"{"version": 4, "failures": 1, "revocation": {"serial": 7, "shape": "new"}}"#, at: store.statePath)
        let newer = try store.loadState()
        XCTAssertEqual(newer.failures, 1)
        XCTAssertNil(newer.revocation)
    }

    func testTheCRLCacheIsWrittenAtomicallyWith0644() throws {
        XCTAssertNil(try store.loadCRL())
        try store.saveCRL([0x30, 0x03, 0x02, 0x01, 0x01])
        XCTAssertEqual(try store.loadCRL(), [0x30, 0x03, 0x02, 0x01, 0x01])
        XCTAssertEqual(permissions(store.crlCachePath), 0o644)
        try store.saveCRL([0x30, 0x00])
        XCTAssertEqual(try store.loadCRL(), [0x30, 0x00])
        XCTAssertFalse(try FileManager.default.contentsOfDirectory(atPath: scratch.path + "/device").contains { $0.contains(".tmp-") })
    }

    /// The first release's file (version 1): an upgrade resumes the transaction it names.
    func testAVersion1FileIsMigrated() throws {
        let acknowledged = """
        {"version": 1, "consecutiveFailures": 2, "nextAttemptAt": "2025-01-02T04:04:05Z", "lastError": "boom",
         "renewalJitterSeconds": 120, "jitterForSerial": "7f:a:0:45", "keyStorage": "tpm",
         "pending": {"transactionID": "AB", "messageType": "PKCSReq", "signerCertificateDER": "AQI=", "issuerDER": "",
           "subjectDER": "Aw==", "keyStorage": "tpm", "startedAt": "2025-01-02T03:04:05Z", "pollCount": 4,
           "lastPollAt": "2025-01-02T03:14:05Z", "acknowledged": true}}
        """
        plant(acknowledged, at: store.statePath)
        let state = try store.loadState()
        XCTAssertEqual(state.failures, 2)
        XCTAssertEqual(state.retryAt, Date(timeIntervalSince1970: 1_735_790_645))
        XCTAssertEqual(state.renewalJitter, RenewalJitter(serial: "7f0a0045", seconds: 120))
        guard case .pending(let progress) = state.phase else { return XCTFail("\(state.phase)") }
        XCTAssertEqual(progress.transaction.transactionID, "AB")
        XCTAssertEqual(progress.polls, 4)
        XCTAssertEqual(progress.transaction.signerCertificateDER, [1, 2])

        plant(acknowledged.replacingOccurrences(of: "\"acknowledged\": true", with: "\"acknowledged\": false"), at: store.statePath)
        guard case .submitted(let submission) = try store.loadState().phase else { return XCTFail("not submitted") }
        XCTAssertFalse(submission.unrecognized)
        XCTAssertEqual(submission.transaction.transactionID, "AB")
    }

    func testPendingRequestRoundTripsWith0600() throws {
        XCTAssertNil(try store.loadPendingRequest())
        try store.savePendingRequest([0x30, 0x03, 1, 2, 3])
        XCTAssertEqual(try store.loadPendingRequest(), [0x30, 0x03, 1, 2, 3])
        XCTAssertEqual(permissions(store.pendingRequestPath), 0o600)
        try store.clearPending()
        XCTAssertNil(try store.loadPendingRequest())
    }

    func testCorruptFilesGiveAnErrorNamingTheFile() throws {
        let corruptions = [
            "{not json",
            "",
            "[]",
            #"{"consecutiveFailures": "three"}"#,
            #"{"version": 2, "failures": "three"}"#,
            #"{"lastErrorAt": "yesterday"}"#,
            #"{"pending": {"transactionID": "A"}}"#,
            #"{"pending": {"transactionID": "A", "messageType": "PKCSReq", "signerCertificateDER": "***", "issuerDER": "", "subjectDER": "", "keyStorage": "tpm", "startedAt": "2025-01-02T03:04:05Z"}}"#,
            #"{"version": 2, "phase": {"name": "dancing"}}"#,
            #"{"version": 2, "phase": {"name": "pending"}}"#,
            // Found by the statefile fuzzer: a year past 9999 is a date a double cannot hold
            // to the millisecond, so every rewrite of the file moved it.
            #"{"version": 3, "lastErrorAt": "202160-2-2T02:11:08.123Z"}"#,
            #"{"version": 3, "lastErrorAt": "10000-01-01T00:00:00Z"}"#,
        ]
        for text in corruptions {
            plant(text, at: store.statePath)
            XCTAssertThrowsError(try store.loadState(), "accepted: \(text)") { error in
                let storeError = error as? CertStoreError
                XCTAssertEqual(storeError?.code, .corruptState, text)
                XCTAssertEqual(storeError?.path, store.statePath)
                XCTAssertTrue("\(error)".contains(store.statePath), "\(error)")
                XCTAssertTrue("\(error)".contains("move it aside"), "\(error)")
            }
        }
    }

    func testDatesAtTheEdgesOfTheRangeSurviveRewrites() throws {
        for text in ["0001-01-01T00:00:00.000Z", "1970-01-01T00:00:00.001Z", "2026-12-02T11:36:36.999Z", "9999-12-31T23:59:59.999Z"] {
            plant(#"{"version": 3, "lastErrorAt": "\#(text)"}"#, at: store.statePath)
            let state = try store.loadState()
            try store.saveState(state)
            let written = readText(store.statePath)
            XCTAssertTrue(written?.contains(#""lastErrorAt" : "\#(text)""#) == true, "\(text) became \(written ?? "nothing")")
            try store.saveState(try store.loadState())
            XCTAssertEqual(readText(store.statePath), written, "\(text) moves on a rewrite")
        }
    }

    func testCorruptFileIsMovedAsideAndStateStartsFresh() throws {
        plant("{garbage", at: store.statePath)
        let now = Date(timeIntervalSince1970: 1_735_787_045)

        let moved = try store.moveCorruptStateAside(now: now)
        XCTAssertEqual(moved, store.statePath + ".corrupt-20250102T030405Z")
        XCTAssertEqual(readText(store.statePath + ".corrupt-20250102T030405Z"), "{garbage")
        XCTAssertEqual(try store.loadState(), ProfileState())

        // A second corruption in the same second does not overwrite the first copy.
        plant("{again", at: store.statePath)
        XCTAssertEqual(try store.moveCorruptStateAside(now: now), store.statePath + ".corrupt-20250102T030405Z-1")
        XCTAssertEqual(readText(store.statePath + ".corrupt-20250102T030405Z"), "{garbage")

        XCTAssertNil(try store.moveCorruptStateAside(now: now), "nothing to move")
    }

    func testPendingKeyRoundTripWithModesAndClear() throws {
        XCTAssertNil(try store.loadPendingKey())
        let pem = "-----BEGIN TSS2 PRIVATE KEY-----\nsecret\n-----END TSS2 PRIVATE KEY-----\n"
        try store.savePendingKey(pem: pem)

        XCTAssertEqual(try store.loadPendingKey(), pem)
        XCTAssertEqual(store.pendingKeyPath, store.directory + "/pending/key.pem")
        XCTAssertEqual(permissions(store.pendingKeyPath), 0o600)
        XCTAssertEqual(permissions(store.directory + "/pending"), 0o700)

        try store.savePendingKey(pem: pem + "v2")
        XCTAssertEqual(try store.loadPendingKey(), pem + "v2", "a second save replaces the key")

        try store.clearPending()
        XCTAssertNil(try store.loadPendingKey())
        XCTAssertFalse(FileManager.default.fileExists(atPath: store.directory + "/pending"))
        try store.clearPending()   // nothing pending: still fine
    }

    func testInstallWithPendingKeyUsesThatKey() throws {
        XCTAssertThrowsError(try store.installWithPendingKey(certificatePEM: taggedBundle("1").certificatePEM,
                                                             chainPEM: "")) { error in
            XCTAssertEqual((error as? CertStoreError)?.code, .noPendingKey)
        }
        let bundle = taggedBundle("1")
        try store.savePendingKey(pem: bundle.keyPEM)
        try store.installWithPendingKey(certificatePEM: bundle.certificatePEM, chainPEM: bundle.chainPEM)
        assertLive(store.directory, holds: "1")
        XCTAssertNotNil(try store.loadPendingKey(), "kept until the caller clears it")
        try store.clearPending()
        assertLive(store.directory, holds: "1")
    }

    func testStateFileNeverHoldsTheKey() throws {
        try store.savePendingKey(pem: "-----BEGIN PRIVATE KEY-----\nTOPSECRET\n-----END PRIVATE KEY-----\n")
        try store.saveState(sampleState)
        XCTAssertFalse(try XCTUnwrap(readText(store.statePath)).contains("TOPSECRET"))
    }
}
