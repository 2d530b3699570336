import Foundation
import Glibc
import Logging
import SCEPClient
import TestSupport
import XCTest

@testable import EnrollAgent

/// The endpoint source with HTTP Basic and the `text` and `ndes-admin` formats, over the real
/// libcurl transport against `NDESAdminPageServer` on loopback.
final class BasicAuthChallengeTests: XCTestCase {
    private var workspace: TemporaryDirectory!
    private var server: NDESAdminPageServer?
    private var log = LogCapture()
    private var passwordPath: String { workspace.appending("challenge-password") }
    private static let behaviour = NDESAdminPageServer.Behaviour()

    override func setUpWithError() throws {
        workspace = try TemporaryDirectory(prefix: "challenge-basic")
        log = LogCapture()
        try "\(Self.behaviour.password)\n".write(toFile: passwordPath, atomically: true, encoding: .utf8)
    }

    override func tearDown() {
        server?.stop()
        workspace?.remove()
    }

    private func serve(_ change: (inout NDESAdminPageServer.Behaviour) -> Void = { _ in }) throws -> NDESAdminPageServer {
        var behaviour = Self.behaviour
        change(&behaviour)
        let server = try NDESAdminPageServer(behaviour)
        self.server = server
        return server
    }

    private func provider(_ server: NDESAdminPageServer, format: ChallengeFormat = .ndesAdmin,
                          username: String = behaviour.username, sleeper: RecordingSleeper = RecordingSleeper()) -> EndpointChallengeProvider {
        var options = CurlTransport.Options()
        options.totalTimeout = 10
        options.connectTimeout = 5
        let log = self.log
        return EndpointChallengeProvider(
            url: server.url, auth: .basic(username: username, passwordFile: passwordPath), format: format,
            transport: CurlTransport(options: options), sleeper: sleeper,
            logger: Logger(label: "basic-test") { _ in log.handler })
    }

    /// Neither the account's password nor any page text reached the error or the log.
    private func assertNoLeak(_ error: AgentError?, page: String? = nil, file: StaticString = #filePath, line: UInt = #line) {
        let texts = [error?.message ?? "", error?.description ?? "", log.text]
        for text in texts {
            XCTAssertFalse(text.contains(Self.behaviour.password), "the password leaked: \(text)", file: file, line: line)
            for issued in server?.issuedChallenges ?? [] {
                XCTAssertFalse(text.contains(issued), "a challenge leaked: \(text)", file: file, line: line)
            }
            if let page {
                XCTAssertFalse(text.contains(page), "the page leaked: \(text)", file: file, line: line)
            }
        }
    }

    // MARK: - Challenges

    func testBasicAndTextGivesTheLineTheServerIssued() async throws {
        let server = try serve { $0.page = .plainText }
        let issued = try await provider(server, format: .text).fetchChallenge()

        XCTAssertEqual(issued?.secret.value, try XCTUnwrap(server.issuedChallenges.first))
        XCTAssertEqual(issued?.variables, [:])
        let request = try XCTUnwrap(server.requests.first)
        XCTAssertEqual(server.requests.count, 1, "Basic is sent with the first request, no 401 round trip")
        XCTAssertEqual(request.method, "GET")
        XCTAssertEqual(request.target, "/certsrv/mscep_admin/", "credentials never go into the URL")
        // The password file's trailing newline is not part of the password.
        let credentials = try XCTUnwrap(NDESAdminPageServer.basicCredentials(request))
        XCTAssertEqual(credentials.0, Self.behaviour.username)
        XCTAssertEqual(credentials.1, Self.behaviour.password)
        XCTAssertEqual(request.headers["Accept"], "text/plain, */*;q=0.5")
    }

    func testNDESPageInUTF8() async throws {
        let server = try serve { $0.encoding = .utf8 }
        let issued = try await provider(server).fetchChallenge()
        XCTAssertEqual(issued?.secret.value, try XCTUnwrap(server.issuedChallenges.first))
        XCTAssertEqual(server.requests.first?.headers["Accept"], "text/html, */*;q=0.5")
    }

