import Foundation
import KeyInterface
import SCEPClient
import SwiftASN1
import X509

/// The agent's validated configuration (DESIGN.md "Config contract").
///
/// Built by `AgentConfig.load(path:)` / `AgentConfig.parse(_:path:)`; every value is
/// already checked, defaults are filled in.
struct AgentConfig: Equatable, Sendable {
    static let defaultPath = "/etc/enroll-agent/config.toml"
    static let defaultStateDirectory = "/var/lib/enroll-agent"

    /// `state_dir`: the store root; one folder per profile below it.
    var stateDirectory: String
    /// `[[profile]]`, in file order; names are unique.
    var profiles: [ProfileConfig]
    /// `metrics_textfile`: where the Prometheus text file goes; nil = none.
    var metricsTextfile: String?
    /// Things worth telling the administrator that do not stop the agent (shown by `check-config`).
    var warnings: [ConfigProblem] = []
    /// The file the configuration came from (for messages from later checks).
    var sourcePath: String = AgentConfig.defaultPath

    func profile(named name: String) -> ProfileConfig? {
        profiles.first { $0.name == name }
    }
}

/// One `[[profile]]`: one certificate the agent enrolls and keeps renewed.
struct ProfileConfig: Equatable, Sendable {
    /// `name`: also the store folder `<state_dir>/<name>/`; `[A-Za-z0-9._-]`, not `.` or `..`.
    var name: String
    /// `scep_url`: http or https, no query (the agent adds `?operation=...`).
    var scepURL: URL
    /// `ca_pin_file` and/or `ca_pin_sha256`: the pinned issuing CA.
    var caPin: CAPinConfig
    /// `subject`: a template rendering to an RFC 4514 DN; default `CN={{Hostname}}`.
    var subjectTemplate: String = ProfileConfig.defaultSubject
    /// `san_upn`, `san_dns`, `san_email`, `san_uri`: templates.
    var subjectAlternativeNames = SubjectAlternativeNameTemplates()
    /// `key_storage`.
    var keyStorage: KeyStoragePolicy = .tpmPreferred
    /// `key_type`: RSA or EC.
    var keyType: KeyType = .rsa
    /// `ec_curve`: the curve of an EC key.
    var ecCurve: EllipticCurve = .p256
    /// `key_bits`: 2048 or 3072 (RSA).
    var keyBits: Int = 2048
    /// `tcti`: the TPM connection, as the tpm2-tss TCTI string.
    var tcti: String = ProfileConfig.defaultTCTI
    /// `key_usage`.
    var keyUsage = KeyUsage(digitalSignature: true, keyEncipherment: true)
    /// `extended_key_usage`, names resolved, in the configured order.
    var extendedKeyUsage: [ExtendedKeyUsage.Usage] = [.clientAuth]
    /// `certificate_policies`.
    var certificatePolicies: [ASN1ObjectIdentifier] = []
    /// `renew_before`: seconds before notAfter; nil = the scheduler's default (two thirds of the lifetime).
    var renewBefore: TimeInterval?
    /// `renewal_threshold_percent`: renew when this share of the lifetime remains (1...99,
    /// Intune's "Renewal threshold (%)"); nil = not set.
    var renewalThresholdPercent: Int?
    /// `renew_jitter`: maximum random delay; nil = the scheduler's default.
    var renewJitter: TimeInterval?
    /// `renewal_mode`.
    var renewalMode: RenewalMode = .auto
    /// `reuse_key`: renew with the current key instead of a new one.
    var reuseKey = false
    /// `allow_weak_algorithms`: accept a server offering only DES3/SHA-1 for what we send.
    var allowWeakAlgorithms = false
    /// `content_encryption`: the cipher for the request's EnvelopedData.
    var contentEncryption: ContentEncryption = .aes128
    /// `poll_max_wait`: how long to keep polling a PENDING request, seconds.
    var pollMaxWait: TimeInterval = 3600
    /// `pending_max_age`: a request the CA keeps PENDING (or never answers) this long is
    /// abandoned and a fresh one follows; seconds.
    var pendingMaxAge: TimeInterval = 7 * 86_400
    /// `poll_initial_interval`: first delay between polls, seconds.
    var pollInitialInterval: TimeInterval = 10
    /// `http_timeout`: per-request timeout, seconds.
    var httpTimeout: TimeInterval = 30
    /// `tls_ca_file`: CA bundle for HTTPS to the SCEP server and the challenge endpoint; nil = system roots.
    var tlsCAFile: String?
    /// `proxy` (the profile's, else the top-level one): the environment's proxies by default.
    var proxy: ProxySetting = .environment
    /// `proxy_credentials_file` (the profile's, else the top-level one): `user:password` for the proxy.
    var proxyCredentialsFile: String?
    /// `post_install`: argv run after a new certificate is installed; empty = none.
    var postInstall: [String] = []
    /// `hook_environment`: names of environment variables passed on to `post_install`
    /// (besides PATH and the ENROLL_AGENT_* variables; nothing else is inherited).
    var hookEnvironment: [String] = []
    /// `revocation_check_interval`, `on_revoked`: the live certificate's CRL check.
    var revocation = RevocationSettings()
    /// `[profile.challenge]`.
    var challenge: ChallengeSource
    /// `[profile.variables]`: values for the templates.
    var variables: [String: String] = [:]
    /// Line of each key as written (`key_bits`, `challenge.token_file`, ...) and of the
    /// `[[profile]]` header (key ""), so that later checks can point at the file.
    var sourceLines: [String: Int] = [:]

