// libFuzzer harness: the small text parsers of untrusted input, one target for all. The first
// byte picks the parser (byte % 6; the seeds use the digits "0".."5"), the rest is its input:
//   0  Retry-After and HTTP-date (RetryAfter.delay, HTTPDate.parse): the endpoint's 429/503
//   1  HTTP response header lines (HTTPHeaderLine.parse, what CurlTransport's header callback uses)
//   2  the management endpoint's JSON answer (EndpointAnswer.decode): no secret in any error
//   3  GetCACaps (CACapabilities(text:), negotiate): never DES or MD5, nothing weak unasked
//   4  the CA pin file (PinnedCA(pemText:fingerprints:))
//   5  the software key file (SoftwareKey(pem:)), a PEM private key
@testable import AgentChallenge
import Foundation
@testable import SCEPClient
import SwiftASN1
import TPMKeys
import X509

/// 2030-06-01T00:00:00Z, as in the other harnesses: the clock Retry-After dates are measured on.
private let now = Date(timeIntervalSince1970: 1_906_502_400)
private let endpointURL = "https://mdm.fuzz.invalid/scep-challenge"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTextInputs(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    guard let selector = bytes.first else { return 0 }
    let input = Array(bytes.dropFirst())
    let text = String(decoding: input, as: UTF8.self)
    switch selector % 6 {
    case 0: retryAfter(text)
    case 1: headerLine(input)
    case 2: endpointAnswer(input)
    case 3: capabilities(text)
    case 4: pinFile(text)
    default: softwareKey(text)
    }
    return 0
}

private func retryAfter(_ text: String) {
    let delay = RetryAfter.delay(text, now: now)
    if let delay { precondition(delay >= 0 && !delay.isNaN, "Retry-After \(text.debugDescription) gave \(delay)") }
    let trimmed = text.trimmingCharacters(in: .whitespaces)
    if !trimmed.isEmpty, trimmed.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) {
        precondition(delay == Double(trimmed), "delay-seconds \(trimmed) gave \(String(describing: delay))")
        return
    }
    guard let date = HTTPDate.parse(trimmed, now: now) else {
        precondition(delay == nil, "Retry-After \(text.debugDescription) is neither digits nor a date but gave \(String(describing: delay))")
        return
    }
    precondition(delay == max(0, date.timeIntervalSince(now)), "Retry-After disagrees with the HTTP-date it parsed")
    // Any date parsed, written back as an IMF-fixdate, parses to the same instant.
    var calendar = Calendar(identifier: .gregorian)
    calendar.timeZone = TimeZone(identifier: "GMT")!
    let c = calendar.dateComponents([.era, .year, .month, .day, .hour, .minute, .second, .weekday], from: date)
    guard c.era == 1 else { return }  // year 0000 is 1 BC: no IMF-fixdate for it (and its delay is 0)
    guard let year = c.year, (1...9999).contains(year) else {
        preconditionFailure("an HTTP-date in year \(String(describing: c.year)) from \(trimmed.debugDescription)")
    }
    let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    func two(_ n: Int?) -> String { String(format: "%02d", n ?? -1) }
    let imf = "\(days[(c.weekday ?? 1) - 1]), \(two(c.day)) \(months[(c.month ?? 1) - 1]) \(String(format: "%04d", year)) \(two(c.hour)):\(two(c.minute)):\(two(c.second)) GMT"
    precondition(HTTPDate.parse(imf, now: now) == date, "\(trimmed.debugDescription) parsed to \(date), but \(imf) does not")
}

private func headerLine(_ bytes: [UInt8]) {
    guard let parsed = HTTPHeaderLine.parse(bytes) else {
        let line = String(decoding: bytes, as: UTF8.self)
        precondition(!line.contains(":"), "a header line with a colon was ignored: \(line.debugDescription)")
        return
    }
    guard case .field(let name, let value) = parsed else { return }
    precondition(!name.contains(":"), "a header name with a colon: \(name.debugDescription)")
    precondition(name == name.lowercased(), "a header name that is not lowercased: \(name.debugDescription)")
    precondition(value == value.trimmingCharacters(in: .whitespaces), "a header value with surrounding whitespace: \(value.debugDescription)")
    // What the transport stores is what it would parse again.
    precondition(HTTPHeaderLine.parse(Array("\(name): \(value)".utf8)) == parsed,
                 "the header \(name.debugDescription): \(value.debugDescription) does not parse to itself")
}