    func testNDESPageInUTF16LEWithByteOrderMark() async throws {
        let server = try serve { $0.encoding = .utf16LEWithBOM }
        let issued = try await provider(server).fetchChallenge()
        XCTAssertEqual(issued?.secret.value, try XCTUnwrap(server.issuedChallenges.first))
    }

    func testNDESPageInUTF16NamedByTheCharsetHeader() async throws {
        for charset in ["utf-16", "UTF-16LE", "\"utf-16\""] {
            let server = try serve { $0.encoding = .utf16LE(charset: charset) }
            let issued = try await provider(server).fetchChallenge()
            XCTAssertEqual(issued?.secret.value, try XCTUnwrap(server.issuedChallenges.first), charset)
            server.stop()
        }
    }

    /// What NDES most often sends: UTF-16LE with neither BOM nor charset.
    func testNDESPageInUTF16LEWithoutBOMOrCharset() async throws {
        let server = try serve { $0.encoding = .utf16LE(charset: nil) }
        let issued = try await provider(server).fetchChallenge()
        XCTAssertEqual(issued?.secret.value, try XCTUnwrap(server.issuedChallenges.first))
    }

    func testNDESPageInUTF16BEAndWindows1252() async throws {
        for encoding in [NDESAdminPageServer.Encoding.utf16BE, .windows1252] {
            let server = try serve { $0.encoding = encoding }
            let issued = try await provider(server).fetchChallenge()
            XCTAssertEqual(issued?.secret.value, try XCTUnwrap(server.issuedChallenges.first), "\(encoding)")
            server.stop()
        }
    }

    func testEachFetchGetsAFreshPassword() async throws {
        let server = try serve()
        let provider = provider(server)
        let first = try await provider.fetchChallenge()
        let second = try await provider.fetchChallenge()
        XCTAssertEqual([first?.secret.value, second?.secret.value].compactMap { $0 }, server.issuedChallenges)
        XCTAssertNotEqual(first?.secret.value, second?.secret.value)
    }

    // MARK: - Refusals and errors

    func testAWrongPasswordIsFinalAndLeaksNothing() async throws {
        let server = try serve { $0.password = "the-server-expects-another" }
        let sleeper = RecordingSleeper()
        let error = await expectAgentError { try await self.provider(server, sleeper: sleeper).fetchChallenge() }
        let message = try XCTUnwrap(error?.message)

        XCTAssertEqual(error?.code, .challenge)
        XCTAssertEqual(error?.exitCode, 76, "an authentication failure exits as it does for a refused token")
        XCTAssertEqual(server.requests.count, 1, "401 is final: no retry")
        XCTAssertEqual(sleeper.sleeps, [])
        XCTAssertTrue(message.contains("refused the Basic credentials of \(Self.behaviour.username) (HTTP 401)"), message)
        XCTAssertTrue(message.contains("password_file \(passwordPath)"), message)
        XCTAssertFalse(message.contains("the-server-expects-another"))
        assertNoLeak(error)
    }

    func testAnEndpointAskingForAnotherSchemeSaysWhich() async throws {
        let server = try TestHTTPServer(response: TestHTTPResponse(status: 401, headers: ["WWW-Authenticate": "NTLM"]))
        defer { server.stop() }
        let provider = EndpointChallengeProvider(
            url: server.urlString + "/certsrv/mscep_admin/", auth: .basic(username: "scep-client", passwordFile: passwordPath),
            format: .ndesAdmin, transport: CurlTransport(), sleeper: RecordingSleeper(), logger: Logger(label: "test"))
        let error = await expectAgentError { try await provider.fetchChallenge() }
        let message = try XCTUnwrap(error?.message)
        XCTAssertTrue(message.contains("it asks for NTLM authentication (auth = \"ntlm\")"), message)
        assertNoLeak(error)
    }

