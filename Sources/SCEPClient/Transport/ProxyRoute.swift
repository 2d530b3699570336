import Foundation

/// What the configuration says about proxies (`proxy`, globally or per profile).
public enum ProxySetting: Sendable, Equatable {
    /// No `proxy` key: `https_proxy` / `http_proxy` / `all_proxy` and `no_proxy` from the
    /// environment, as curl reads them.
    case environment
    /// `proxy = ""`: always direct, whatever the environment says.
    case direct
    /// `proxy = "http://proxy.example.com:3128"` (`no_proxy` from the environment still applies).
    case url(String)
}

/// The proxy one request goes through, and where that came from (for messages).
public struct ProxyRoute: Sendable, Equatable, CustomStringConvertible {
    /// As given; may hold `user:password@` when it came from the environment.
    public var url: String
    /// "proxy in the configuration", "https_proxy in the environment", …
    public var source: String

    public init(url: String, source: String) {
        self.url = url
        self.source = source
    }

    /// The proxy without any credentials, for messages and logs.
    public var displayURL: String { Self.withoutCredentials(url) }

    public var description: String { "proxy \(displayURL) (\(source))" }

    /// `scheme://user:password@host:port` → `scheme://host:port`.
    static func withoutCredentials(_ url: String) -> String {
        let afterScheme = url.range(of: "://").map(\.upperBound) ?? url.startIndex
        let authorityEnd = url[afterScheme...].firstIndex(of: "/") ?? url.endIndex
        guard let at = url[afterScheme..<authorityEnd].lastIndex(of: "@") else { return url }
        return String(url[..<afterScheme]) + String(url[url.index(after: at)...])
    }
}

/// Which proxy, if any, a request to `url` takes: curl's rules, applied by us so that every
/// error can name the proxy it went through. The variables: `https_proxy` or `HTTPS_PROXY`
/// for https URLs, `http_proxy` for http ones (lowercase only: `HTTP_PROXY` can be set by a
/// CGI client's `Proxy:` header, httpoxy), else `all_proxy` / `ALL_PROXY`; `no_proxy` /
/// `NO_PROXY` lists hosts that go direct.
public enum ProxyResolver {
    public static func route(for url: String, setting: ProxySetting, environment: [String: String]) -> ProxyRoute? {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
              let host = components.percentEncodedHost?.lowercased() else { return nil }
        let candidate: ProxyRoute?
        switch setting {
        case .direct: return nil
        case .url(let proxy): candidate = ProxyRoute(url: proxy, source: "proxy in the configuration")
        case .environment: candidate = environmentProxy(scheme: scheme, environment: environment)
        }
        guard let candidate, !candidate.url.isEmpty else { return nil }
        let noProxy = environment["no_proxy"] ?? environment["NO_PROXY"] ?? ""
        return bypasses(host: host, noProxy: noProxy) ? nil : candidate
    }

    private static func environmentProxy(scheme: String, environment: [String: String]) -> ProxyRoute? {
        let names = scheme == "https" ? ["https_proxy", "HTTPS_PROXY"] : ["http_proxy"]
        for name in names + ["all_proxy", "ALL_PROXY"] {
            if let value = environment[name], !value.isEmpty {
                return ProxyRoute(url: value, source: "\(name) in the environment")
            }
        }
        return nil
    }

    /// curl's `no_proxy`: `*` matches every host; otherwise a comma-separated list of host
    /// names (matching the host and its subdomains; a leading dot is optional) and IP
    /// addresses (matched exactly); spaces around entries are ignored.
    static func bypasses(host: String, noProxy: String) -> Bool {
        let host = host.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        for rawEntry in noProxy.split(separator: ",") {
            var entry = rawEntry.trimmingCharacters(in: .whitespaces).lowercased()
            entry = entry.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
            if entry == "*" { return true }
            if entry.hasPrefix(".") { entry.removeFirst() }
            guard !entry.isEmpty else { continue }
            if host == entry || host.hasSuffix("." + entry) { return true }
        }
        return false
    }
}