private func endpointAnswer(_ body: [UInt8]) {
    do {
        let issued = try EndpointAnswer.decode(body, url: endpointURL)
        let secret = issued.secret.value
        precondition(!secret.isEmpty && secret.utf8.count <= SecretText.maximumBytes, "a challenge of \(secret.utf8.count) bytes")
        precondition(secret == secret.trimmingCharacters(in: .whitespacesAndNewlines), "an untrimmed challenge")
        precondition(!secret.unicodeScalars.contains(where: SecretText.isControl), "a challenge with a control character")
        precondition("\(issued.secret)" == "<redacted>" && String(reflecting: issued.secret) == "<redacted>", "a challenge shows in text")
        var dumped = ""
        dump(issued, to: &dumped)
        precondition(dumped == dumpOf(IssuedChallenge(secret: Secret("-"), variables: issued.variables)), "dump shows the challenge: \(dumped)")
    } catch let error as AgentError {
        precondition(error.code == .challenge, "the endpoint answer failed with \(error.code)")
        checkEndpointMessage(error.message)
    } catch {
        preconditionFailure("EndpointAnswer.decode threw something other than an AgentError: \(error)")
    }
}

private func dumpOf(_ value: IssuedChallenge) -> String {
    var text = ""
    dump(value, to: &text)
    return text
}

/// Every message is one of the fixed shapes, so none can carry any part of the body (the
/// challenge): the template, the URL, a code point, a size.
private func checkEndpointMessage(_ message: String) {
    let prefix = "the management endpoint \(endpointURL)"
    precondition(message.hasPrefix(prefix), "an endpoint error without its fixed prefix: \(message)")
    let rest = message.dropFirst(prefix.count)
    let malformed = #" answered with malformed JSON (expected {"challenge": "...", "expires_in": N, "variables": {...}})"#
    let remedy = "the endpoint must answer a challenge of printable characters; ask its operator"
    if rest == malformed || rest == " answered with an empty challenge" { return }
    if rest.hasPrefix(": the challenge contains a control character (U+"), rest.hasSuffix("); \(remedy)") {
        let codePoint = rest.dropFirst(": the challenge contains a control character (U+".count).dropLast("); \(remedy)".count)
        precondition((4...6).contains(codePoint.count) && codePoint.allSatisfy(\.isHexDigit), "an unexpected code point in: \(message)")
        return
    }
    if rest.hasPrefix(" is "), rest.hasSuffix(" bytes; a challenge may be at most \(SecretText.maximumBytes) bytes: \(remedy)") {
        let size = rest.dropFirst(" is ".count).prefix(while: \.isNumber)
        precondition(!size.isEmpty && rest.dropFirst(" is ".count + size.count).hasPrefix(" bytes;"), "an unexpected size in: \(message)")
        return
    }
    preconditionFailure("an endpoint error of an unknown shape (it might quote the body): \(message)")
}

