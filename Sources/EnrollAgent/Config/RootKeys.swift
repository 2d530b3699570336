import Foundation
import SCEPClient

/// The keys at the top of the file.
enum RootKeys {
    static let keys: [(name: String, type: ConfigValueType, defaultValue: ConfigDefault, summary: String)] = [
        ("state_dir", .absolutePath, .value("\"\(AgentConfig.defaultStateDirectory)\""),
         "store root; one folder per profile below it"),
        ("proxy", .url, .described("the environment's"), "the proxy of every profile that sets none (see `proxy` below)"),
        ("proxy_credentials_file", .absolutePath, .none, "the proxy credentials of every profile that sets none"),
        ("metrics_textfile", .absolutePath, .none,
         "a Prometheus text file (for node_exporter's textfile collector) rewritten after every enroll, renew and daemon check, e.g. `/var/lib/prometheus/node-exporter/enroll_agent.prom`"),
        ("profile", .table, .required, "`[[profile]]`: one table per certificate"),
    ]

    static var names: [String] { keys.map(\.name) }
}

/// `proxy` and `proxy_credentials_file`, top-level and per profile.
enum ProxyKeys {
    static let proxyComment = [
        "HTTP proxy for every request of the profile (SCEP server, challenge endpoint,",
        "CRL). Default: https_proxy / http_proxy / all_proxy and no_proxy from the",
        "environment (set them with Environment= in a drop-in: `systemctl edit",
        "enroll-agent`); \"\" goes direct whatever the environment says. Also valid at",
        "the top of the file, for every profile that sets none. Credentials never go",
        "here: use proxy_credentials_file.",
    ]

    /// `""` → direct; an http(s) or socks5 URL with a host and no credentials.
    static func decodeProxy(_ reader: ConfigTableReader) -> ProxySetting? {
        guard let (text, line) = reader.string("proxy") else { return nil }
        if text.isEmpty { return .direct }
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
              ["http", "https", "socks5", "socks5h"].contains(scheme),
              let host = components.percentEncodedHost, !host.isEmpty else {
            reader.report("proxy", line: line,
                          "expected a proxy URL such as \"http://proxy.example.com:3128\" (http, https, socks5 or socks5h), or \"\" to go direct, got \"\(text)\"")
            return nil
        }
        guard components.user == nil, components.password == nil else {
            reader.report("proxy", line: line,
                          "credentials in the proxy URL are not allowed in the configuration; put user:password into a file named by proxy_credentials_file")
            return nil
        }
        return .url(text)
    }
}
