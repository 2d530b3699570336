// The Verifier's SPI lets us switch off its own expiry check: validity is checked here,
// with a tolerance on notBefore only (see `ValidityWindow`). SPI may change between
// swift-certificates versions.
@_spi(DisableValidityCheck) import X509
import Foundation

/// Hard limits on the work spent on certificates a server sent, before the pin has
/// vouched for any of them. A GetCACert answer is a handful of certificates; these
/// limits are far above that and far below what makes path building slow.
public struct PathBuildingLimits: Sendable, Equatable {
    /// Certificates of one GetCACert answer (or one CertRep) that are looked at.
    public var maxCertificates = 32
    /// Certificates in one path, the certificate itself and the pinned CA included.
    public var maxPathLength = 8
    /// Signature verifications for one answer, all paths together.
    public var maxSignatureChecks = 512
    /// Wall time for one answer, all paths together.
    public var timeBudget: Duration = .seconds(5)

    public init() {}
}

/// When a certificate counts as valid: from notBefore (minus `notBeforeTolerance`, because
/// CAs such as micromdm's stamp notBefore with their own clock, which may run ahead of
/// ours) through notAfter inclusive (RFC 5280 §4.1.2.5), with no tolerance there: a
/// certificate that has expired on this host's clock is expired.
public struct ValidityWindow: Sendable, Equatable {
    public var now: Date
    public var notBeforeTolerance: TimeInterval

    public init(now: Date, notBeforeTolerance: TimeInterval = 300) {
        self.now = now
        self.notBeforeTolerance = notBeforeTolerance
    }

    /// Why `certificate` is not valid now, or nil when it is.
    public func problem(with certificate: Certificate) -> String? {
        if certificate.notValidBefore > now.addingTimeInterval(notBeforeTolerance) {
            return "is not valid before \(Self.format(certificate.notValidBefore)) (now: \(Self.format(now)))"
        }
        if certificate.notValidAfter < now {
            return "expired at \(Self.format(certificate.notValidAfter)) (now: \(Self.format(now)))"
        }
        return nil
    }

    static func format(_ date: Date) -> String { date.formatted(Date.ISO8601FormatStyle()) }
}

/// Finds a path from a certificate to one of the pinned anchors.
///
/// Only issuers whose subject is the certificate's issuer name are tried, anchors first;
/// a certificate that cannot reach an anchor is remembered as a dead end, so layers of
/// certificates that share a name and key ("ladders") cost their number, not the
/// product of their numbers; and the signature checks and the time of one instance are
/// capped (`PathBuildingLimits`). The path found is then checked by swift-certificates'
/// RFC 5280 policy (basic constraints, name constraints, critical extensions) on that
/// one path only.
///
/// One instance serves one server answer: the limits and the memory of dead ends are
/// shared by every certificate of that answer.
final class CertificatePathBuilder {
    let anchors: [Certificate]
    let candidates: [Certificate]
    let window: ValidityWindow
    let limits: PathBuildingLimits

    private let deadline: ContinuousClock.Instant
    private var signatureChecks = 0
    /// Signature verifications done so far (for tests: the work is what is bounded).
    var signatureChecksUsed: Int { signatureChecks }
    private var verifiedSignatures: [SignatureKey: Bool] = [:]
    /// Certificate → the largest remaining path length with which it failed to reach an anchor.
    private var deadEnds: [Certificate: Int] = [:]

    init(anchors: [Certificate], candidates: [Certificate], window: ValidityWindow, limits: PathBuildingLimits = PathBuildingLimits()) throws {
        guard candidates.count <= limits.maxCertificates else {
            throw SCEPError(.resourceLimit,
                            "the server sent \(candidates.count) certificates; at most \(limits.maxCertificates) are considered (a GetCACert answer holds a handful): refused")
        }
        self.anchors = anchors
        self.candidates = candidates
        self.window = window
        self.limits = limits
        deadline = ContinuousClock.now.advanced(by: limits.timeBudget)
    }

