import Foundation
import KeyInterface
import SwiftASN1
import X509

/// The keys of a `[[profile]]`, in the order the example file and the README show them.
///
/// Each key reads only itself; checks that involve several keys (a pin is required, the
/// template variables must be defined, the poll interval fits the wait) run after all keys
/// are read, in `ConfigDecoder.checkProfile`.
enum ProfileKeys {
    typealias Key = ConfigKey<ProfileConfig>

    static var all: [Key] {
        identity + pins + request + key + contents + renewal + protocolKeys + transport + revocation + hook + tables
    }

    static var names: [String] { all.map(\.name) }

    // MARK: - Identity and trust

    private static var identity: [Key] {[
        Key(name: "name", type: .string, defaultValue: .required,
            summary: "profile name, also its store folder `<state_dir>/<name>/` (letters, digits, `.`, `_`, `-`)",
            comment: ["Also the store folder name: letters, digits, '.', '_' and '-'."],
            example: .set("\"device\""),
            // Read by the decoder before the other keys: it names the profile in every message.
            decode: { _, _ in }),
        Key(name: "scep_url", type: .url, defaultValue: .required,
            summary: "the SCEP endpoint, http or https, without a query",
            comment: ["The SCEP server (RFC 8894). https:// or http:// (SCEP protects its messages",
                      "itself; https adds server authentication). No query string."],
            example: .set("\"https://scep.example.com/scep\""),
            decode: { reader, profile in
                guard let (text, line) = reader.string("scep_url") else {
                    if reader.table["scep_url"] == nil {
                        reader.reportMissing("scep_url", "expected the SCEP server URL, e.g. scep_url = \"https://scep.example.com/scep\"")
                    }
                    return
                }
                do {
                    profile.scepURL = try ConfigURL.parseHTTP(text, allowQuery: false)
                } catch {
                    reader.report("scep_url", line: line, ConfigDecoder.message(error))
                }
            }),
    ]}

    private static var pins: [Key] {[
        Key(name: "ca_pin_file", type: .absolutePath, defaultValue: .none,
            summary: "the pinned issuing CA as a PEM file; every certificate the server sends must be this CA or chain to it",
            comment: ["The pinned issuing (intermediate) CA: every CA/RA certificate the server",
                      "uses, and the issued certificate, must chain to it. Give the PEM file, its",
                      "SHA-256 fingerprint, or both (at least one). `enroll-agent ca-info <scep_url>`",
                      "prints the fingerprints; check them out of band before pinning.",
                      "Several CAs (old and new issuing CA during a planned change): several",
                      "CERTIFICATE blocks in the file, or a list of fingerprints; with both, a CA",
                      "counts when it is in both. `enroll-agent check-config --contact-server` says",
                      "which pins the server's chain matches today. A next CA the server announces",
                      "(GetNextCACert, signed by a pinned CA) is trusted once the server presents",
                      "it: see \"CA rollover\" in the README."],
            example: .set("\"/etc/enroll-agent/issuing-ca.pem\""),
            decode: { reader, profile in
                profile.caPin.file = reader.absolutePath("ca_pin_file")
            }),
        Key(name: "ca_pin_sha256", type: .stringOrList, defaultValue: .none,
            summary: "the pinned issuing CA as SHA-256 fingerprints (hex, colons allowed; a list during a CA rollover)",
            comment: [],
            example: .commented("\"3f9a0c…64 hex digits…\"   # colons and spaces allowed; a list is accepted too"),
            decode: { reader, profile in
                if let fingerprints = fingerprintList(reader, "ca_pin_sha256") {
                    profile.caPin.sha256Fingerprints = fingerprints
                }
            }),
        Key(name: "ra_pin_sha256", type: .stringOrList, defaultValue: .none,
            summary: "RA certificates trusted without an RA purpose (see \"What the agent trusts\")",
            comment: ["RA certificates. Chaining to the pinned CA is not enough for an RA (every",
                      "enrolled host holds a certificate that does): an RA is trusted only when it",
                      "carries an RA purpose (id-kp-cmcRA, or Certificate Request Agent as NDES RA",
                      "certificates do) or its SHA-256 is listed here. When the server offers only",
                      "untrusted RAs, nothing is sent and the error prints the line to add;",
                      "`enroll-agent ca-info --profile NAME` shows each certificate's role."],
            example: .commented("[\"5b1e…64 hex digits…\"]"),
            decode: { reader, profile in
                if let fingerprints = fingerprintList(reader, "ra_pin_sha256") {
                    profile.caPin.raSHA256Fingerprints = fingerprints
                }
            }),
    ]}

