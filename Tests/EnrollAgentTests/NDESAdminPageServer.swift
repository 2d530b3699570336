import Foundation
import TestSupport

/// A loopback stand-in for the challenge services real deployments have: NDES's
/// `/certsrv/mscep_admin/` page (and Okta's generic dynamic challenge URL, which serves the
/// same kind of page) behind HTTP Basic, or a bare text line. Each good request gets a
/// fresh one-time password, recorded so a test can check that the SCEP server received
/// exactly that one.
///
/// The page text follows what NDES writes (Windows Server 2012–2022): the CA thumbprint in
/// an earlier `<B>…</B>` (a decoy for a careless parser), then "The enrollment challenge
/// password is: <B> … </B>", then the validity sentence.
final class NDESAdminPageServer: @unchecked Sendable {
    /// What a request with good credentials gets.
    enum Page: Sendable {
        /// The NDES page with a fresh password.
        case password
        /// The page NDES shows when it holds as many unused passwords as it keeps.
        case cacheFull
        /// The page NDES shows to an account without enroll permission.
        case insufficientPermission
        /// An HTML page without any password (a wrong URL: a portal, a login page).
        case noChallenge(String)
        /// `format = "text"`: the fresh password alone, with a newline.
        case plainText
    }

    /// How the page's text becomes bytes, and what Content-Type says about it.
    enum Encoding: Sendable {
        /// UTF-8, `charset=utf-8`.
        case utf8
        /// UTF-16LE after a byte order mark, `text/html` without a charset (NDES).
        case utf16LEWithBOM
        /// UTF-16LE without a BOM; the charset parameter as given (nil: none).
        case utf16LE(charset: String?)
        /// UTF-16BE without a BOM, `charset=utf-16be`.
        case utf16BE
        /// windows-1252, as Okta declares its page.
        case windows1252
    }

    struct Behaviour: Sendable {
        var username = "scep-client"
        var password = "s3cr3t-PASSWORD-9f2"
        var page: Page = .password
        var encoding: Encoding = .utf16LEWithBOM
        /// The first this many good requests get 503 with `Retry-After: retryAfter`.
        var busyAnswers = 0
        var retryAfter = "7"
    }

    private let state: State
    private let http: TestHTTPServer

    init(_ behaviour: Behaviour = Behaviour()) throws {
        let state = State(behaviour)
        self.state = state
        // The handler holds the state, not this object, so deinit can stop the server.
        http = try TestHTTPServer { request in state.answer(request) }
    }

    deinit { http.stop() }

    func stop() { http.stop() }

    /// The admin page URL, e.g. "http://127.0.0.1:PORT/certsrv/mscep_admin/".
    var url: String { http.urlString + "/certsrv/mscep_admin/" }

    /// Every request, in order.
    var requests: [TestHTTPRequest] { http.requests }

    /// The one-time passwords handed out, in order.
    var issuedChallenges: [String] { state.lock.withLock { state.issued } }

    func update(_ change: (inout Behaviour) -> Void) { state.lock.withLock { change(&state.behaviour) } }

    /// What the connection threads share.
    private final class State: @unchecked Sendable {
        let lock = NSLock()
        var behaviour: Behaviour
        var issued: [String] = []

        init(_ behaviour: Behaviour) { self.behaviour = behaviour }

        func answer(_ request: TestHTTPRequest) -> TestHTTPResponse {
            let current = lock.withLock { behaviour }
            guard NDESAdminPageServer.basicCredentials(request).map({ $0 == (current.username, current.password) }) == true else {
                return TestHTTPResponse(status: 401, headers: ["WWW-Authenticate": "Basic realm=\"NDES\"", "Content-Type": "text/html"],
                                        body: Array("<html><body>401 - Unauthorized: Access is denied due to invalid credentials.</body></html>".utf8))
            }
            let busy: Bool = lock.withLock {
                guard behaviour.busyAnswers > 0 else { return false }
                behaviour.busyAnswers -= 1
                return true
            }
            if busy {
                return TestHTTPResponse(status: 503, headers: ["Retry-After": current.retryAfter, "Content-Type": "text/html"],
                                        body: Array("<html><body>Service Unavailable</body></html>".utf8))
            }
            switch current.page {
            case .password:
                return NDESAdminPageServer.encode(NDESAdminPageServer.passwordPage(issue()), current.encoding)
            case .cacheFull:
                return NDESAdminPageServer.encode(NDESAdminPageServer.cacheFullPage, current.encoding)
            case .insufficientPermission:
                return NDESAdminPageServer.encode(NDESAdminPageServer.insufficientPermissionPage, current.encoding)
            case .noChallenge(let html):
                return NDESAdminPageServer.encode(html, current.encoding)
            case .plainText:
                return .ok(Array((issue() + "\r\n").utf8), contentType: "text/plain; charset=utf-8")
            }
        }

