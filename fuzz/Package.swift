// swift-tools-version:6.0
// libFuzzer harnesses for enroll-agent's parsers of untrusted input. Not shipped, and kept out
// of the main Package.swift. scripts/fuzz.sh builds it with
//   swift build --package-path fuzz --scratch-path .build-fuzz -c release \
//     --sanitize fuzzer --sanitize address -Xswiftc -sanitize=fuzzer,address \
//     -Xswiftc -parse-as-library -Xswiftc -enable-testing
// so every module (ours, swift-asn1, swift-certificates, swift-crypto) is coverage-instrumented
// and checked by ASan, and the harnesses can `@testable import` the internal parsers.
// Sources/<Module> for our modules are symlinks into ../Sources, so the harnesses fuzz exactly
// the shipped code; keep the targets and dependency versions in step with ../Package.swift.
import PackageDescription

/// Everything our modules may import, given to each of them: an import added to a shipped
/// module then needs no change here (only a new package does). Not tpm2-tss: only TPMKeys
/// may use it (SCEPClient reaches keys through KeyInterface), so the protocol harnesses
/// link without it.
let libraries: [Target.Dependency] = [
    "COpenSSL", "CCurl",
    .product(name: "SwiftASN1", package: "swift-asn1"),
    .product(name: "X509", package: "swift-certificates"),
    .product(name: "Crypto", package: "swift-crypto"),
    .product(name: "_CryptoExtras", package: "swift-crypto"),
]

let package = Package(
    name: "enroll-agent-fuzz",
    dependencies: [
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
    ],
    targets: [
        .systemLibrary(name: "COpenSSL", pkgConfig: "libcrypto"),
        .systemLibrary(name: "CTSS2", pkgConfig: "tss2-esys"),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl"),
        .target(name: "KeyInterface", dependencies: libraries),
        .target(name: "TPMKeys", dependencies: ["KeyInterface", "CTSS2"] + libraries),
        .target(name: "Renewal"),
        .target(name: "EnrollmentPlan", dependencies: ["Renewal"]),
        .target(name: "CertStore", dependencies: ["EnrollmentPlan"] + libraries),
        .target(name: "SCEPClient", dependencies: ["KeyInterface", "EnrollmentPlan"] + libraries),
        .target(name: "TOML"),
        // The executable's Config/ folder (Foundation only) as a module of its own, with the
        // subject and template files it checks values with (symlinks from Request/).
        .target(name: "AgentConfig", dependencies: ["TOML", "SCEPClient", "KeyInterface"] + libraries),
        // The executable's parsers of the challenge endpoint's answer and Retry-After, with the
        // few files they need (AgentError, Secret, SecretText, ...): symlinks to single files.
        .target(name: "AgentChallenge", dependencies: ["SCEPClient", "KeyInterface", "CertStore"] + libraries),
        // Fixtures the harnesses share (fuzz/capture/, the fixed validity date, async bridging).
        .target(name: "FuzzFixtures", dependencies: ["SCEPClient"] + libraries),

        .executableTarget(name: "FuzzGetCACert", dependencies: ["SCEPClient", "FuzzFixtures"] + libraries),
        .executableTarget(name: "FuzzCertRep", dependencies: ["SCEPClient", "KeyInterface", "TPMKeys", "FuzzFixtures"] + libraries),
        .executableTarget(name: "FuzzTSS2KeyFile", dependencies: ["TPMKeys", "KeyInterface"]),
        .executableTarget(name: "FuzzStateFile", dependencies: ["CertStore"]),
        .executableTarget(name: "FuzzConfig", dependencies: ["AgentConfig"]),
        .executableTarget(name: "FuzzCRL", dependencies: ["SCEPClient"] + libraries),
        .executableTarget(name: "FuzzTextInputs", dependencies: ["AgentChallenge", "SCEPClient", "KeyInterface", "TPMKeys"] + libraries),
    ],
    swiftLanguageModes: [.v5]
)