    // MARK: - What the certificate says

    private static var request: [Key] {[
        Key(name: "subject", type: .template, defaultValue: .value("\"\(ProfileConfig.defaultSubject)\""),
            summary: "subject DN template (RFC 4514, with Intune's and Microsoft's attribute names: see \"Intune profiles\"), e.g. `CN={{UserPrincipalName}},G={{GivenName}},SN={{SurName}}`",
            comment: ["Subject DN (RFC 4514) of the request. Default: \"CN={{Hostname}}\". Attribute",
                      "names as in Intune's subject name format (Microsoft's X.500 keys), any case:",
                      "CN, SN (surname), SERIALNUMBER, C, L, S/ST, STREET, O, OU, T, G/GN, I, E, DC,",
                      "Description, PostalCode, POBox, Phone, UID, … or a dotted OID, e.g.",
                      "subject = \"CN={{UserPrincipalName}},G={{GivenName}},SN={{SurName}}\""],
            example: .set("\"CN={{UserPrincipalName}},O=Example\""),
            decode: { reader, profile in
                guard let (subject, line) = reader.string("subject") else { return }
                do {
                    let template = try TextTemplate(subject)
                    // Render with a neutral value to check the DN's shape now rather than at enrollment.
                    let sample = Dictionary(uniqueKeysWithValues: template.variableNames.map { ($0, "x") })
                    _ = try SubjectName.parse(try template.render(sample))
                    profile.subjectTemplate = subject
                } catch {
                    reader.report("subject", line: line, ConfigDecoder.message(error))
                }
            }),
        sanKey("san_upn", \.upn, summary: "UPN SAN templates: otherName 1.3.6.1.4.1.311.20.2.3, what Entra CBA and Okta bind to",
               comment: ["Subject alternative names (lists of templates; empty lists may be omitted).",
                         "san_upn: otherName UPN (1.3.6.1.4.1.311.20.2.3), what Entra CBA / Okta bind to."],
               example: .set("[\"{{UserPrincipalName}}\"]")),
        sanKey("san_dns", \.dns, summary: "DNS name SAN templates", comment: [],
               example: .set("[\"{{Hostname}}.example.com\"]")),
        sanKey("san_email", \.email, summary: "RFC 822 name SAN templates", comment: [], example: .set("[]")),
        sanKey("san_uri", \.uri, summary: "URI SAN templates", comment: [],
               example: .setWithAlternatives("[]", ["[\"urn:device:{{MachineID}}\"]"])),
    ]}

    private static func sanKey(_ name: String, _ path: WritableKeyPath<SubjectAlternativeNameTemplates, [String]>,
                               summary: String, comment: [String], example: ConfigExample) -> Key {
        Key(name: name, type: .templateList, defaultValue: .value("[]"), summary: summary, comment: comment, example: example,
            decode: { reader, profile in
                guard let (values, _) = reader.stringArray(name, acceptSingleString: true) else { return }
                var templates: [String] = []
                for (text, line) in values {
                    do {
                        _ = try TextTemplate(text)
                        templates.append(text)
                    } catch {
                        reader.report(name, line: line, ConfigDecoder.message(error))
                    }
                }
                profile.subjectAlternativeNames[keyPath: path] = templates
            })
    }

    // MARK: - The key

