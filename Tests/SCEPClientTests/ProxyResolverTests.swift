import XCTest
@testable import SCEPClient

/// Which proxy a request takes: curl's environment rules, the configuration's override.
final class ProxyResolverTests: XCTestCase {
    func testTheRouteOfEachRequest() {
        let proxy = "http://proxy.example.com:3128"
        let table: [(url: String, setting: ProxySetting, environment: [String: String], expected: ProxyRoute?)] = [
            ("http://scep.example.com/scep", .environment, [:], nil),
            ("http://scep.example.com/scep", .environment, ["http_proxy": proxy], ProxyRoute(url: proxy, source: "http_proxy in the environment")),
            // Uppercase HTTP_PROXY is ignored (httpoxy), as curl does.
            ("http://scep.example.com/scep", .environment, ["HTTP_PROXY": proxy], nil),
            ("https://scep.example.com/scep", .environment, ["HTTPS_PROXY": proxy], ProxyRoute(url: proxy, source: "HTTPS_PROXY in the environment")),
            ("https://scep.example.com/scep", .environment, ["https_proxy": proxy, "HTTPS_PROXY": "http://other:1"], ProxyRoute(url: proxy, source: "https_proxy in the environment")),
            ("https://scep.example.com/scep", .environment, ["http_proxy": proxy], nil),
            ("https://scep.example.com/scep", .environment, ["all_proxy": proxy], ProxyRoute(url: proxy, source: "all_proxy in the environment")),
            ("http://scep.example.com/scep", .environment, ["http_proxy": ""], nil),
            ("http://scep.example.com/scep", .direct, ["http_proxy": proxy], nil),
            ("http://scep.example.com/scep", .url(proxy), [:], ProxyRoute(url: proxy, source: "proxy in the configuration")),
            ("http://scep.example.com/scep", .url(proxy), ["http_proxy": "http://other:1"], ProxyRoute(url: proxy, source: "proxy in the configuration")),
            // no_proxy: suffix match with or without the dot, exact hosts, *, spaces, case.
            ("http://scep.example.com/scep", .environment, ["http_proxy": proxy, "no_proxy": "example.com"], nil),
            ("http://scep.example.com/scep", .environment, ["http_proxy": proxy, "no_proxy": ".example.com"], nil),
            ("http://scep.example.com/scep", .environment, ["http_proxy": proxy, "NO_PROXY": "other.org, Example.COM"], nil),
            ("http://scep.example.com/scep", .environment, ["http_proxy": proxy, "no_proxy": "*"], nil),
            ("http://scep.example.com/scep", .environment, ["http_proxy": proxy, "no_proxy": "ample.com"], ProxyRoute(url: proxy, source: "http_proxy in the environment")),
            ("http://127.0.0.1:8080/scep", .environment, ["http_proxy": proxy, "no_proxy": "127.0.0.1"], nil),
            ("http://[::1]:8080/scep", .environment, ["http_proxy": proxy, "no_proxy": "::1"], nil),
            ("http://10.0.0.1/scep", .url(proxy), ["no_proxy": "10.0.0.1"], nil),
        ]
        for (url, setting, environment, expected) in table {
            XCTAssertEqual(ProxyResolver.route(for: url, setting: setting, environment: environment), expected,
                           "\(url) \(setting) \(environment)")
        }
    }

    func testMessagesNeverShowProxyCredentials() {
        let route = ProxyRoute(url: "http://agent:s3cret@proxy.example.com:3128", source: "https_proxy in the environment")
        XCTAssertEqual(route.displayURL, "http://proxy.example.com:3128")
        XCTAssertFalse(route.description.contains("s3cret"))
        XCTAssertEqual(ProxyRoute.withoutCredentials("socks5h://proxy:1080"), "socks5h://proxy:1080")
        XCTAssertEqual(ProxyRoute.withoutCredentials("proxy.example.com:3128"), "proxy.example.com:3128")
    }
}
