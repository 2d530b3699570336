import CTSS2
import Foundation
@testable import TPMKeys
import XCTest

/// A key file is used only when its public area says the key was born in
/// the TPM and can never leave it (fixedTPM, fixedParent,
/// sensitiveDataOrigin). The public areas here are the fixed vector's, with
/// attributes cleared and re-marshalled; no TPM needed: the check runs
/// before anything talks to one.
final class KeyOriginTests: XCTestCase {
    private let origin: [(bit: TPMA_OBJECT, name: String)] = [
        (TPMA_OBJECT_FIXEDTPM, "fixedTPM"),
        (TPMA_OBJECT_FIXEDPARENT, "fixedParent"),
        (TPMA_OBJECT_SENSITIVEDATAORIGIN, "sensitiveDataOrigin"),
    ]

    /// The vector's key file with `attributes` cleared in its public area.
    private func vector(clearing attributes: TPMA_OBJECT) throws -> TSS2PrivateKeyFile {
        var file = try TSS2PrivateKeyFile(pem: TSS2PrivateKeyFileTests.vectorPEM)
        var keyPublic = try TSS2Marshalling.unmarshalPublic(file.publicBlob)
        keyPublic.publicArea.objectAttributes &= ~attributes
        file.publicBlob = try TSS2Marshalling.marshal(keyPublic)
        return file
    }

    func testTheUnmodifiedVectorHasAllThreeAndLoads() throws {
        let file = try vector(clearing: 0)
        XCTAssertEqual(file, try TSS2PrivateKeyFile(pem: TSS2PrivateKeyFileTests.vectorPEM), "re-marshalling changes nothing")
        XCTAssertNoThrow(try TPMKey(keyFile: file, tcti: "swtpm:path=/unused"))
    }

    func testEachMissingOriginAttributeIsRefusedByName() throws {
        for (bit, name) in origin {
            XCTAssertThrowsError(try TPMKey(keyFile: try vector(clearing: bit), tcti: "swtpm:path=/unused"), name) { error in
                guard let error = error as? TPMError else { return XCTFail("\(error)") }
                XCTAssertEqual(error.code, .keyNotCreatedInTPM, "\(name): \(error.message)")
                XCTAssertTrue(error.message.contains("lacks \(name):"), "\(name): \(error.message)")
                for (_, other) in origin where other != name {
                    XCTAssertFalse(error.message.contains(other), "\(name): names \(other) too: \(error.message)")
                }
                XCTAssertTrue(error.message.contains("not born in this TPM"), error.message)
                XCTAssertTrue(error.message.contains("enroll a new key"), error.message)
            }
        }
    }

    func testAllMissingAttributesAreNamed() throws {
        XCTAssertThrowsError(try TPMKey(keyFile: try vector(clearing: TPMObjectAttributes.bornInThisTPM), tcti: "device")) { error in
            XCTAssertEqual((error as? TPMError)?.code, .keyNotCreatedInTPM)
            XCTAssertTrue("\(error)".contains("lacks fixedTPM, fixedParent, sensitiveDataOrigin:"), "\(error)")
        }
    }

    /// The same refusal through the public entry point the agent uses for key.pem.
    func testLoadingThePEMRefusesIt() throws {
        let pem = try vector(clearing: TPMA_OBJECT_SENSITIVEDATAORIGIN).pemString()
        XCTAssertThrowsError(try TPMKeyFactory.load(pem: pem, tcti: "device")) { error in
            XCTAssertEqual((error as? TPMError)?.code, .keyNotCreatedInTPM)
        }
    }
}