    private static var key: [Key] {[
        Key(name: "key_storage", type: .choice(KeyStoragePolicy.allCases.map(\.rawValue)),
            defaultValue: .value("\"\(KeyStoragePolicy.tpmPreferred.rawValue)\""),
            summary: "`tpm` (required), `tpm-preferred` (software fallback, logged loudly and shown by `status`), `software`",
            comment: ["Where the private key lives:",
                      "  \"tpm\"           — a non-exportable TPM key, or fail;",
                      "  \"tpm-preferred\" — a TPM key; a software key when no TPM is present",
                      "                    (logged loudly and shown by `enroll-agent status`);",
                      "  \"software\"      — an OpenSSL key, PKCS#8 PEM, mode 0600."],
            example: .set("\"tpm-preferred\""),
            decode: { reader, profile in
                if let storage = reader.enumeration("key_storage", KeyStoragePolicy.self) { profile.keyStorage = storage }
            }),
        Key(name: "key_type", type: .choice(KeyType.allCases.map(\.rawValue)), defaultValue: .value("\"rsa\""),
            summary: "`rsa` (`key_bits`) or `ec` (`ec_curve`)",
            comment: ["\"rsa\" (key_bits: 2048, or 3072 where the TPM supports it) or \"ec\" (ec_curve).",
                      "An EC key signs the request; the CA's reply, which SCEP encrypts with RSA,",
                      "goes to a temporary software RSA key kept (0600) with the pending request",
                      "and deleted once the certificate is installed. EC certificates renew with a",
                      "PKCSReq and a fresh challenge (a RenewalReq's reply would go to the EC key)."],
            example: .set("\"rsa\""),
            decode: { reader, profile in
                if let type = reader.enumeration("key_type", KeyType.self) { profile.keyType = type }
            }),
        Key(name: "ec_curve", type: .choice(EllipticCurve.allCases.map(\.rawValue)), defaultValue: .value("\"P-256\""),
            summary: "the curve of an EC key: `P-256` or `P-384` (not every TPM has P-384)",
            comment: ["With key_type = \"ec\": \"P-256\" (every TPM 2.0) or \"P-384\" (optional in TPMs)."],
            example: .commented("\"P-256\""),
            decode: { reader, profile in
                if let curve = reader.enumeration("ec_curve", EllipticCurve.self) { profile.ecCurve = curve }
            }),
        Key(name: "key_bits", type: .integer, defaultValue: .value("2048"),
            summary: "RSA key size: 2048 or 3072",
            example: .set("2048"),
            decode: { reader, profile in
                guard let (bits, line) = reader.integer("key_bits") else { return }
                if bits == 2048 || bits == 3072 {
                    profile.keyBits = bits
                } else {
                    reader.report("key_bits", line: line, "expected 2048 or 3072, got \(bits)")
                }
            }),
        Key(name: "tcti", type: .string, defaultValue: .value("\"\(ProfileConfig.defaultTCTI)\""),
            summary: "how to reach the TPM, as a tpm2-tss TCTI string",
            comment: ["How to reach the TPM (a tpm2-tss TCTI string). The systemd units expose only",
                      "/dev/tpmrm0 (the kernel resource manager); another device or tpm2-abrmd",
                      "needs the unit's BindPaths=/DeviceAllow= (or D-Bus access) changed too."],
            example: .setWithAlternatives("\"device:/dev/tpmrm0\"",
                                          ["\"swtpm:path=/run/swtpm/tpm.sock\"    # tests: swtpm on a Unix socket"]),
            decode: { reader, profile in
                guard let (tcti, line) = reader.string("tcti") else { return }
                if tcti.trimmingCharacters(in: .whitespaces).isEmpty {
                    reader.report("tcti", line: line,
                                  "expected a TCTI such as \"device:/dev/tpmrm0\" or \"swtpm:host=127.0.0.1,port=2321\", got an empty string")
                } else {
                    profile.tcti = tcti
                }
            }),
        Key(name: "reuse_key", type: .boolean, defaultValue: .value("false"),
            summary: "renew with the current key instead of a new one",
            comment: ["Renew with the current key instead of creating a new one (default: re-key)."],
            example: .set("false"),
            decode: { reader, profile in
                if let reuse = reader.boolean("reuse_key") { profile.reuseKey = reuse }
            }),
    ]}

    // MARK: - Extensions asked for

