import Foundation
import X509

/// The three HTTP operations of RFC 8894 §4 against one server URL.
public struct SCEPService: Sendable {
    public let url: String
    let transport: any HTTPTransport

    public init(url: String, transport: any HTTPTransport) {
        self.url = url
        self.transport = transport
    }

    /// GetCACaps (§3.5.1). An HTTP error or an empty body means "no capabilities";
    /// a server that cannot be reached is an error.
    public func capabilities() async throws -> CACapabilities {
        let response = try await transport.perform(HTTPRequest(method: .get, url: operationURL("GetCACaps")))
        // A server without GetCACaps answers 400/404/500/501: no capabilities (RFC 8894 §3.5.2).
        // Through a proxy, 403 and 502–504 are what a proxy answers when it refuses or cannot
        // reach the server: an error that names the proxy, not an empty list of capabilities.
        if response.proxy != nil, [403, 502, 503, 504].contains(response.status) {
            var error = SCEPError(.httpStatus, "GetCACaps from \(CurlTransport.redacted(url)) answered \(response.statusText); "
                                  + "check that the proxy lets the agent reach scep_url")
            error.httpStatus = response.status
            throw error
        }
        guard response.status == 200 else { return .none }
        return CACapabilities(text: String(decoding: response.body, as: UTF8.self))
    }

    /// GetCACert (§4.2): the certificates, not yet trusted.
    public func caCertificates() async throws -> [Certificate] {
        let response = try await transport.perform(HTTPRequest(method: .get, url: operationURL("GetCACert")))
        guard response.status == 200 else {
            throw SCEPError(.httpStatus, "GetCACert from \(CurlTransport.redacted(url)) answered \(response.statusText); check scep_url")
        }
        return try CACertificates.parseReply(response.body)
    }

    /// GetNextCACert (§4.7): the signed announcement of the next CA, not yet verified.
    public func nextCACertificate() async throws -> [UInt8] {
        let response = try await transport.perform(HTTPRequest(method: .get, url: operationURL("GetNextCACert")))
        guard response.status == 200 else {
            var error = SCEPError(.httpStatus, "GetNextCACert from \(CurlTransport.redacted(url)) answered \(response.statusText)")
            error.httpStatus = response.status
            throw error
        }
        return response.body
    }

    /// PKIOperation (§4.3): POST with the binary message when allowed, else GET
    /// with the base64 message percent-encoded in the query.
    func pkiOperation(_ message: [UInt8], usePOST: Bool) async throws -> [UInt8] {
        let request = Self.pkiOperationRequest(url: url, message: message, usePOST: usePOST)
        let response = try await transport.perform(request)
        guard response.status == 200 else {
            let excerpt = ServerText.excerpt(String(decoding: response.body.prefix(400), as: UTF8.self), limit: 200)
            var error = SCEPError(.httpStatus, "PKIOperation at \(CurlTransport.redacted(url)) answered \(response.statusText)"
                                  + (excerpt.isEmpty ? "" : ": \(excerpt)"))
            error.httpStatus = response.status
            throw error
        }
        return response.body
    }

    static func pkiOperationRequest(url: String, message: [UInt8], usePOST: Bool) -> HTTPRequest {
        if usePOST {
            return HTTPRequest(method: .post, url: operationURL(url, "PKIOperation"),
                               headers: ["Content-Type": "application/x-pki-message"], body: message, isIdempotent: false)
        }
        let encoded = percentEncode(Data(message).base64EncodedString())
        return HTTPRequest(method: .get, url: operationURL(url, "PKIOperation") + "&message=" + encoded, isIdempotent: false)
    }

    func operationURL(_ operation: String) -> String { Self.operationURL(url, operation) }

    static func operationURL(_ base: String, _ operation: String) -> String {
        base + (base.contains("?") ? "&" : "?") + "operation=" + operation
    }

    /// RFC 3986 unreserved characters stay; everything else (notably + / =) is %XX.
    static func percentEncode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."),
                 UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.append(Character(UnicodeScalar(byte)))
            default:
                out += "%" + Hex.encode([byte], uppercase: true)
            }
        }
        return out
    }
}