private func capabilities(_ text: String) {
    let caps = CACapabilities(text: text)
    for line in caps.advertised {
        precondition(!line.unicodeScalars.contains(where: ServerText.needsEscaping), "an advertised keyword shown unescaped: \(line.debugDescription)")
        precondition(!line.isEmpty && line == line.trimmingCharacters(in: .whitespaces), "an advertised keyword with whitespace")
        precondition(!line.contains(where: \.isNewline), "an advertised keyword with a line break")
    }
    if caps.contains(.scepStandard) {
        precondition(caps.contains(.aes) && caps.contains(.postPKIOperation) && caps.contains(.sha256), "SCEPStandard without what it implies")
    }
    precondition(CACapabilities(text: caps.advertised.joined(separator: "\n")) == caps, "the advertised keywords do not parse to themselves")
    for preferred in ContentCipher.allCases {
        for allowWeak in [false, true] {
            do {
                let chosen = try caps.negotiate(preferredCipher: preferred, allowWeakAlgorithms: allowWeak)
                precondition(chosen.cipher != .desCBC, "single DES negotiated")
                precondition(allowWeak || (!chosen.cipher.isWeak && chosen.digest != .sha1), "a weak algorithm without allow_weak_algorithms: \(chosen)")
                switch chosen.digest {
                case .sha256: precondition(caps.contains(.sha256), "SHA-256 the server did not offer")
                case .sha512: precondition(caps.contains(.sha512) && !caps.contains(.sha256), "SHA-512 instead of the SHA-256 offered")
                case .sha1: precondition(!caps.contains(.sha256) && !caps.contains(.sha512), "SHA-1 although SHA-2 is offered")
                case .sha384: preconditionFailure("SHA-384 negotiated: no GetCACaps keyword offers it")
                }
                precondition(chosen.cipher.isWeak || caps.contains(.aes), "AES without the server's AES")
                precondition(chosen.usePOST == caps.supportsPOST, "POST without POSTPKIOperation")
            } catch let error as SCEPError {
                precondition(error.code == .weakAlgorithmsRefused && !allowWeak, "negotiate failed with \(error.code), allowWeak \(allowWeak)")
                checkMessage(error.message)
                precondition(error.message.count < 1000, "a refusal of \(error.message.count) characters")
            } catch {
                preconditionFailure("negotiate threw something other than an SCEPError: \(error)")
            }
        }
    }
}

private func pinFile(_ text: String) {
    let pin: PinnedCA
    do {
        pin = try PinnedCA(pemText: text, fingerprints: [])
    } catch let error as SCEPError {
        precondition(error.code == .untrustedCertificate, "the pin file failed with \(error.code)")
        checkMessage(error.message)
        return
    } catch {
        preconditionFailure("PinnedCA(pemText:) threw something other than an SCEPError: \(error)")
    }
    precondition(!pin.pinnedCertificates.isEmpty, "a pin file without a certificate was accepted")
    let fingerprints = pin.pinnedCertificates.map(PinnedCA.fingerprint(of:))
    for (certificate, fingerprint) in zip(pin.pinnedCertificates, fingerprints) {
        precondition(fingerprint.count == 64 && fingerprint.allSatisfy(\.isHexDigit), "a malformed fingerprint \(fingerprint)")
        var serializer = DER.Serializer()
        try! serializer.serialize(certificate)
        precondition((try? Certificate(derEncoded: serializer.serializedBytes)) == certificate, "a pinned certificate does not survive a DER round trip")
    }
    // The file and ca_pin_sha256 together: a fingerprint of the file agrees, another does not.
    precondition((try? PinnedCA(pemText: text, fingerprints: [fingerprints[0].uppercased()])) != nil, "the file's own fingerprint is refused")
    let other = String(repeating: "0", count: 64)
    if !fingerprints.contains(other) {
        precondition((try? PinnedCA(pemText: text, fingerprints: [other])) == nil, "a fingerprint of another certificate is accepted")
    }
    precondition(pin.anchors(among: []) == pin.pinnedCertificates, "the pin file's certificates are not the anchors")
}

private func softwareKey(_ text: String) {
    let key: SoftwareKey
    do {
        key = try SoftwareKey(pem: text)
    } catch let error as SoftwareKeyError {
        precondition(error.code == .parse, "the key file failed with \(error.code): \(error.message)")
        return
    } catch {
        preconditionFailure("SoftwareKey(pem:) threw something other than a SoftwareKeyError: \(error)")
    }
    precondition(key.bits > 0, "a key of \(key.bits) bits")
    precondition((try? Certificate.PublicKey(derEncoded: key.subjectPublicKeyInfo)) != nil, "the key's SubjectPublicKeyInfo does not parse")
    // The agent writes the key it loads back in PKCS#8 (a key reused on renewal): same key.
    guard let pem = try? key.pemRepresentation(), let again = try? SoftwareKey(pem: pem) else {
        preconditionFailure("a loaded key does not survive a PEM round trip")
    }
    precondition(again.subjectPublicKeyInfo == key.subjectPublicKeyInfo, "the PEM round trip changed the key")
}

/// Server text in a message is escaped: no line breaks, control characters or bidi overrides.
private func checkMessage(_ message: String) {
    precondition(!message.isEmpty, "an empty message")
    precondition(!message.unicodeScalars.contains(where: ServerText.needsEscaping),
                 "a message with unescaped control or bidi characters: \(message.debugDescription)")
}