    private static var contents: [Key] {[
        Key(name: "key_usage", type: .choiceList(RequestedKeyUsage.allCases.map(\.rawValue)),
            defaultValue: .value("[\"digitalSignature\", \"keyEncipherment\"]"),
            summary: "the key usage bits the request asks for, exactly as written (a list)",
            comment: ["Extensions asked for in the request (the CA may override them)."],
            example: .set("[\"digitalSignature\", \"keyEncipherment\"]"),
            decode: { reader, profile in
                guard let (values, line) = reader.stringArray("key_usage") else { return }
                var usages: [RequestedKeyUsage] = []
                let choices = RequestedKeyUsage.allCases.map(\.rawValue)
                for (text, elementLine) in values {
                    guard let usage = RequestedKeyUsage(rawValue: text) else {
                        reader.report("key_usage", line: elementLine,
                                      "expected \(ConfigTableReader.choiceList(choices)), got \"\(text)\"\(didYouMean(text, among: choices))")
                        continue
                    }
                    if !usages.contains(usage) { usages.append(usage) }
                }
                if values.isEmpty {
                    reader.report("key_usage", line: line, "expected at least one of \(ConfigTableReader.choiceList(choices))")
                } else if usages.count == Set(values.map(\.0)).count {
                    profile.keyUsage = RequestedKeyUsage.keyUsage(usages)
                }
            }),
        Key(name: "extended_key_usage", type: .stringList, defaultValue: .value("[\"clientAuth\"]"),
            summary: "EKUs by name (\(ExtendedKeyUsageName.all.map(\.name).joined(separator: ", "))) or dotted OID",
            comment: ["Names: \(ExtendedKeyUsageName.all.map(\.name).joined(separator: ", "));",
                      "or dotted OIDs."],
            example: .set("[\"clientAuth\"]"),
            decode: { reader, profile in
                guard let (values, _) = reader.stringArray("extended_key_usage") else { return }
                var usages: [ExtendedKeyUsage.Usage] = []
                let names = ExtendedKeyUsageName.all.map(\.name)
                for (text, line) in values {
                    let usage = ExtendedKeyUsageName.all.first { $0.name.caseInsensitiveCompare(text) == .orderedSame }?.usage
                        ?? ObjectIdentifierText.parse(text).map(ExtendedKeyUsage.Usage.init(oid:))
                    guard let usage else {
                        reader.report("extended_key_usage", line: line,
                                      "expected one of \(names.joined(separator: ", ")) or a dotted OID, got \"\(text)\"\(didYouMean(text, among: names))")
                        continue
                    }
                    if !usages.contains(usage) { usages.append(usage) }
                }
                profile.extendedKeyUsage = usages
            }),
        Key(name: "certificate_policies", type: .stringList, defaultValue: .value("[]"),
            summary: "certificate policy OIDs, e.g. for conditional-access rules",
            comment: ["Certificate policy OIDs, e.g. for conditional-access rules."],
            example: .setWithAlternatives("[]", ["[\"1.3.6.1.4.1.311.21.8.1\"]"]),
            decode: { reader, profile in
                guard let (values, _) = reader.stringArray("certificate_policies") else { return }
                var policies: [ASN1ObjectIdentifier] = []
                for (text, line) in values {
                    guard let policy = ObjectIdentifierText.parse(text) else {
                        reader.report("certificate_policies", line: line,
                                      "expected a dotted OID such as \"1.3.6.1.4.1.311.21.8.1\", got \"\(text)\"")
                        continue
                    }
                    if !policies.contains(policy) { policies.append(policy) }
                }
                profile.certificatePolicies = policies
            }),
    ]}

    // MARK: - Renewal