    static let defaultSubject = "CN={{Hostname}}"
    static let defaultTCTI = "device:/dev/tpmrm0"

    /// Line of `key` in the file, falling back to the profile's header line.
    func line(of key: String) -> Int? {
        sourceLines[key] ?? sourceLines[""]
    }
}

/// The revocation keys of a profile (issue 10 §3).
struct RevocationSettings: Equatable, Sendable {
    /// `revocation_check_interval`: how often `renew` and the daemon check the live
    /// certificate against its CRL (also when the cached CRL's nextUpdate has passed);
    /// 0 ("0s"): on every run. Default 12h.
    var checkInterval: TimeInterval = 12 * 3600
    /// `on_revoked`.
    var onRevoked: OnRevoked = .reenroll
}

/// `on_revoked`: what a revoked live certificate leads to.
enum OnRevoked: String, CaseIterable, Equatable, Sendable {
    /// A fresh PKCSReq with a new key and a new challenge.
    case reenroll
    /// Logged and shown by `status` only.
    case report
}

/// `ca_pin_file` / `ca_pin_sha256`: at least one is set.
struct CAPinConfig: Equatable, Sendable {
    /// PEM file holding the pinned intermediate CA certificate(s).
    var file: String?
    /// SHA-256 fingerprints of the DER certificate, normalized to 64 lowercase hex digits.
    var sha256Fingerprints: [String] = []
    /// `ra_pin_sha256`: RA certificates trusted without an RA purpose, normalized like the CA pins.
    var raSHA256Fingerprints: [String] = []
}

/// `san_upn`, `san_dns`, `san_email`, `san_uri`: template strings, rendered at enrollment.
struct SubjectAlternativeNameTemplates: Equatable, Sendable {
    /// otherName 1.3.6.1.4.1.311.20.2.3 (Microsoft UPN).
    var upn: [String] = []
    var dns: [String] = []
    /// rfc822Name.
    var email: [String] = []
    var uri: [String] = []

    var all: [String] { upn + dns + email + uri }
}

/// `key_storage`: where the private key lives.
enum KeyStoragePolicy: String, CaseIterable, Equatable, Sendable {
    /// A TPM key, or fail.
    case tpm
    /// A TPM key; a software key when no TPM is present (logged loudly, shown in `status`).
    case tpmPreferred = "tpm-preferred"
    /// A software key (PKCS#8 PEM, mode 0600).
    case software
}

/// `key_type`.
enum KeyType: String, CaseIterable, Equatable, Sendable {
    case rsa
    case ec
}

extension ProfileConfig {
    /// The key the profile asks for: RSA of `key_bits`, or EC on `ec_curve`.
    var keyAlgorithm: KeyAlgorithm { keyType == .ec ? .ec(ecCurve) : .rsa(bits: keyBits) }
}

/// `key_usage` bits requested in the CSR.
enum RequestedKeyUsage: String, CaseIterable, Equatable, Sendable {
    case digitalSignature
    case keyEncipherment
}

extension RequestedKeyUsage {
    /// The keyUsage extension that asks for exactly `usages`.
    static func keyUsage(_ usages: [RequestedKeyUsage]) -> KeyUsage {
        KeyUsage(digitalSignature: usages.contains(.digitalSignature), keyEncipherment: usages.contains(.keyEncipherment))
    }
}

/// The names `extended_key_usage` accepts besides dotted OIDs.
enum ExtendedKeyUsageName {
    /// Microsoft smart card logon (1.3.6.1.4.1.311.20.2.2).
    static let smartcardLogon = ExtendedKeyUsage.Usage(oid: [1, 3, 6, 1, 4, 1, 311, 20, 2, 2])