    func testBusyEndpointIsRetriedAfterRetryAfter() async throws {
        let server = try serve {
            $0.busyAnswers = 2
            $0.retryAfter = "7"
        }
        let sleeper = RecordingSleeper()
        let issued = try await provider(server, sleeper: sleeper).fetchChallenge()
        XCTAssertEqual(sleeper.sleeps, [7, 7])
        XCTAssertEqual(server.requests.count, 3)
        XCTAssertEqual(issued?.secret.value, try XCTUnwrap(server.issuedChallenges.first))
        XCTAssertTrue(log.text.contains("answered HTTP 503; waiting 7 s before attempt 2 of 4 (as Retry-After asked)"), log.text)
        assertNoLeak(nil)
    }

    func testAPageWithoutAChallengeIsAnErrorThatDoesNotEchoIt() async throws {
        let marker = "PORTAL-PAGE-TEXT-4c1d"
        let pages = [
            "<html><body><h1>Sign in</h1><p>\(marker)</p></body></html>",
            // The label, but nothing after it: an empty <B></B>.
            "<html><body>\(marker) The enrollment challenge password is: <B> </B></body></html>",
            // Words after the label are not a password.
            "<html><body>\(marker) The enrollment challenge password is: <B> not available now </B></body></html>",
        ]
        for page in pages {
            let server = try serve { $0.page = .noChallenge(page) }
            let error = await expectAgentError { try await self.provider(server).fetchChallenge() }
            let message = try XCTUnwrap(error?.message)
            XCTAssertEqual(error?.code, .challenge)
            XCTAssertTrue(message.contains("has no enrollment challenge password"), message)
            XCTAssertTrue(message.contains("bytes, read as UTF-16LE (byte order mark)"), message)
            assertNoLeak(error, page: marker)
            server.stop()
        }
    }

    func testAFullPasswordCacheIsNamedWithWhatToDo() async throws {
        let server = try serve { $0.page = .cacheFull }
        let error = await expectAgentError { try await self.provider(server).fetchChallenge() }
        let message = try XCTUnwrap(error?.message)
        XCTAssertEqual(error?.code, .challenge)
        XCTAssertTrue(message.contains("NDES at \(server.url) says \"The password cache is full\""), message)
        XCTAssertTrue(message.contains("PasswordMax"), message)
        XCTAssertFalse(message.contains("Network Device Enrollment Service stores"), "the page is not echoed: \(message)")
        assertNoLeak(error)
    }

    func testMissingPermissionIsNamedWithTheAccount() async throws {
        let server = try serve { $0.page = .insufficientPermission }
        let error = await expectAgentError { try await self.provider(server).fetchChallenge() }
        let message = try XCTUnwrap(error?.message)
        XCTAssertTrue(message.contains("says \"You do not have sufficient permission\": the account \(Self.behaviour.username) may not obtain"), message)
        XCTAssertTrue(message.contains("Enroll permission"), message)
        assertNoLeak(error)
    }

    func testAMissingPasswordFileNamesItAndSendsNothing() async throws {
        let server = try serve()
        try FileManager.default.removeItem(atPath: passwordPath)
        let error = await expectAgentError { try await self.provider(server).fetchChallenge() }
        let message = try XCTUnwrap(error?.message)
        XCTAssertTrue(message.contains("cannot read password_file \(passwordPath)"), message)
        XCTAssertEqual(server.requests.count, 0)
    }

    func testAPasswordWithALineBreakInsideIsRefusedAndNothingIsSent() async throws {
        let server = try serve()
        try "first-line\nsecond-line\n".write(toFile: passwordPath, atomically: true, encoding: .utf8)
        let error = await expectAgentError { try await self.provider(server).fetchChallenge() }
        let message = try XCTUnwrap(error?.message)
        XCTAssertTrue(message.contains("password_file \(passwordPath): the password contains a control character (U+000A)"), message)
        XCTAssertFalse(message.contains("first-line"))
        XCTAssertEqual(server.requests.count, 0)
    }