    private static var renewal: [Key] {[
        Key(name: "renew_before", type: .duration, defaultValue: .described("two thirds of the lifetime"),
            summary: "renew this long before notAfter (ignored when longer than the lifetime)",
            comment: ["Renewal. Default: at two thirds of the lifetime. renew_before counts back",
                      "from notAfter (ignored when longer than the lifetime)."],
            example: .commented("\"30d\""),
            decode: { reader, profile in profile.renewBefore = reader.duration("renew_before") }),
        Key(name: "renewal_threshold_percent", type: .integer, defaultValue: .none,
            summary: "Intune's renewal threshold: renew when this share (1–99) of the lifetime remains; not together with `renew_before`",
            comment: ["Intune's \"Renewal threshold (%)\": renew when this share of the lifetime",
                      "remains (1-99; Intune's default is 20). Set it or renew_before, not both."],
            example: .commented("20"),
            decode: { reader, profile in
                guard let (percent, line) = reader.integer("renewal_threshold_percent") else { return }
                // RenewalPolicy.renewalThresholdRange; Config/ stays free of the Renewal module
                // (the fuzz package builds it on its own). Both keys set: RenewalSchedule.validate.
                guard (1...99).contains(percent) else {
                    reader.report("renewal_threshold_percent", line: line,
                                  "expected an integer from 1 to 99 (the share of the lifetime left when renewal starts; "
                                  + "Intune's default is 20), got \(percent)")
                    return
                }
                profile.renewalThresholdPercent = percent
            }),
        Key(name: "renew_jitter", type: .duration, defaultValue: .described("5% of the lifetime, at most 6h"),
            summary: "largest random advance of the renewal time, picked once per certificate; `\"0s\"` disables it",
            comment: ["Largest random advance of the renewal time, picked once per certificate so a",
                      "fleet does not renew at once. Default: 5% of the lifetime, at most 6h; \"0s\"",
                      "disables it."],
            example: .commented("\"6h\""),
            decode: { reader, profile in profile.renewJitter = reader.duration("renew_jitter", allowZero: true) }),
        Key(name: "renewal_mode", type: .choice(RenewalMode.allCases.map(\.rawValue)), defaultValue: .value("\"auto\""),
            summary: "which SCEP message renews: RenewalReq when advertised (`auto`), always RenewalReq, or always PKCSReq",
            comment: ["Which SCEP message renews:",
                      "  \"auto\"       — RenewalReq (signed with the current certificate) when the",
                      "                 server advertises Renewal, else PKCSReq with a new challenge",
                      "                 (also after a CA rollover: the new CA may refuse a RenewalReq",
                      "                 signed by the old CA's certificate);",
                      "  \"renewalreq\" — always RenewalReq;",
                      "  \"pkcsreq\"    — always PKCSReq with a fresh challenge."],
            example: .set("\"auto\""),
            decode: { reader, profile in
                guard let mode = reader.enumeration("renewal_mode", RenewalMode.self) else { return }
                if mode == .renewalReq, profile.keyType == .ec {
                    reader.report("renewal_mode", line: reader.string("renewal_mode")?.1,
                                  "\"renewalreq\" cannot renew an EC certificate: a RenewalReq is signed by the current key and its reply encrypted to it, which an EC key cannot receive; use \"auto\" or \"pkcsreq\" (a PKCSReq with a fresh challenge)")
                    return
                }
                profile.renewalMode = mode
            }),
    ]}

    // MARK: - Protocol

    private static var protocolKeys: [Key] {[
        Key(name: "allow_weak_algorithms", type: .boolean, defaultValue: .value("false"),
            summary: "allow a server that offers only 3DES/SHA-1 (old NDES); DES and MD5 are never sent",
            comment: ["Algorithms. What the agent sends never uses DES or MD5: a server offering",
                      "only DES3/SHA-1 is refused unless this is true."],
            example: .set("false"),
            decode: { reader, profile in
                if let weak = reader.boolean("allow_weak_algorithms") { profile.allowWeakAlgorithms = weak }
            }),
        Key(name: "content_encryption", type: .choice(ContentEncryption.allCases.map(\.rawValue)), defaultValue: .value("\"aes128\""),
            summary: "the cipher of the request's envelope",
            comment: ["Cipher for the request's envelope: \"aes128\" or \"aes256\"."],
            example: .set("\"aes128\""),
            decode: { reader, profile in
                if let cipher = reader.enumeration("content_encryption", ContentEncryption.self) { profile.contentEncryption = cipher }
            }),
        Key(name: "poll_initial_interval", type: .duration, defaultValue: .value("\"10s\""),
            summary: "first delay between CertPolls while the CA says PENDING (at most `poll_max_wait`)",
            comment: ["Polling while the CA answers PENDING (the transaction survives restarts).",
                      "poll_max_wait bounds how long one command run waits; the daemon polls on."],
            example: .set("\"10s\""),
            decode: { reader, profile in
                if let interval = reader.duration("poll_initial_interval") { profile.pollInitialInterval = interval }
            }),
        Key(name: "poll_max_wait", type: .duration, defaultValue: .value("\"1h\""),
            summary: "how long one command run waits for a PENDING request",
            example: .set("\"1h\""),
            decode: { reader, profile in
                if let maxWait = reader.duration("poll_max_wait") { profile.pollMaxWait = maxWait }
            }),
        Key(name: "pending_max_age", type: .duration, defaultValue: .value("\"7d\""),
            summary: "a request open longer than this is abandoned and a fresh one follows",
            comment: ["A request the CA keeps PENDING (or never answers) this long is abandoned and a",
                      "fresh one (new key, new challenge) follows; also never past the end of the",
                      "certificate it renews, minus a margin."],
            example: .set("\"7d\""),
            decode: { reader, profile in
                if let maxAge = reader.duration("pending_max_age") { profile.pendingMaxAge = maxAge }
            }),
    ]}

