import CTSS2
@testable import TPMKeys
import XCTest

/// Error decoding and TCTI diagnosis: no TPM needed.
final class TPMErrorTests: XCTestCase {
    func testObjectMemoryFullExplainsTheLeftoverHandle() {
        let error = TPMError.fromResponseCode(0x902, operation: "Esys_CreatePrimary", tcti: "swtpm:path=/x")
        XCTAssertEqual(error.code, .objectMemoryFull)
        XCTAssertTrue(error.message.contains("TPM object memory full: a transient handle was left loaded"), error.message)
        XCTAssertTrue(error.message.contains("swtpm:path=/x"), error.message)
        XCTAssertTrue(error.message.contains("0x902"), error.message)
        XCTAssertEqual(error.responseCode, 0x902)
    }

    func testLockoutIsRecognised() {
        let error = TPMError.fromResponseCode(enroll_TPM2_RC_LOCKOUT, operation: "Esys_Sign", tcti: "device:/dev/tpmrm0")
        XCTAssertEqual(error.code, .lockout)
        XCTAssertTrue(error.message.contains("dictionary-attack lockout"), error.message)
    }

    func testFormatOneCodesMatchWhateverParameterTheyName() {
        // TPM2_RC_KEY_SIZE reported for parameter 1 (0x1C7) and 2 (0x2C7).
        for raw: UInt32 in [0x1C7, 0x2C7] {
            let response = TSS2ResponseCode(raw)
            XCTAssertEqual(response.tpmErrorNumber, enroll_TPM2_RC_KEY_SIZE)
            XCTAssertEqual(response.explanation.0, .unsupportedAlgorithm)
        }
        // TPM2_RC_INTEGRITY on parameter 1: a blob from another TPM / parent.
        XCTAssertEqual(TSS2ResponseCode(0x1DF).explanation.0, .keyNotLoadable)
    }

    func testResourceManagerLayerIsTreatedAsTPM() {
        let relayed = TSS2ResponseCode(enroll_TSS2_RESMGR_TPM_RC_LAYER | enroll_TPM2_RC_OBJECT_MEMORY)
        XCTAssertEqual(relayed.tpmErrorNumber, enroll_TPM2_RC_OBJECT_MEMORY)
        XCTAssertEqual(relayed.explanation.0, .objectMemoryFull)
    }

    func testRetryableWarnings() {
        XCTAssertTrue(TSS2ResponseCode(enroll_TPM2_RC_RETRY).isRetryable)
        XCTAssertTrue(TSS2ResponseCode(enroll_TPM2_RC_YIELDED).isRetryable)
        XCTAssertTrue(TSS2ResponseCode(enroll_TPM2_RC_TESTING).isRetryable)
        XCTAssertFalse(TSS2ResponseCode(enroll_TPM2_RC_LOCKOUT).isRetryable)
        // The same number from the TCTI layer is not a TPM warning.
        XCTAssertFalse(TSS2ResponseCode(enroll_TSS2_TCTI_RC_LAYER | enroll_TPM2_RC_RETRY).isRetryable)
    }

    func testDecodedTextComesFromTss2RCDecode() {
        XCTAssertTrue("\(TSS2ResponseCode(0x902))".hasPrefix("0x902 (tpm:"), "\(TSS2ResponseCode(0x902))")
    }

    func testEqualityIsOnTheCode() {
        XCTAssertEqual(TPMError(.lockout, "one"), TPMError(.lockout, "two"))
        XCTAssertNotEqual(TPMError(.lockout, "one"), TPMError(.tpmFailure, "one"))
    }

    // MARK: - TCTI