    /// The configuration allows plain http only to loopback; the provider refuses it too,
    /// before it reads the password.
    func testCredentialsAreNeverSentOverPlainHTTPToAnotherHost() async throws {
        try FileManager.default.removeItem(atPath: passwordPath)  // so reading it would be another error
        for auth in [EndpointAuth.basic(username: "u", passwordFile: passwordPath), .ntlm(username: "u", passwordFile: passwordPath),
                     .bearer(tokenFile: passwordPath)] {
            let provider = EndpointChallengeProvider(
                url: "http://192.0.2.7/certsrv/mscep_admin/", auth: auth, format: .ndesAdmin,
                transport: CurlTransport(), sleeper: RecordingSleeper(), logger: Logger(label: "test"))
            let error = await expectAgentError { try await provider.fetchChallenge() }
            XCTAssertEqual(error?.code, .config)
            XCTAssertTrue(error?.message.contains("credentials to http://192.0.2.7/certsrv/mscep_admin/ without TLS") == true,
                          error?.message ?? "")
        }
    }

    func testTextFormatWithTwoLinesIsRefusedWithoutEchoingThem() async throws {
        let http = try TestHTTPServer(response: .text("ONE-LINE-7a\nTWO-LINE-7b\n"))
        defer { http.stop() }
        let provider = EndpointChallengeProvider(
            url: http.urlString + "/c", auth: .basic(username: "u", passwordFile: passwordPath), format: .text,
            transport: CurlTransport(), sleeper: RecordingSleeper(), logger: Logger(label: "test"))
        let error = await expectAgentError { try await provider.fetchChallenge() }
        let message = try XCTUnwrap(error?.message)
        XCTAssertTrue(message.contains("the challenge contains a control character (U+000A)"), message)
        XCTAssertFalse(message.contains("LINE-7"), message)
    }
}

/// `BodyText` and `NDESAdminPage` on fixed inputs: the encodings and page variants seen in
/// the wild, and the pages that carry no password.
final class NDESAdminPageTests: XCTestCase {
    private func password(in html: String) -> String? { NDESAdminPage(html).challengePassword }

    func testThePasswordAfterTheLabelNotTheThumbprintBeforeIt() {
        XCTAssertEqual(password(in: NDESAdminPageServer.passwordPage("3F9A7C21D04E6B58")), "3F9A7C21D04E6B58")
    }

    func testVariantsOfTheMarkup() {
        let cases: [(String, String)] = [
            ("The enrollment challenge password is: <B> 3F9A7C21 </B>", "3F9A7C21"),
            ("the ENROLLMENT challenge password IS: <b>3f9a7c21</b>", "3f9a7c21"),
            ("The enrollment challenge password is:\r\n  <B>\r\n 3F9A7C21\r\n </B>", "3F9A7C21"),
            ("The enrollment\r\nchallenge password is: <B><FONT Color=red> 3F9A7C21 </FONT></B>", "3F9A7C21"),
            ("The enrollment challenge password is:&nbsp;<B>&nbsp;3F9A7C21&nbsp;</B>", "3F9A7C21"),
            ("The enrollment challenge password is: 3F9A7C21 <P>", "3F9A7C21"),
            // Okta's passwords are not only hex.
            ("The enrollment challenge password is: <B> aB3_x-Yz09 </B>", "aB3_x-Yz09"),
        ]
        for (html, expected) in cases {
            XCTAssertEqual(password(in: "<P>" + html + " <P> This password can be used only once"), expected, html)
        }
    }

    func testPagesWithoutAPassword() {
        for html in [
            "", "<html></html>",
            "The enrollment challenge password is:",
            "The enrollment challenge password is: <B></B>",
            "The enrollment challenge password is: <B",
            "The enrollment challenge password is: <B> two words </B>",
            NDESAdminPageServer.cacheFullPage, NDESAdminPageServer.insufficientPermissionPage,
        ] {
            XCTAssertNil(password(in: html), html)
        }
        XCTAssertTrue(NDESAdminPage(NDESAdminPageServer.cacheFullPage).says(NDESAdminPage.cacheFull))
        XCTAssertTrue(NDESAdminPage(NDESAdminPageServer.insufficientPermissionPage).says(NDESAdminPage.insufficientPermission))
    }

