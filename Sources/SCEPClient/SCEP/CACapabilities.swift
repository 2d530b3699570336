import Foundation
import KeyInterface

/// The server's GetCACaps answer (RFC 8894 §3.5.2): keywords one per line,
/// case-insensitive; unknown keywords are ignored; an empty answer or an HTTP
/// error means "no capabilities".
public struct CACapabilities: Sendable, Equatable {
    public enum Keyword: String, Sendable, CaseIterable {
        case aes = "aes"
        case des3 = "des3"
        case getNextCACert = "getnextcacert"
        case postPKIOperation = "postpkioperation"
        case renewal = "renewal"
        case sha1 = "sha-1"
        case sha256 = "sha-256"
        case sha512 = "sha-512"
        case scepStandard = "scepstandard"
    }

    /// Keywords as the server spelled them, for display: escaped (`ServerText`), because
    /// `ca-info` prints them and errors quote them, and the server chose the bytes.
    public let advertised: [String]
    private let keywords: Set<Keyword>

    public init(text: String) {
        let lines = text.split(whereSeparator: \.isNewline)  // "\r\n" is one Character
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
        advertised = lines.map(ServerText.escaped)
        var set = Set(lines.compactMap { Keyword(rawValue: $0.lowercased()) })
        // RFC 8894 §3.5.2: SCEPStandard implies AES, POSTPKIOperation and SHA-256.
        if set.contains(.scepStandard) { set.formUnion([.aes, .postPKIOperation, .sha256]) }
        keywords = set
    }

    public static let none = CACapabilities(text: "")

    public func contains(_ keyword: Keyword) -> Bool { keywords.contains(keyword) }

    public var supportsPOST: Bool { contains(.postPKIOperation) }
    public var supportsRenewal: Bool { contains(.renewal) }

    /// Chooses what we send, given the profile's wishes.
    ///
    /// RFC 8894's mandatory set is AES-128-CBC + SHA-256 + POST. Single DES and MD5
    /// are never sent. 3DES/SHA-1 only with `allowWeakAlgorithms`.
    public func negotiate(preferredCipher: ContentCipher, allowWeakAlgorithms: Bool) throws -> NegotiatedAlgorithms {
        let digest: DigestAlgorithm
        if contains(.sha256) {
            digest = .sha256
        } else if contains(.sha512) {
            digest = .sha512
        } else if allowWeakAlgorithms {
            digest = .sha1
        } else {
            throw SCEPError(.weakAlgorithmsRefused,
                            "the SCEP server does not offer SHA-256 or SHA-512 (GetCACaps: \(advertisedSummary)); "
                            + "it would need SHA-1. Upgrade the server, or set allow_weak_algorithms = true in the profile if you accept SHA-1")
        }
        let cipher: ContentCipher
        if contains(.aes) {
            cipher = preferredCipher.isWeak ? .aes128CBC : preferredCipher
        } else if allowWeakAlgorithms {
            cipher = .desEDE3CBC
        } else {
            throw SCEPError(.weakAlgorithmsRefused,
                            "the SCEP server does not offer AES (GetCACaps: \(advertisedSummary)); "
                            + "it would need 3DES. Upgrade the server, or set allow_weak_algorithms = true in the profile if you accept 3DES")
        }
        return NegotiatedAlgorithms(digest: digest, cipher: cipher, usePOST: supportsPOST)
    }

    /// What the server offers, for an error message: at most a line's worth of it.
    private var advertisedSummary: String {
        advertised.isEmpty ? "nothing" : ServerText.excerpt(advertised.joined(separator: " "), limit: 200)
    }
}

/// What we send with, chosen from the server's capabilities.
public struct NegotiatedAlgorithms: Sendable, Equatable {
    public var digest: DigestAlgorithm
    public var cipher: ContentCipher
    public var usePOST: Bool
}
