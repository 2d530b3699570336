import Foundation
import X509
import XCTest

@testable import SCEPClient

/// RFC 8894 §4.1/§4.3 request encoding, checked offline (micromdm's server/transport_test.go habit).
final class PKIOperationEncodingTests: XCTestCase {
    /// Bytes whose standard base64 is "+/+/+/8=": every character that needs escaping.
    private let awkwardMessage: [UInt8] = [0xFB, 0xFF, 0xBF, 0xFB, 0xFF]

    func testPOSTCarriesTheBinaryMessage() {
        let message = ScepServerCapture.pkcsReq
        let request = SCEPService.pkiOperationRequest(url: "http://ca.example/scep", message: message, usePOST: true)
        XCTAssertEqual(request.method, .post)
        XCTAssertEqual(request.url, "http://ca.example/scep?operation=PKIOperation")
        XCTAssertEqual(request.headers, ["Content-Type": "application/x-pki-message"])
        XCTAssertEqual(request.body, message)
    }

    func testGETPercentEncodesStandardBase64() {
        XCTAssertEqual(Data(awkwardMessage).base64EncodedString(), "+/+/+/8=")
        let request = SCEPService.pkiOperationRequest(url: "http://ca.example/scep", message: awkwardMessage, usePOST: false)
        XCTAssertEqual(request.method, .get)
        XCTAssertEqual(request.url, "http://ca.example/scep?operation=PKIOperation&message=%2B%2F%2B%2F%2B%2F8%3D")
        XCTAssertTrue(request.body.isEmpty)
        XCTAssertTrue(request.headers.isEmpty)
    }

    func testGETMessageDecodesBackToTheMessage() throws {
        for message in [ScepServerCapture.pkcsReq, awkwardMessage, [0x00], Array(0...255)] {
            let request = SCEPService.pkiOperationRequest(url: "http://ca.example/scep", message: message, usePOST: false)
            XCTAssertEqual(try decodedMessage(from: request.url), message)
            // Nothing outside RFC 3986 unreserved + the query separators survives unescaped.
            let query = try XCTUnwrap(request.url.split(separator: "?", maxSplits: 1).last)
            XCTAssertFalse(query.contains("+"))
            XCTAssertFalse(query.contains("/"))
            XCTAssertEqual(query.filter { $0 == "=" }.count, 2, "only operation= and message=")
        }
    }

    func testBaseURLWithAQueryGetsAnAmpersand() throws {
        let base = "https://ndes.example/certsrv/mscep/mscep.dll?profile=devices"
        let get = SCEPService.pkiOperationRequest(url: base, message: awkwardMessage, usePOST: false)
        XCTAssertEqual(get.url, base + "&operation=PKIOperation&message=%2B%2F%2B%2F%2B%2F8%3D")
        XCTAssertEqual(try decodedMessage(from: get.url), awkwardMessage)
        let components = try XCTUnwrap(URLComponents(string: get.url))
        XCTAssertEqual(components.queryItems?.first(where: { $0.name == "profile" })?.value, "devices")

        let post = SCEPService.pkiOperationRequest(url: base, message: awkwardMessage, usePOST: true)
        XCTAssertEqual(post.url, base + "&operation=PKIOperation")
    }

    func testOperationURLs() {
        XCTAssertEqual(SCEPService.operationURL("http://h/scep", "GetCACaps"), "http://h/scep?operation=GetCACaps")
        XCTAssertEqual(SCEPService.operationURL("http://h/scep?a=b", "GetCACert"), "http://h/scep?a=b&operation=GetCACert")
    }

    func testPercentEncodeKeepsOnlyUnreservedCharacters() {
        XCTAssertEqual(SCEPService.percentEncode("AZaz09-._~"), "AZaz09-._~")
        XCTAssertEqual(SCEPService.percentEncode("+/= &?#%"), "%2B%2F%3D%20%26%3F%23%25")
        XCTAssertEqual(SCEPService.percentEncode("é"), "%C3%A9", "UTF-8 bytes, uppercase hex")
    }

    // MARK: Through SCEPService with a recording transport