    static let all: [(name: String, usage: ExtendedKeyUsage.Usage)] = [
        ("clientAuth", .clientAuth),
        ("serverAuth", .serverAuth),
        ("codeSigning", .codeSigning),
        ("emailProtection", .emailProtection),
        ("smartcardLogon", smartcardLogon),
    ]
}

/// `renewal_mode`: which SCEP message renews a certificate.
enum RenewalMode: String, CaseIterable, Equatable, Sendable {
    /// RenewalReq when the server advertises `Renewal`, else PKCSReq with a new challenge.
    case auto
    /// Always RenewalReq, signed with the current certificate.
    case renewalReq = "renewalreq"
    /// Always PKCSReq with a fresh challenge.
    case pkcsReq = "pkcsreq"
}

/// `content_encryption`: the cipher for the EnvelopedData we send.
enum ContentEncryption: String, CaseIterable, Equatable, Sendable {
    case aes128
    case aes256
}

/// `[profile.challenge]`: where the SCEP challenge password comes from.
enum ChallengeSource: Equatable, Sendable {
    /// `source = "endpoint"`: HTTPS GET to the management endpoint (our JSON contract, an
    /// Okta generic dynamic challenge URL, an NDES `mscep_admin` page).
    case endpoint(EndpointChallenge)
    /// `source = "file"`: a static challenge in a root-only file.
    case file(path: String)
    /// `source = "command"`: an executable (absolute path first) printing the challenge.
    case command(argv: [String])
    /// `source = "none"`: the SCEP server needs no challenge.
    case noChallenge

    /// Files holding secrets for this source (token, password, static challenge), with their
    /// key and what they are called in messages: checked for existence and permissions.
    var secretFiles: [(key: String, path: String, what: String)] {
        switch self {
        case .endpoint(let endpoint):
            switch endpoint.auth {
            case .noCredentials: return []
            case .bearer(let tokenFile): return [("challenge.token_file", tokenFile, "token file")]
            case .basic(_, let passwordFile), .ntlm(_, let passwordFile):
                return [("challenge.password_file", passwordFile, "password file")]
            }
        case .file(let path): return [("challenge.file", path, "challenge file")]
        case .command, .noChallenge: return []
        }
    }

    /// The configuration spelling of the source.
    var sourceName: String {
        switch self {
        case .endpoint: return "endpoint"
        case .file: return "file"
        case .command: return "command"
        case .noChallenge: return "none"
        }
    }
}

/// `[profile.challenge]` with `source = "endpoint"`.
struct EndpointChallenge: Equatable, Sendable {
    /// `url`: https (plain http only to loopback); a query is allowed.
    var url: URL
    /// `auth` with `token_file` or `username` + `password_file`.
    var auth: EndpointAuth = .noCredentials
    /// `format`: how the answer carries the challenge.
    var format: ChallengeFormat = .json
}

/// `auth`: how the agent proves itself to the challenge endpoint. Secrets come only from
/// files (never from the configuration itself, which is not secret, nor from argv).
enum EndpointAuth: Equatable, Sendable {
    /// No `auth` and no `token_file`: the endpoint needs no credentials (a local helper).
    case noCredentials
    /// `auth = "bearer"` (the default with `token_file`): `Authorization: Bearer <token_file>`.
    case bearer(tokenFile: String)
    /// `auth = "basic"`: HTTP Basic with `username` and the contents of `password_file`
    /// (Okta's generic dynamic challenge URL, NDES with Basic enabled).
    case basic(username: String, passwordFile: String)
    /// `auth = "ntlm"`: NTLM with `username` (`DOMAIN\user` or `user@domain`) and
    /// `password_file` (NDES's default for `mscep_admin`).
    case ntlm(username: String, passwordFile: String)

    /// The configuration spelling.
    static let names = ["bearer", "basic", "ntlm"]
}

/// `format`: what the endpoint answers.
enum ChallengeFormat: String, CaseIterable, Equatable, Sendable {
    /// `{"challenge": "...", "expires_in": N, "variables": {...}}` (our contract).
    case json
    /// The body is the challenge: one line, surrounding whitespace trimmed.
    case text
    /// An NDES `mscep_admin` page (also what Okta's generic dynamic challenge URL serves):
    /// HTML, often UTF-16LE, with "The enrollment challenge password is: <B> … </B>".
    case ndesAdmin = "ndes-admin"
}
