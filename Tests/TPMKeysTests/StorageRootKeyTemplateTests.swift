import CTSS2
@testable import TPMKeys
import XCTest

/// The comparison that decides whether a persistent object is our SRK:
/// every field of the template counts, `unique` does not. No TPM needed.
final class StorageRootKeyTemplateTests: XCTestCase {
    private var template: TPMT_PUBLIC { TPMKeyTemplates.storageRootKey.publicArea }

    func testTheTemplateItselfMatchesWhateverItsUniqueField() {
        XCTAssertEqual(TPMStorageRootKey.differences(fromTemplate: template), [])
        var withPoint = template
        withPoint.unique.ecc.x.size = 32
        withPoint.unique.ecc.y.size = 32
        XCTAssertEqual(TPMStorageRootKey.differences(fromTemplate: withPoint), [],
                       "a real SRK has a public point in unique")
    }

    func testEveryTemplateFieldIsCompared() {
        let scenarios: [(name: String, change: (inout TPMT_PUBLIC) -> Void, mentions: String)] = [
            ("RSA key", { $0.type = TPM2_ALG_RSA }, "type 0x1 instead of ECC"),
            ("SHA-1 name", { $0.nameAlg = TPM2_ALG_SHA1 }, "nameAlg 0x4"),
            ("without noDA", { $0.objectAttributes &= ~TPMA_OBJECT_NODA }, "lacking noDA"),
            ("without userWithAuth", { $0.objectAttributes &= ~TPMA_OBJECT_USERWITHAUTH }, "lacking userWithAuth"),
            ("without fixedTPM", { $0.objectAttributes &= ~TPMA_OBJECT_FIXEDTPM }, "lacking fixedTPM"),
            ("also a signing key", { $0.objectAttributes |= TPMA_OBJECT_SIGN_ENCRYPT }, "with sign"),
            ("adminWithPolicy", { $0.objectAttributes |= TPMA_OBJECT_ADMINWITHPOLICY }, "with adminWithPolicy"),
            ("with a policy", { $0.authPolicy.size = 32 }, "authPolicy of 32 bytes"),
            ("AES-256", { $0.parameters.eccDetail.symmetric.keyBits.aes = 256 }, "instead of AES-128-CFB"),
            ("AES-128-CBC", { $0.parameters.eccDetail.symmetric.mode.aes = TPM2_ALG_CBC }, "instead of AES-128-CFB"),
            ("no symmetric", { $0.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL }, "instead of AES-128-CFB"),
            ("ECDH scheme", { $0.parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDH }, "scheme 0x19"),
            ("P-384", { $0.parameters.eccDetail.curveID = TPM2_ECC_NIST_P384 }, "curve 0x4"),
            ("KDF1", { $0.parameters.eccDetail.kdf.scheme = TPM2_ALG_KDF1_SP800_108 }, "kdf 0x22"),
        ]
        for scenario in scenarios {
            var area = template
            scenario.change(&area)
            let differences = TPMStorageRootKey.differences(fromTemplate: area)
            XCTAssertEqual(differences.count, 1, "\(scenario.name): \(differences)")
            XCTAssertTrue(differences.joined().contains(scenario.mentions),
                          "\(scenario.name): expected \"\(scenario.mentions)\" in \(differences)")
        }
    }

    func testAttributeNamesCoverTheBitsAndKeepUnknownOnesVisible() {
        XCTAssertEqual(TPMObjectAttributes.names(template.objectAttributes),
                       ["fixedTPM", "fixedParent", "sensitiveDataOrigin", "userWithAuth", "noDA", "restricted", "decrypt"])
        XCTAssertEqual(TPMObjectAttributes.names(0x0000_1001), ["0x1001"], "reserved bits are shown, not dropped")
        XCTAssertEqual(TPMObjectAttributes.list(TPMObjectAttributes.bornInThisTPM),
                       "fixedTPM, fixedParent, sensitiveDataOrigin")
    }
}
