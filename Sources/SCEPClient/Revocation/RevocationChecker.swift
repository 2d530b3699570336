import Foundation
import SwiftASN1
import X509

/// Where a CRL distribution point leads: fetched (plain HTTP) or only reported.
public enum CRLLocation: Sendable, Equatable {
    case http(String)
    case notFetched(String, reason: String)

    public init(uri: String) {
        let scheme = uri.split(separator: ":", maxSplits: 1).first.map { $0.lowercased() } ?? ""
        switch scheme {
        case "http": self = .http(uri)
        // A CRL is signed, so it needs no TLS; and checking the TLS server's certificate
        // could itself need this CRL. Entra CBA, like most relying parties, wants HTTP.
        case "https": self = .notFetched(uri, reason: "HTTPS distribution points are not fetched (a CRL is published over plain HTTP)")
        case "ldap", "ldaps": self = .notFetched(uri, reason: "LDAP distribution points are not fetched")
        default: self = .notFetched(uri, reason: "not an HTTP URL")
        }
    }

    public var uri: String {
        switch self {
        case .http(let uri), .notFetched(let uri, _): return uri
        }
    }

    public var notFetchedReason: String? {
        if case .notFetched(_, let reason) = self { return reason }
        return nil
    }
}

/// What one check of the live certificate found.
public struct RevocationReport: Sendable {
    public enum Verdict: Sendable, Equatable {
        /// A verified CRL does not list the certificate.
        case good
        /// A verified CRL lists it.
        case revoked(CertificateRevocationList.Entry)
        /// No CRL could be fetched and verified: nothing is known (the cause, for the log).
        case unavailable(String)
    }

    public var verdict: Verdict
    /// The URL of the CRL that gave a verdict.
    public var url: String?
    /// That CRL, verified.
    public var crl: CertificateRevocationList?
    /// Distribution points that were not fetched, with why.
    public var notFetched: [CRLLocation] = []
    /// Set when no CRL could be fetched and the verdict comes from the cached one (still
    /// current, verified again): why fetching failed.
    public var cachedBecause: String?
}

/// Checks a certificate against the CRLs its distribution point extension names: fetched
/// over HTTP with a size limit and the transport's timeouts, verified against the pinned
/// path. Never throws: a CRL that cannot be used is a verdict of `.unavailable`.
public struct RevocationChecker: Sendable {
    /// Entra CBA's limit for a CRL (20 MB); far above what a CA of hosts publishes.
    public static let maximumCRLBytes = 20 << 20

    public let transport: any HTTPTransport
    public let pin: PinnedCA

    public init(transport: any HTTPTransport, pin: PinnedCA) {
        self.transport = transport
        self.pin = pin
    }

    /// The certificate's distribution points, nil when it names none.
    public static func locations(of certificate: Certificate) throws -> [CRLLocation]? {
        do {
            guard let points = try CRLDistributionPoints(of: certificate) else { return nil }
            return points.uris.map(CRLLocation.init(uri:))
        } catch {
            throw SCEPError(.unusableCRL, "the certificate's CRL distribution point extension is malformed: \(ServerText.excerpt("\(error)", limit: 120))")
        }
    }

    /// - Parameter cachedCRL: the last CRL that verified (the store's cache); used when no
    ///   CRL can be fetched and it is still current (RFC 5280: valid until its nextUpdate).
    public func check(_ certificate: Certificate, chain: [Certificate], now: Date, cachedCRL: [UInt8]? = nil) async -> RevocationReport {
        let locations: [CRLLocation]
        do {
            guard let found = try Self.locations(of: certificate) else {
                return RevocationReport(verdict: .unavailable("the certificate names no CRL distribution point"))
            }
            locations = found
        } catch {
            return RevocationReport(verdict: .unavailable(Self.describe(error)))
        }
        var report = RevocationReport(verdict: .unavailable(""))
        report.notFetched = locations.filter { if case .notFetched = $0 { return true } else { return false } }
        var causes: [String] = []
        for case .http(let url) in locations {
            do {
                let crl = try await fetch(url)
                let issuer = try await CRLValidation.issuer(of: certificate, chain: chain, pin: pin, now: now)
                try CRLValidation.verify(crl, issuer: issuer, for: certificate, now: now)
                report.url = url
                report.crl = crl
                report.verdict = try CRLValidation.entry(for: certificate, in: crl).map { .revoked($0) } ?? .good
                return report
            } catch is CancellationError {
                report.verdict = .unavailable("cancelled")
                return report
            } catch {
                causes.append("CRL \(CurlTransport.redacted(url)): \(Self.describe(error))")
            }
        }
        causes += report.notFetched.map { location -> String in
            if case .notFetched(let uri, let reason) = location { return "\(uri): \(reason)" }
            return location.uri
        }
        let cause = causes.isEmpty ? "no usable CRL distribution point" : causes.joined(separator: "; ")
        if let cachedCRL, let cached = await verdict(fromCache: cachedCRL, for: certificate, chain: chain, now: now) {
            report.verdict = cached.verdict
            report.crl = cached.crl
            report.cachedBecause = cause
            return report
        }
        report.verdict = .unavailable(cause)
        return report
    }

    /// The cached CRL's verdict, when it still verifies and is current; nil otherwise.
    private func verdict(fromCache der: [UInt8], for certificate: Certificate, chain: [Certificate],
                         now: Date) async -> (verdict: RevocationReport.Verdict, crl: CertificateRevocationList)? {
        do {
            let crl = try CertificateRevocationList(derEncoded: der)
            let issuer = try await CRLValidation.issuer(of: certificate, chain: chain, pin: pin, now: now)
            try CRLValidation.verify(crl, issuer: issuer, for: certificate, now: now)
            let entry = try CRLValidation.entry(for: certificate, in: crl)
            return (entry.map { .revoked($0) } ?? .good, crl)
        } catch {
            return nil  // out of date, or not ours: the fetch failure stands
        }
    }

    /// GET `url` (HTTP only): the CRL's bytes (DER, or PEM as some CAs publish it), parsed.
    public func fetch(_ url: String) async throws -> CertificateRevocationList {
        guard case .http = CRLLocation(uri: url) else {
            throw SCEPError(.unusableCRL, "\(url) is not an HTTP URL; only HTTP CRLs are fetched")
        }
        let response = try await transport.perform(HTTPRequest(method: .get, url: url, headers: ["Accept": "application/pkix-crl"]))
        guard response.status == 200 else {
            throw SCEPError(.httpStatus, "GET \(CurlTransport.redacted(url)) answered HTTP \(response.status)")
        }
        guard response.body.count <= Self.maximumCRLBytes else {
            throw SCEPError(.malformedReply, "the CRL at \(CurlTransport.redacted(url)) is larger than \(Self.maximumCRLBytes) bytes; refused")
        }
        return try CertificateRevocationList(derEncoded: Self.derBytes(response.body))
    }

    static func derBytes(_ body: [UInt8]) -> [UInt8] {
        guard body.starts(with: Array("-----BEGIN X509 CRL-----".utf8)),
              let document = try? PEMDocument(pemString: String(decoding: body, as: UTF8.self)) else { return body }
        return document.derBytes
    }

    /// An error as one line for a person: the message of ours, the description of others.
    public static func describe(_ error: Error) -> String {
        (error as? SCEPError)?.message ?? "\(error)"
    }
}