    // MARK: - Revocation

    private static var revocation: [Key] {[
        Key(name: "revocation_check_interval", type: .duration, defaultValue: .value("\"12h\""),
            summary: "how often `renew` and the daemon check the live certificate against its CRL (also once the cached CRL's nextUpdate has passed); `\"0s\"`: every run",
            comment: ["Revocation: renew and run check the live certificate against the CRL its CRL",
                      "distribution point names (HTTP only, at most 20 MiB, verified against the pin)",
                      "this often, and when the cached CRL's nextUpdate has passed. \"0s\": every run."],
            example: .set("\"12h\""),
            decode: { reader, profile in
                if let interval = reader.duration("revocation_check_interval", allowZero: true) {
                    profile.revocation.checkInterval = interval
                }
            }),
        Key(name: "on_revoked", type: .choice(OnRevoked.allCases.map(\.rawValue)), defaultValue: .value("\"reenroll\""),
            summary: "a revoked certificate: `reenroll` (a fresh PKCSReq, new key, new challenge) or `report` (logged and shown by `status` only)",
            comment: ["A revoked certificate: \"reenroll\" (a fresh PKCSReq, new key, new challenge)",
                      "or \"report\" (logged and shown by status only)."],
            example: .set("\"reenroll\""),
            decode: { reader, profile in
                if let policy = reader.enumeration("on_revoked", OnRevoked.self) { profile.revocation.onRevoked = policy }
            }),
    ]}

    // MARK: - Transport

    private static var transport: [Key] {[
        Key(name: "http_timeout", type: .duration, defaultValue: .value("\"30s\""),
            summary: "timeout of each HTTP request (SCEP server and challenge endpoint)",
            comment: ["Timeout of each HTTP request (SCEP server and challenge endpoint)."],
            example: .set("\"30s\""),
            decode: { reader, profile in
                if let timeout = reader.duration("http_timeout") { profile.httpTimeout = timeout }
            }),
        Key(name: "tls_ca_file", type: .absolutePath, defaultValue: .described("the system roots"),
            summary: "CA bundle for HTTPS to the SCEP server and the challenge endpoint",
            comment: ["CA bundle for HTTPS to the SCEP server and the challenge endpoint.",
                      "Default: the system roots."],
            example: .commented("\"/etc/enroll-agent/tls-roots.pem\""),
            decode: { reader, profile in profile.tlsCAFile = reader.absolutePath("tls_ca_file") }),
        Key(name: "proxy", type: .url, defaultValue: .described("`https_proxy`/`http_proxy`/`no_proxy` from the environment"),
            summary: "the HTTP proxy for every request of the profile (SCEP, challenge endpoint, CRL); `\"\"` goes direct; also top-level for all profiles",
            comment: ProxyKeys.proxyComment,
            example: .commented("\"http://proxy.example.com:3128\""),
            decode: { reader, profile in
                if let setting = ProxyKeys.decodeProxy(reader) { profile.proxy = setting }
            }),
        Key(name: "proxy_credentials_file", type: .absolutePath, defaultValue: .none,
            summary: "file holding `user:password` for the proxy (never in the config or argv); also top-level",
            comment: ["Proxy credentials, one line \"user:password\", in a root:enroll-agent 0640 file."],
            example: .commented("\"/etc/enroll-agent/proxy-credentials\""),
            decode: { reader, profile in profile.proxyCredentialsFile = reader.absolutePath("proxy_credentials_file") }),
    ]}

    // MARK: - After install