    func testServiceSendsPKIOperationByPOSTOrGET() async throws {
        let transport = RecordingTransport { _ in HTTPResponse(status: 200, body: ScepServerCapture.certRep) }
        let service = SCEPService(url: "http://ca.example/scep", transport: transport)
        let byPOST = try await service.pkiOperation(awkwardMessage, usePOST: true)
        let byGET = try await service.pkiOperation(awkwardMessage, usePOST: false)
        XCTAssertEqual(byPOST, ScepServerCapture.certRep)
        XCTAssertEqual(byGET, ScepServerCapture.certRep)
        let requests = transport.requests
        XCTAssertEqual(requests.map(\.method), [.post, .get])
        XCTAssertEqual(requests.first?.body, awkwardMessage)
        XCTAssertEqual(try decodedMessage(from: try XCTUnwrap(requests.last?.url)), awkwardMessage)
    }

    func testServicePKIOperationHTTPErrorIsReported() async {
        let transport = RecordingTransport { _ in HTTPResponse(status: 500, body: Array("internal\nerror".utf8)) }
        let service = SCEPService(url: "http://ca.example/scep", transport: transport)
        do {
            _ = try await service.pkiOperation(awkwardMessage, usePOST: true)
            XCTFail("HTTP 500 must throw")
        } catch let error as SCEPError {
            XCTAssertEqual(error.code, .httpStatus)
            XCTAssertTrue(error.isTransient)
            XCTAssertTrue(error.message.contains("500"), error.message)
        } catch {
            XCTFail("\(error)")
        }
    }

    func testServiceCapabilitiesAndCACertificates() async throws {
        let transport = RecordingTransport { request in
            if request.url.hasSuffix("GetCACaps") { return HTTPResponse(status: 200, body: Array(ScepServerCapture.getCACapsReply.utf8)) }
            return HTTPResponse(status: 200, headers: ["content-type": "application/x-x509-ca-cert"], body: ScepServerCapture.caCertificate)
        }
        let service = SCEPService(url: "http://ca.example/scep", transport: transport)
        let capabilities = try await service.capabilities()
        XCTAssertEqual(capabilities, CACapabilities(text: ScepServerCapture.getCACapsReply))
        let certificates = try await service.caCertificates()
        XCTAssertEqual(certificates, [try Certificate(derEncoded: ScepServerCapture.caCertificate)])
        XCTAssertEqual(transport.requests.map(\.url), [
            "http://ca.example/scep?operation=GetCACaps", "http://ca.example/scep?operation=GetCACert",
        ])
        XCTAssertEqual(transport.requests.map(\.method), [.get, .get])
    }

    func testServiceCapabilitiesHTTPErrorMeansNone() async throws {
        let transport = RecordingTransport { _ in HTTPResponse(status: 404, body: Array("not found".utf8)) }
        let service = SCEPService(url: "http://ca.example/scep", transport: transport)
        let capabilities = try await service.capabilities()
        XCTAssertEqual(capabilities, .none)
    }

    /// The message= value of a GET PKIOperation URL, percent-decoded and base64-decoded.
    private func decodedMessage(from url: String) throws -> [UInt8] {
        let query = try XCTUnwrap(url.split(separator: "?", maxSplits: 1).last)
        let pair = try XCTUnwrap(query.split(separator: "&").first { $0.hasPrefix("message=") })
        let encoded = try XCTUnwrap(String(pair.dropFirst("message=".count)).removingPercentEncoding)
        return Array(try XCTUnwrap(Data(base64Encoded: encoded)))
    }
}

/// An `HTTPTransport` that answers from a closure and remembers every request.
final class RecordingTransport: HTTPTransport, @unchecked Sendable {
    private let lock = NSLock()
    private var recorded: [HTTPRequest] = []
    private let answer: @Sendable (HTTPRequest) -> HTTPResponse

    init(answer: @escaping @Sendable (HTTPRequest) -> HTTPResponse) {
        self.answer = answer
    }

    var requests: [HTTPRequest] { lock.withLock { recorded } }

    func perform(_ request: HTTPRequest) async throws -> HTTPResponse {
        lock.withLock { recorded.append(request) }
        return answer(request)
    }
}