    func testEncodings() {
        let text = "Grüße: The enrollment challenge password is: <B> 00FF </B>"
        let cases: [(bytes: [UInt8], contentType: String?, name: String)] = [
            (Array(text.utf8), "text/html; charset=utf-8", "UTF-8 (charset)"),
            (Array(text.utf8), "text/html", "UTF-8"),
            ([0xEF, 0xBB, 0xBF] + Array(text.utf8), nil, "UTF-8 (byte order mark)"),
            ([0xFF, 0xFE] + NDESAdminPageServer.utf16(text, littleEndian: true), "text/html; charset=utf-8", "UTF-16LE (byte order mark)"),
            ([0xFE, 0xFF] + NDESAdminPageServer.utf16(text, littleEndian: false), nil, "UTF-16BE (byte order mark)"),
            (NDESAdminPageServer.utf16(text, littleEndian: true), "text/html; charset=utf-16", "UTF-16LE (charset utf-16)"),
            (NDESAdminPageServer.utf16(text, littleEndian: true), "text/html; Charset=\"UTF-16LE\"", "UTF-16LE (charset)"),
            (NDESAdminPageServer.utf16(text, littleEndian: true), "text/html", "UTF-16LE (no byte order mark)"),
            (NDESAdminPageServer.utf16(text, littleEndian: false), "text/html", "UTF-16BE (no byte order mark)"),
            (Array(text.data(using: .windowsCP1252)!), "text/html; charset=windows-1252", "windows-1252 (charset windows-1252)"),
            (Array(text.data(using: .windowsCP1252)!), nil, "windows-1252"),
        ]
        for (bytes, contentType, name) in cases {
            let decoded = BodyText.decode(bytes, contentType: contentType)
            XCTAssertEqual(decoded, BodyText.Decoded(text: text, encodingName: name), "\(name) / \(contentType ?? "no content type")")
        }
    }

    func testAnUnpairedSurrogateIsNotReadAsUTF16() {
        // A lone high surrogate (D800) in "little-endian UTF-16": falls through to another reading.
        let bytes: [UInt8] = [0x41, 0x00, 0x00, 0xD8, 0x42, 0x00, 0x43, 0x00]
        XCTAssertFalse(BodyText.decode(bytes, contentType: "text/html; charset=utf-16le").encodingName.hasPrefix("UTF-16LE"))
    }

    func testAnOversizePageIsRefusedUnread() {
        let body = [UInt8](repeating: 0x41, count: ChallengePage.maximumPageBytes + 1)
        XCTAssertThrowsError(try ChallengePage.ndesAdmin(body, contentType: nil, url: "https://ndes/certsrv/mscep_admin/", username: nil)) { error in
            XCTAssertTrue("\(error)".contains("is \(ChallengePage.maximumPageBytes + 1) bytes; an NDES admin page is a few KiB"), "\(error)")
        }
    }
}

/// The transport's credentials never show their password when printed or dumped.
final class HTTPCredentialsTests: XCTestCase {
    func testDescriptionsNeverRevealThePassword() {
        let password = "pw-5b7e-never-shown"
        let credentials = HTTPCredentials(scheme: .ntlm, username: "EXAMPLE\\ndes-svc", password: password)
        let request = HTTPRequest(method: .get, url: "https://ndes/certsrv/mscep_admin/", credentials: credentials)
        var dumped = ""
        dump(request, to: &dumped)
        for text in ["\(credentials)", String(reflecting: credentials), dumped] {
            XCTAssertFalse(text.contains(password), text)
        }
        XCTAssertEqual("\(credentials)", "ntlm credentials for EXAMPLE\\ndes-svc (password redacted)")
    }
}
