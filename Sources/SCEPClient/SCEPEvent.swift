/// Things worth telling the administrator that are not errors. The library
/// reports them; the executable decides how to log them.
public enum SCEPEvent: Sendable, Equatable {
    /// The server used an algorithm we accept only in replies (DES, 3DES, SHA-1).
    case weakReplyAlgorithm(String)
    /// A transport attempt failed and will be retried.
    case retrying(attempt: Int, delaySeconds: Double, reason: String)
    /// The server answered PENDING; we poll again after the delay.
    case pending(transactionID: String, nextPollSeconds: Double)
    /// The request went out (no secret in here).
    case sent(messageType: MessageType, transactionID: String, bytes: Int, method: String)
    /// A GetCACert certificate that is not used (not the pinned CA, not on its path, not a
    /// trusted RA). `subject` is escaped already.
    case ignoredCertificate(subject: String, sha256: String, reason: String)
    /// The issued certificate differs from the request (an EKU, SAN or key usage).
    case issuedDiffers(String)
}

public typealias SCEPEventHandler = @Sendable (SCEPEvent) -> Void