        private func issue() -> String {
            // NDES's passwords are 8 random bytes in uppercase hex.
            let password = (0..<8).map { _ in String(format: "%02X", UInt8.random(in: 0...255)) }.joined()
            lock.withLock { issued.append(password) }
            return password
        }
    }

    /// The user and password of an `Authorization: Basic` header, nil without one.
    static func basicCredentials(_ request: TestHTTPRequest) -> (String, String)? {
        guard let header = request.headers["Authorization"], header.lowercased().hasPrefix("basic "),
              let decoded = Data(base64Encoded: String(header.dropFirst("basic ".count)).trimmingCharacters(in: .whitespaces)),
              let text = String(data: decoded, encoding: .utf8), let colon = text.firstIndex(of: ":") else { return nil }
        return (String(text[..<colon]), String(text[text.index(after: colon)...]))
    }

    static func page(_ body: String) -> String {
        "<HTML><Head><Meta HTTP-Equiv=\"Content-Type\" Content=\"text/html; charset=UTF-8\">\r\n"
            + "<Title>Network Device Enrollment Service</Title></Head>\r\n<Body BgColor=#FFFFFF>\r\n<Font ID=locPageFont Face=\"Arial\">\r\n"
            + "<P ID=locPageTitle> Network Device Enrollment Service allows you to obtain certificates for routers or other "
            + "network devices using the Simple Certificate Enrollment Protocol (SCEP). </P>\r\n"
            + body + "\r\n</Font></Body></HTML>\r\n"
    }

    static func passwordPage(_ password: String) -> String {
        page("<P> To complete certificate enrollment for your network device you will need the following information: <P> "
             + "The thumbprint (hash value) for the CA certificate is: <B> 5E9C1A0B 7D2F3A44 C0FFEE12 9B8A7654 </B> <P>\r\n"
             + "The enrollment challenge password is: <B> \(password) </B> <P>\r\n"
             + "This password can be used only once and will expire within 60 minutes. <P> "
             + "Each enrollment requires a new challenge password. You can refresh this web page to obtain a new challenge password. </P>")
    }

    static let cacheFullPage = page("<P> The password cache is full. <P> Network Device Enrollment Service stores unused passwords "
                                    + "for later use. By default, passwords are stored for 60 minutes. </P>")

    static let insufficientPermissionPage = page("<P> You do not have sufficient permission to enroll with SCEP. "
                                                 + "Please contact your system administrator. </P>")

    static func encode(_ html: String, _ encoding: Encoding) -> TestHTTPResponse {
        switch encoding {
        case .utf8:
            return .ok(Array(html.utf8), contentType: "text/html; charset=utf-8")
        case .utf16LEWithBOM:
            return .ok([0xFF, 0xFE] + utf16(html, littleEndian: true), contentType: "text/html")
        case .utf16LE(let charset):
            return .ok(utf16(html, littleEndian: true), contentType: charset.map { "text/html; charset=\($0)" } ?? "text/html")
        case .utf16BE:
            return .ok(utf16(html, littleEndian: false), contentType: "text/html; charset=utf-16be")
        case .windows1252:
            return .ok(Array(html.data(using: .windowsCP1252) ?? Data(html.utf8)), contentType: "text/html; charset=windows-1252")
        }
    }

    static func utf16(_ text: String, littleEndian: Bool) -> [UInt8] {
        text.utf16.flatMap { unit in
            littleEndian ? [UInt8(unit & 0xFF), UInt8(unit >> 8)] : [UInt8(unit >> 8), UInt8(unit & 0xFF)]
        }
    }
}
