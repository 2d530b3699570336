import Foundation
import TestSupport
import XCTest

@testable import SCEPTestSupport

/// Every HTTP request of an enrollment (the challenge endpoint, GetCACaps, GetCACert,
/// PKIOperation) goes through the proxy the environment or the configuration names, and a
/// proxy that fails is named in the error, not mistaken for the server. The proxy is Debian's
/// tinyproxy on loopback.
final class ProxyTests: XCTestCase {
    private var workspace: TestServerWorkspace!

    override func setUpWithError() throws {
        workspace = try TestServerWorkspace(prefix: "proxy")
    }

    override func tearDown() { workspace = nil }

    /// The workspace's profile with the challenge from a JSON endpoint on loopback.
    private func config(for server: TestSCEPServer, endpoint: TestHTTPServer, extra: [String] = [], topLevel: [String] = []) throws -> String {
        let text = try workspace.config(for: server, extra: extra)
        let commandSource = try XCTUnwrap(text.range(of: "source = \"command\""))
        return topLevel.map { $0 + "\n" }.joined() + text[..<commandSource.lowerBound]
            + "source = \"endpoint\"\nurl = \"\(endpoint.urlString)/challenge\"\n"
    }

    private func challengeEndpoint() throws -> TestHTTPServer {
        try TestHTTPServer(response: .ok(Array(#"{"challenge": "pw"}"#.utf8), contentType: "application/json"))
    }

    func testTheEnvironmentsProxyCarriesEveryRequest() throws {
        let proxy = try PeerSkip.unlessCI { try Tinyproxy() }
        defer { proxy.stop() }
        let server = try TestSCEPServer(ca: try TestPKI.ca())
        defer { server.stop() }
        let endpoint = try challengeEndpoint()
        defer { endpoint.stop() }

        let run = try AgentProcess.run(arguments: ["enroll"], config: try config(for: server, endpoint: endpoint),
                                       environment: ["http_proxy": proxy.url, "no_proxy": ""])
        XCTAssertEqual(run.exitCode, 0, run.transcript)
        let forwarded = proxy.forwardedRequests
        XCTAssertTrue(forwarded.contains { $0.contains("\(endpoint.urlString)/challenge") }, "\(forwarded)")
        XCTAssertTrue(forwarded.contains { $0.contains("operation=GetCACaps") }, "\(forwarded)")
        XCTAssertTrue(forwarded.contains { $0.contains("operation=GetCACert") }, "\(forwarded)")
        XCTAssertTrue(forwarded.contains { $0.hasPrefix("POST ") && $0.contains("operation=PKIOperation") }, "\(forwarded)")
        XCTAssertEqual(endpoint.requests.count, 1)
    }

    /// `proxy` in the configuration (top-level here) without any variable; `proxy = ""` in
    /// a profile goes direct even when the environment names a proxy.
    func testTheConfiguredProxyAndTheDirectOverride() throws {
        let proxy = try PeerSkip.unlessCI { try Tinyproxy() }
        defer { proxy.stop() }
        let server = try TestSCEPServer(ca: try TestPKI.ca())
        defer { server.stop() }
        let endpoint = try challengeEndpoint()
        defer { endpoint.stop() }

        let configured = try AgentProcess.run(arguments: ["enroll"],
                                              config: try config(for: server, endpoint: endpoint, topLevel: ["proxy = \"\(proxy.url)\""]))
        XCTAssertEqual(configured.exitCode, 0, configured.transcript)
        let viaConfig = proxy.forwardedRequests.count
        XCTAssertGreaterThanOrEqual(viaConfig, 4, "\(proxy.forwardedRequests)")

        let direct = try AgentProcess.run(arguments: ["enroll", "--force"],
                                          config: try config(for: server, endpoint: endpoint, extra: ["proxy = \"\""]),
                                          environment: ["http_proxy": proxy.url])
        XCTAssertEqual(direct.exitCode, 0, direct.transcript)
        XCTAssertEqual(proxy.forwardedRequests.count, viaConfig, "proxy = \"\" still went through the proxy: \(proxy.forwardedRequests)")
        XCTAssertEqual(endpoint.requests.count, 2)
    }

    /// A proxy that refuses us (tinyproxy's Allow list) and one that is not there: the error
    /// names the proxy and where it came from; no challenge is fetched from behind it.
    func testAFailingProxyIsNamedNotTheServer() throws {
        let refusing = try PeerSkip.unlessCI { try Tinyproxy(allow: "10.255.255.1") }
        defer { refusing.stop() }
        let server = try TestSCEPServer(ca: try TestPKI.ca())
        defer { server.stop() }
        let endpoint = try challengeEndpoint()
        defer { endpoint.stop() }
        let text = try config(for: server, endpoint: endpoint, extra: ["http_timeout = \"5s\""])

        let refused = try AgentProcess.run(arguments: ["enroll"], config: text, environment: ["http_proxy": refusing.url])
        XCTAssertNotEqual(refused.exitCode, 0, refused.transcript)
        XCTAssertTrue(refused.standardError.contains("through proxy \(refusing.url) (http_proxy in the environment)"), refused.transcript)
        XCTAssertEqual(server.pkiOperations.count, 0)
        XCTAssertEqual(endpoint.requests.count, 0, "the challenge was fetched past a refusing proxy")

        let deadPort = refusing.port
        refusing.stop()
        let dead = try AgentProcess.run(arguments: ["enroll"], config: text, environment: ["http_proxy": "http://127.0.0.1:\(deadPort)"])
        XCTAssertEqual(dead.exitCode, 69, dead.transcript)
        XCTAssertTrue(dead.standardError.contains("cannot connect to proxy http://127.0.0.1:\(deadPort) (http_proxy in the environment)"), dead.transcript)
    }

    /// Proxy credentials come from a file and reach the proxy, never a message.
    func testProxyCredentialsFromAFileAreNeverShown() throws {
        let server = try TestSCEPServer(ca: try TestPKI.ca())
        defer { server.stop() }
        let endpoint = try challengeEndpoint()
        defer { endpoint.stop() }
        // A "proxy" that records what it is sent and asks for credentials (407).
        let fakeProxy = try TestHTTPServer(response: TestHTTPResponse(status: 407, headers: ["Proxy-Authenticate": "Basic realm=\"proxy\""]))
        defer { fakeProxy.stop() }
        let credentials = workspace.appending("proxy-credentials")
        try "scep-agent:pr0xy-s3cret\n".write(toFile: credentials, atomically: true, encoding: .utf8)
        chmod(credentials, 0o600)
        let text = try config(for: server, endpoint: endpoint,
                              extra: ["proxy = \"\(fakeProxy.urlString)\"", "proxy_credentials_file = \"\(credentials)\""])
        let run = try AgentProcess.run(arguments: ["enroll"], config: text)
        XCTAssertEqual(run.exitCode, 69, run.transcript)
        XCTAssertTrue(run.standardError.contains("asks for authentication (HTTP 407)"), run.transcript)
        XCTAssertFalse(run.transcript.contains("pr0xy-s3cret"), "the proxy password reached the output")
        let sent = fakeProxy.requests.first?.headers["Proxy-Authorization"]
        XCTAssertEqual(sent, "Basic " + Data("scep-agent:pr0xy-s3cret".utf8).base64EncodedString())
    }
}
