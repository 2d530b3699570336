/// The one error type of the SCEPClient module: a stable code to match on, and
/// a message for a person that says what was wrong and, where we know, what to do.
public struct SCEPError: Error, CustomStringConvertible, Equatable, Sendable {
    public enum Code: String, Sendable {
        /// The exchange broke off after the request may have been sent (reset, timeout).
        case transport
        /// The request never left: name resolution or connection failed.
        case unreachable
        /// The server answered with an HTTP status we cannot use.
        case httpStatus
        /// A redirect we refuse to follow silently.
        case redirect
        /// The reply could not be parsed.
        case malformedReply
        /// The server offers only algorithms we refuse to send.
        case weakAlgorithmsRefused
        /// An algorithm we do not implement.
        case unsupportedAlgorithm
        /// No certificate from the server matches or chains to the pinned CA.
        case untrustedCertificate
        /// The reply's signature does not verify.
        case badSignature
        /// transactionID / recipientNonce / messageType do not match our request.
        case replyMismatch
        /// The issued certificate is not for our key or not from the pinned CA.
        case wrongCertificate
        /// Decrypting the reply envelope failed.
        case decryptionFailed
        /// The server answered FAILURE.
        case rejectedByServer
        /// PENDING longer than the configured maximum wait.
        case pollTimeout
        /// Building the request failed (bad template values, key error).
        case invalidRequest
        /// A libcrypto failure that is not the server's doing.
        case crypto
        /// The server's answer needs more work than we spend on untrusted input
        /// (too many certificates, too long a path, too many signature checks).
        case resourceLimit
        /// A CRL that cannot be used: malformed, not signed by the certificate's issuer,
        /// out of date, or with an extension we cannot honour.
        case unusableCRL
    }

    public let code: Code
    public let message: String
    /// True when the reply was signed by a trusted signer, matched our request and said
    /// SUCCESS, and what failed came after that (its envelope, the certificate inside):
    /// an answer that cannot be used, as opposed to one that cannot be trusted.
    public var concernsVerifiedReply = false
    /// For `.httpStatus`: the status the server answered.
    public var httpStatus: Int?

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    /// Equality on the code: tests and callers match on the kind, not the words.
    public static func == (lhs: SCEPError, rhs: SCEPError) -> Bool { lhs.code == rhs.code }

    /// Whether trying again later may succeed (network trouble, 5xx), as opposed to
    /// a problem a person must fix first.
    public var isTransient: Bool {
        switch code {
        case .transport, .unreachable, .httpStatus, .pollTimeout: return true
        default: return false
        }
    }
}