    private static var hook: [Key] {[
        Key(name: "post_install", type: .command, defaultValue: .value("[]"),
            summary: "a program (argv, no shell) run after each install",
            comment: postInstallComment,
            example: .set("[]"),
            decode: { reader, profile in
                if let argv = reader.argv("post_install", allowEmpty: true) { profile.postInstall = argv }
            }),
        Key(name: "hook_environment", type: .stringList, defaultValue: .value("[]"),
            summary: "environment variables passed on to `post_install` besides PATH and ENROLL_AGENT_*",
            comment: ["The hook's environment is PATH, ENROLL_AGENT_PROFILE, ENROLL_AGENT_CERTIFICATE,",
                      "ENROLL_AGENT_KEY, ENROLL_AGENT_FULLCHAIN and ENROLL_AGENT_CERTIFICATE_USER_ID (the",
                      "certificate's Entra certificateUserIds value X509:<I>…<SR>…), and nothing else of",
                      "the agent's environment unless named here."],
            example: .commented("[\"HTTPS_PROXY\"]"),
            decode: { reader, profile in
                guard let (names, _) = reader.stringArray("hook_environment") else { return }
                for (name, line) in names {
                    if EnvironmentName.isValid(name) {
                        if !profile.hookEnvironment.contains(name) { profile.hookEnvironment.append(name) }
                    } else {
                        reader.report("hook_environment", line: line,
                                      "expected an environment variable name (letters, digits and '_', not starting with a digit), got \"\(name)\"")
                    }
                }
            }),
    ]}

    private static let postInstallComment = [
        "Command run (argv, no shell) after a new certificate is installed.",
        "It runs inside the service's sandbox: as user enroll-agent, without any",
        "capability, with a read-only file system outside /var/lib/enroll-agent. So",
        "  post_install = [\"/usr/bin/systemctl\", \"reload\", \"nginx\"]",
        "fails unless polkit lets enroll-agent reload nginx. Prefer a hook that only",
        "touches a file, and a systemd path unit that reloads nginx, as root, when",
        "that file changes:",
        "",
        "  post_install = [\"/usr/bin/touch\", \"/var/lib/enroll-agent/device.installed\"]",
        "",
        "  # /etc/systemd/system/nginx-cert-reload.path",
        "  [Path]",
        "  PathChanged=/var/lib/enroll-agent/device.installed",
        "  [Install]",
        "  WantedBy=multi-user.target",
        "",
        "  # /etc/systemd/system/nginx-cert-reload.service",
        "  [Service]",
        "  Type=oneshot",
        "  ExecStart=/usr/bin/systemctl reload nginx",
        "",
        "  systemctl daemon-reload && systemctl enable --now nginx-cert-reload.path",
        "",
        "(Watching the profile folder itself would fire on every lock and state.json",
        "write; the touched file changes only after a completed install.)",
    ]

    // MARK: - Sub-tables

    /// Declared here for the key list and the docs; the example file shows them as their own
    /// sections, and the decoder reads them (`ChallengeKeys`, `decodeVariables`).
    private static var tables: [Key] {[
        Key(name: "challenge", type: .table, defaultValue: .required,
            summary: "`[profile.challenge]`: where the one-time challenge comes from (keys below)",
            decode: { _, _ in }),
        Key(name: "variables", type: .table, defaultValue: .none,
            summary: "`[profile.variables]`: values for the templates; the challenge endpoint's `variables` win. "
                + "Built in: \(HostIdentity.builtInVariableNames.joined(separator: ", "))",
            decode: { _, _ in }),
    ]}

    // MARK: - Helpers

    /// A string or list of SHA-256 fingerprints (any case, colons allowed); nil after a problem.
    private static func fingerprintList(_ reader: ConfigTableReader, _ key: String) -> [String]? {
        guard reader.table[key] != nil else { return nil }
        guard let (values, _) = reader.stringArray(key, acceptSingleString: true) else { return nil }
        var fingerprints: [String] = []
        var valid = true
        for (text, line) in values {
            do {
                let normalized = try CAPinFingerprint.normalize(text)
                if !fingerprints.contains(normalized) { fingerprints.append(normalized) }
            } catch {
                reader.report(key, line: line, ConfigDecoder.message(error))
                valid = false
            }
        }
        return valid ? fingerprints : nil
    }
}