    /// The path from `leaf` to a pinned anchor, leaf first and anchor last, checked for
    /// validity at `window` and by the RFC 5280 policy. Throws `.untrustedCertificate`
    /// with the cause in one line, or `.resourceLimit` naming the limit that was hit.
    func path(from leaf: Certificate, role: String) async throws -> [Certificate] {
        if let problem = window.problem(with: leaf) {
            throw SCEPError(.untrustedCertificate, "the \(role) certificate \(Self.name(leaf)) \(problem)")
        }
        if anchors.contains(leaf) { return [leaf] }
        var failures: [String] = []
        guard let path = try search(leaf, path: [leaf], failures: &failures) else {
            throw SCEPError(.untrustedCertificate,
                            "the \(role) certificate \(Self.name(leaf)) does not chain to the pinned CA: "
                            + (failures.first ?? "no path"))
        }
        try await checkPolicy(path, role: role)
        return path
    }

    private func search(_ node: Certificate, path: [Certificate], failures: inout [String]) throws -> [Certificate]? {
        let remaining = limits.maxPathLength - path.count
        guard remaining > 0 else {
            failures.append("no path of at most \(limits.maxPathLength) certificates reaches it (limit maxPathLength)")
            return nil
        }
        if let failedWith = deadEnds[node], failedWith >= remaining { return nil }
        let issuers = anchors.filter { $0.subject == node.issuer }
            + candidates.filter { $0.subject == node.issuer && !anchors.contains($0) }
        if issuers.isEmpty {
            failures.append("its issuer \(ServerText.escaped("\(node.issuer)")) is neither pinned nor among the server's certificates")
        }
        var cutShortByPath = false
        for issuer in issuers {
            if path.contains(issuer) {
                cutShortByPath = true  // a loop; this failure says nothing about `node` in general
                continue
            }
            guard try verifies(node, signedBy: issuer) else {
                failures.append("the signature of \(Self.name(node)) does not verify with the key of \(Self.name(issuer))")
                continue
            }
            if let problem = window.problem(with: issuer) {
                failures.append("its issuer \(Self.name(issuer)) \(problem)")
                continue
            }
            if anchors.contains(issuer) { return path + [issuer] }
            if let found = try search(issuer, path: path + [issuer], failures: &failures) { return found }
        }
        if !cutShortByPath { deadEnds[node] = max(deadEnds[node] ?? 0, remaining) }
        return nil
    }

    private func verifies(_ certificate: Certificate, signedBy issuer: Certificate) throws -> Bool {
        let key = SignatureKey(certificate: certificate, issuerKey: issuer.publicKey)
        if let known = verifiedSignatures[key] { return known }
        guard signatureChecks < limits.maxSignatureChecks else {
            throw SCEPError(.resourceLimit,
                            "checking the server's certificates took more than \(limits.maxSignatureChecks) signature verifications (limit maxSignatureChecks): refused")
        }
        guard ContinuousClock.now < deadline else {
            throw SCEPError(.resourceLimit,
                            "checking the server's certificates took longer than \(limits.timeBudget) (limit timeBudget): refused")
        }
        signatureChecks += 1
        let valid = issuer.publicKey.isValidSignature(certificate.signature, for: certificate)
        verifiedSignatures[key] = valid
        return valid
    }

    /// RFC 5280 on the one path found (validity was checked above, with our tolerance).
    private func checkPolicy(_ path: [Certificate], role: String) async throws {
        guard let leaf = path.first, let anchor = path.last else { return }
        var verifier = Verifier(rootCertificates: CertificateStore([anchor])) {
            RFC5280Policy.withValidityCheckDisabled()
        }
        let result = await verifier.validate(leaf: leaf, intermediates: CertificateStore(Array(path.dropFirst().dropLast())))
        if case .couldNotValidate(let failures) = result {
            // The policy's reasons may embed whole certificates: keep their first line.
            let reason = failures.first.map { "\($0.policyFailureReason)".split(whereSeparator: \.isNewline).first.map(String.init) ?? "" } ?? ""
            throw SCEPError(.untrustedCertificate,
                            "the \(role) certificate \(Self.name(leaf)) chains to the pinned CA but fails the RFC 5280 checks"
                            + (reason.isEmpty ? "" : ": \(ServerText.escaped(reason))"))
        }
    }

    /// A certificate in a message: its subject, control characters escaped.
    static func name(_ certificate: Certificate) -> String {
        "\"\(ServerText.escaped("\(certificate.subject)"))\""
    }

    private struct SignatureKey: Hashable {
        let certificate: Certificate
        let issuerKey: Certificate.PublicKey
    }
}
