// swift-tools-version:6.2
import PackageDescription

let package = Package(
    name: "enroll-agent",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "enroll-agent", targets: ["EnrollAgent"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        // The one way the agent starts a program (challenge command, post_install hook).
        .package(url: "https://github.com/swiftlang/swift-subprocess.git", from: "1.0.2"),
        // The metrics_textfile: Prometheus' text format, written by the reference Swift client.
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        // Thin system-library shims: only what Swift cannot call directly.
        .systemLibrary(name: "COpenSSL", path: "Sources/COpenSSL", pkgConfig: "libcrypto",
                       providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CTSS2", path: "Sources/CTSS2", pkgConfig: "tss2-esys",
                       providers: [.apt(["libtss2-dev"])]),
        .systemLibrary(name: "CCurl", path: "Sources/CCurl", pkgConfig: "libcurl",
                       providers: [.apt(["libcurl4-openssl-dev"])]),
        // prctl/setrlimit, which Glibc's Swift module does not export.
        .systemLibrary(name: "CLinux", path: "Sources/CLinux"),

        // The key protocol (sign, decrypt, key file) the SCEP code uses and TPMKeys
        // implements: SCEPClient depends on this, never on TPMKeys, so it links no tpm2-tss.
        .target(name: "KeyInterface", dependencies: ["COpenSSL"]),
        .target(name: "TPMKeys", dependencies: [
            "KeyInterface", "COpenSSL", "CTSS2",
            .product(name: "SwiftASN1", package: "swift-asn1"),
            // RSA key generation only: BoringSSL's is ~2.5x faster than Debian 12's OpenSSL 3.0.
            .product(name: "_CryptoExtras", package: "swift-crypto"),
        ]),
        .target(name: "CertStore", dependencies: ["EnrollmentPlan"]),
        // The configuration's TOML subset, with a line for every value (so every config
        // problem names its line) and bounded nesting.
        .target(name: "TOML"),
        // Pure renewal-time arithmetic (no I/O), shared by the agent and the fleet simulation.
        .target(name: "Renewal"),
        // The enrollment state machine, pure: the persisted phase, the one transaction
        // record, the planner (what next) and the transitions (what a step's outcome makes of it).
        .target(name: "EnrollmentPlan", dependencies: ["Renewal"], swiftSettings: [.swiftLanguageMode(.v6)]),
        .target(name: "SCEPClient", dependencies: [
            "KeyInterface", "COpenSSL", "CCurl", "EnrollmentPlan",
            .product(name: "SwiftASN1", package: "swift-asn1"),
            .product(name: "X509", package: "swift-certificates"),
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        .executableTarget(name: "EnrollAgent", dependencies: [
            "SCEPClient", "KeyInterface", "TPMKeys", "CertStore", "Renewal", "EnrollmentPlan", "TOML", "CLinux",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "X509", package: "swift-certificates"),
            .product(name: "SwiftASN1", package: "swift-asn1"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Subprocess", package: "swift-subprocess"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ]),

        .testTarget(name: "TPMKeysTests", dependencies: ["TPMKeys", "KeyInterface", "TestSupport"]),
        .testTarget(name: "CertStoreTests", dependencies: ["CertStore", "EnrollmentPlan", "TestSupport"]),
        .testTarget(name: "RenewalTests", dependencies: ["Renewal"]),
        .testTarget(name: "TOMLTests", dependencies: ["TOML"]),
        .testTarget(name: "EnrollmentPlanTests", dependencies: ["EnrollmentPlan", "Renewal"]),
        .testTarget(name: "SCEPClientTests", dependencies: [
            "SCEPClient", "KeyInterface", "TPMKeys", "TestSupport", "SCEPTestSupport",
            .product(name: "SwiftASN1", package: "swift-asn1"),
            .product(name: "X509", package: "swift-certificates"),
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        .testTarget(name: "EnrollAgentTests", dependencies: [
            "EnrollAgent", "SCEPClient", "KeyInterface", "TPMKeys", "CertStore", "EnrollmentPlan", "Renewal", "TestSupport", "SCEPTestSupport",
            .product(name: "X509", package: "swift-certificates"),
            .product(name: "SwiftASN1", package: "swift-asn1"),
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        // Benchmarks (not shipped): the TPM key operations through our own code.
        .executableTarget(name: "TPMKeysBench", dependencies: ["TPMKeys", "KeyInterface", "COpenSSL"], path: "benchmarks/TPMKeysBench"),

        .executableTarget(name: "FleetSimulation", dependencies: ["Renewal"], path: "benchmarks/FleetSimulation"),
        // The test SCEP server as a standalone process (EC certificates; benchmarks/ec-keys.sh).
        .executableTarget(name: "SCEPTestServerTool", dependencies: ["SCEPTestSupport"], path: "benchmarks/SCEPTestServerTool"),

        // Shared by the test targets: loopback HTTP server, real peer launchers.
        .target(name: "TestSupport", path: "Tests/Support"),
        // Our own SCEP responder and test CA (RAs, PENDING, faults, GCM…), for the client's
        // protocol tests and the agent's end-to-end tests alike.
        .target(name: "SCEPTestSupport", dependencies: [
            "SCEPClient", "KeyInterface", "TPMKeys", "TestSupport",
            .product(name: "SwiftASN1", package: "swift-asn1"),
            .product(name: "X509", package: "swift-certificates"),
        ], path: "Tests/SCEPTestSupport"),
    ],
    swiftLanguageModes: [.v6]
)
