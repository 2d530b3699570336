import CertStore
import Foundation

/// The CA the server announced as its next (GetNextCACert), as `status` and `ca-info`
/// show it: read from the store's `next-ca.json`, never fetched.
struct NextCAInfo: Encodable, Equatable {
    var subject: String
    var sha256Fingerprint: String
    var notBefore: Date
    var notAfter: Date
    var announcedAt: Date
    /// SHA-256 of the CA the server issued from when it announced this one.
    var announcedWhileCA: String
    /// When the server's GetCACert first presented it (the rollover); absent while only announced.
    var inUseSince: Date?

    init(_ candidate: NextCARecord.Candidate) {
        subject = candidate.subject
        sha256Fingerprint = candidate.sha256
        notBefore = candidate.notBefore
        notAfter = candidate.notAfter
        announcedAt = candidate.announcedAt
        announcedWhileCA = candidate.announcedWhileCA
        inUseSince = candidate.inUseSince
    }

    static func read(from store: ProfileStore) -> [NextCAInfo]? {
        guard let record = try? store.loadNextCA(), !record.candidates.isEmpty else { return nil }
        return record.candidates.map(NextCAInfo.init)
    }

    /// One line for `status` and `ca-info`.
    var text: String {
        let use = inUseSince.map { "in use since \(ProfileStatus.format($0)): the server rolled over to it; put it into ca_pin_file / ca_pin_sha256" }
            ?? "announced \(ProfileStatus.format(announcedAt)), trusted as if pinned once the server presents it"
        return "\(subject), sha256 \(sha256Fingerprint), valid \(ProfileStatus.format(notBefore)) → \(ProfileStatus.format(notAfter)); \(use)"
    }
}
