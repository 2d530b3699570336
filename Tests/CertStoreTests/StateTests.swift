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

    private var sampleState: EnrollmentState {
        EnrollmentState(
            pending: PendingTransaction(transactionID: "7F3A", messageType: "PKCSReq",
                                        signerCertificateDER: [0x30, 0x82, 0x01, 0xFF],
                                        issuerDER: [0x30, 0x00], subjectDER: [0x30, 0x01, 0x02],
                                        keyStorage: "tpm", startedAt: started, pollCount: 3,
                                        lastPollAt: started.addingTimeInterval(90)),
            lastError: "server said PENDING", lastErrorAt: started, lastSuccessAt: nil,
            consecutiveFailures: 2, nextAttemptAt: started.addingTimeInterval(3600),
            renewalJitterSeconds: 1234.5, jitterForSerial: "01AB", keyStorage: "tpm")
    }

    func testMissingStateIsEmpty() throws {
        XCTAssertEqual(try store.loadState(), EnrollmentState())
        XCTAssertEqual(EnrollmentState().consecutiveFailures, 0)
    }

    func testRoundTripIsExactAndFileIsReadableJSONWith0644() throws {
        try store.saveState(sampleState)
        XCTAssertEqual(try store.loadState(), sampleState)
        XCTAssertEqual(permissions(store.statePath), 0o644)

        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(XCTUnwrap(readText(store.statePath)).utf8)) as? [String: Any])
        XCTAssertEqual(json["version"] as? Int, 1)
        XCTAssertEqual(json["lastErrorAt"] as? String, "2025-01-02T03:04:05.678Z")
        let pending = try XCTUnwrap(json["pending"] as? [String: Any])
        XCTAssertEqual(pending["signerCertificateDER"] as? String, "MIIB/w==", "bytes are base64 text")
        XCTAssertEqual(pending["startedAt"] as? String, "2025-01-02T03:04:05.678Z")
        XCTAssertEqual(pending["subjectDER"] as? String, "MAEC")
    }

    func testSaveReplacesTheWholeFileAndLeavesNoTempFile() throws {
        try store.saveState(sampleState)
        try store.saveState(EnrollmentState(lastError: "x"))
        XCTAssertEqual(try store.loadState(), EnrollmentState(lastError: "x"))
        let names = try FileManager.default.contentsOfDirectory(atPath: store.directory)
        XCTAssertEqual(names.filter { $0.contains(".tmp-") }, [])
    }

    func testUnknownKeysAreIgnoredAndMissingOnesDefault() throws {
        let json = """
        {
          "version": 9,
          "futureFeature": {"anything": [1, 2, 3]},
          "lastError": "boom",
          "lastErrorAt": "2025-01-02T03:04:05Z",
          "pending": {
            "transactionID": "AB", "messageType": "RenewalReq",
            "signerCertificateDER": "AQI=", "issuerDER": "", "subjectDER": "Aw==",
            "keyStorage": "software", "startedAt": "2025-01-02T03:04:05.5Z",
            "newField": true
          }
        }
        """
        plant(json, at: store.statePath)
        let state = try store.loadState()
        XCTAssertEqual(state.lastError, "boom")
        XCTAssertEqual(state.lastErrorAt, Date(timeIntervalSince1970: 1_735_787_045))
        XCTAssertEqual(state.consecutiveFailures, 0)
        XCTAssertNil(state.nextAttemptAt)
        XCTAssertEqual(state.pending?.signerCertificateDER, [1, 2])
        XCTAssertEqual(state.pending?.issuerDER, [])
        XCTAssertEqual(state.pending?.pollCount, 0)
        XCTAssertEqual(state.pending?.startedAt, Date(timeIntervalSince1970: 1_735_787_045.5))
    }

    func testCorruptFilesGiveAnErrorNamingTheFile() throws {
        let corruptions = [
            "{not json",
            "",
            "[]",
            #"{"consecutiveFailures": "three"}"#,
            #"{"lastErrorAt": "yesterday"}"#,
            #"{"pending": {"transactionID": "A"}}"#,
            #"{"pending": {"transactionID": "A", "messageType": "PKCSReq", "signerCertificateDER": "***", "issuerDER": "", "subjectDER": "", "keyStorage": "tpm", "startedAt": "2025-01-02T03:04:05Z"}}"#,
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

    func testCorruptFileIsMovedAsideAndStateStartsFresh() throws {
        plant("{garbage", at: store.statePath)
        let now = Date(timeIntervalSince1970: 1_735_787_045)

        let moved = try store.moveCorruptStateAside(now: now)
        XCTAssertEqual(moved, store.statePath + ".corrupt-20250102T030405Z")
        XCTAssertEqual(readText(store.statePath + ".corrupt-20250102T030405Z"), "{garbage")
        XCTAssertEqual(try store.loadState(), EnrollmentState())

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