    func testTCTIConfigParsing() {
        XCTAssertEqual(TPMTCTIConfig("device:/dev/tpmrm0").devicePath, "/dev/tpmrm0")
        XCTAssertTrue(TPMTCTIConfig("device:/dev/tpmrm0").isResourceManaged)
        XCTAssertEqual(TPMTCTIConfig("device").devicePath, "/dev/tpmrm0")
        XCTAssertFalse(TPMTCTIConfig("device:/dev/tpm0").isResourceManaged)
        XCTAssertTrue(TPMTCTIConfig("tabrmd:bus_type=system").isResourceManaged)
        XCTAssertEqual(TPMTCTIConfig("swtpm:path=/run/t/tpm.sock").swtpmSocketPath, "/run/t/tpm.sock")
        XCTAssertNil(TPMTCTIConfig("swtpm:host=127.0.0.1,port=2321").swtpmSocketPath)
        XCTAssertFalse(TPMTCTIConfig("swtpm:host=127.0.0.1,port=2321").isResourceManaged)
    }

    func testProbeOfAMissingDeviceNamesTheDriver() {
        let tcti = "device:/dev/enroll-agent-test-no-such-tpmrm0"
        XCTAssertThrowsError(try TPMKeyFactory(tcti: tcti).probe()) { error in
            guard let error = error as? TPMError else { return XCTFail("\(error)") }
            XCTAssertEqual(error.code, .tpmUnavailable)
            XCTAssertTrue(error.message.contains(tcti), error.message)
            XCTAssertTrue(error.message.contains("missing: no TPM, or the tpm_tis/tpm_crb driver is not loaded"), error.message)
        }
    }

    func testProbeOfADeviceWithoutPermissionSaysWhatToDo() throws {
        guard geteuid() != 0 else {
            // root may open anything; the permission check cannot be exercised.
            let unreadable = FileManager.default.temporaryDirectory.appendingPathComponent("tpmrm-\(getpid())").path
            XCTAssertTrue(FileManager.default.createFile(atPath: unreadable, contents: nil, attributes: [.posixPermissions: 0]))
            defer { try? FileManager.default.removeItem(atPath: unreadable) }
            XCTAssertNil(TPMTCTIConfig("device:\(unreadable)").diagnoseUnreachable(), "root passes access(2)")
            return
        }
        let unreadable = FileManager.default.temporaryDirectory.appendingPathComponent("tpmrm-\(getpid())").path
        XCTAssertTrue(FileManager.default.createFile(atPath: unreadable, contents: nil, attributes: [.posixPermissions: 0]))
        defer { try? FileManager.default.removeItem(atPath: unreadable) }
        let error = TPMTCTIConfig("device:\(unreadable)").diagnoseUnreachable()
        XCTAssertEqual(error?.code, .permissionDenied)
        XCTAssertTrue(error?.message.contains("run as root or add the service user to the tss group") ?? false)
    }

    func testProbeOfAMissingSwtpmSocketNamesTheSocket() {
        let tcti = "swtpm:path=/nonexistent/enroll-agent/tpm.sock"
        XCTAssertThrowsError(try TPMKeyFactory(tcti: tcti).probe()) { error in
            guard let error = error as? TPMError else { return XCTFail("\(error)") }
            XCTAssertEqual(error.code, .tpmUnavailable)
            XCTAssertTrue(error.message.contains(tcti), error.message)
            XCTAssertTrue(error.message.contains("is swtpm running?"), error.message)
        }
    }

    func testProbeOfAClosedTCPPortIsUnavailable() {
        // Port 1 on loopback: nothing listens there on a test machine.
        let tcti = "swtpm:host=127.0.0.1,port=1"
        XCTAssertThrowsError(try TPMKeyFactory(tcti: tcti).probe()) { error in
            guard let error = error as? TPMError else { return XCTFail("\(error)") }
            XCTAssertEqual(error.code, .tpmUnavailable, error.message)
            XCTAssertTrue(error.message.contains(tcti), error.message)
        }
    }

    func testUnknownTCTIModuleIsUnavailable() {
        XCTAssertThrowsError(try TPMKeyFactory(tcti: "no-such-tcti-module:x").probe()) { error in
            XCTAssertEqual((error as? TPMError)?.code, .tpmUnavailable, "\(error)")
        }
    }
}
