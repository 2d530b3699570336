import CertStore
import Foundation
import Logging
import SCEPClient
import X509

/// A planned CA rollover (issue 12 §3): the server announces its next CA through
/// GetNextCACert, signed by today's pinned CA or its RA; the agent keeps the announced
/// certificate as a candidate pin in the store (`next-ca.json`) and trusts it as if pinned
/// from the moment GetCACert presents it.
extension ProfileRunner {
    /// GetNextCACert is asked at most this often per profile (the cache time is in the record).
    static let nextCACheckInterval: TimeInterval = 86_400

    /// The pure part: whether to ask GetNextCACert now.
    static func nextCACheckDue(record: NextCARecord?, serverOffers: Bool, now: Date) -> Bool {
        guard serverOffers else { return false }
        guard let checkedAt = record?.checkedAt else { return true }
        // A clock set back (checkedAt in the future) must not stop the checks for good.
        return now.timeIntervalSince(checkedAt) >= nextCACheckInterval || checkedAt > now
    }

    /// The record after a verified announcement: the announced CAs become the candidates
    /// (an announcement withdrawn drops its candidates), CAs already in use stay trusted.
    static func record(_ record: NextCARecord?, after announcement: [NextCARecord.Candidate], now: Date) -> NextCARecord {
        var next = record ?? NextCARecord()
        let inUse = next.candidates.filter { $0.inUseSince != nil }
        let announced = announcement.filter { entry in !inUse.contains { $0.sha256 == entry.sha256 } }.map { entry -> NextCARecord.Candidate in
            var entry = entry
            if let known = next.candidates.first(where: { $0.sha256 == entry.sha256 }) { entry.announcedAt = known.announcedAt }
            return entry
        }
        next.candidates = inUse + announced
        next.checkedAt = now
        next.serverOffersNextCA = true
        return next
    }

    /// The candidate certificates on file. Never fails: a record that cannot be read (or
    /// whose certificate does not match its fingerprint) adds no trust, with a warning.
    func nextCACandidates() -> [Certificate] {
        guard let record = readNextCARecord() else { return [] }
        return record.candidates.compactMap { candidate in
            guard let certificate = try? Certificate(pemEncoded: candidate.certificatePEM),
                  PinnedCA.fingerprint(of: certificate) == candidate.sha256 else {
                logger.warning("a candidate CA in \(storeDirectory)/next-ca.json does not match its fingerprint; it is not trusted",
                               metadata: ["sha256": "\(candidate.sha256)"])
                return nil
            }
            return certificate
        }
    }

    func readNextCARecord() -> NextCARecord? {
        do { return try ProfileStore(readingFrom: storeDirectory).loadNextCA() } catch {
            logger.warning("\(AgentError.wrap(error, profile: profile.name).reason)")
            return nil
        }
    }

    /// After GetCACaps + GetCACert were checked against the pin (candidates included):
    /// notes a rollover that just happened, and asks GetNextCACert when the server offers
    /// it and the last answer is a day old. Nothing here fails the step: an announcement
    /// that does not verify changes nothing and is a warning.
    func followCARollover(_ session: ServerSession, pin: PinnedCA) async {
        let now = environment.clock.now()
        let original = readNextCARecord()
        var record = original
        let server = session.server

        if var changed = record {
            for index in changed.candidates.indices where changed.candidates[index].inUseSince == nil {
                let candidate = changed.candidates[index]
                guard let presented = server.certificates.classified.first(where: { $0.sha256 == candidate.sha256 }),
                      presented.role == .pinnedCA, pin.isCandidateOnly(presented.certificate) else { continue }
                changed.candidates[index].inUseSince = now
                logger.info("CA rollover: the SCEP server now presents the announced next CA \(candidate.subject); it is trusted as if pinned (old CA sha256 \(candidate.announcedWhileCA), new CA sha256 \(candidate.sha256)). Put the new CA into ca_pin_file / ca_pin_sha256",
                            metadata: ["oldCA": "\(candidate.announcedWhileCA)", "newCA": "\(candidate.sha256)"])
            }
            let offers = server.capabilities.contains(.getNextCACert)
            if changed.serverOffersNextCA != offers { changed.serverOffersNextCA = offers }
            record = changed
        }

        if Self.nextCACheckDue(record: record, serverOffers: server.capabilities.contains(.getNextCACert), now: now) {
            do {
                let announcement = try await session.enrollment.nextCA(server: server)
                let issuing = PinnedCA.fingerprint(of: server.certificates.issuingCA)
                let signedBy = PinnedCA.fingerprint(of: announcement.signer)
                let entries = announcement.nextCAs.map { certificate in
                    NextCARecord.Candidate(
                        sha256: PinnedCA.fingerprint(of: certificate), subject: "\(certificate.subject)",
                        notBefore: certificate.notValidBefore, notAfter: certificate.notValidAfter,
                        certificatePEM: ((try? certificate.serializeAsPEM().pemString) ?? "") + "\n",
                        announcedAt: now, announcedWhileCA: issuing, signedBy: signedBy)
                }
                for entry in entries where !(record?.candidates.contains { $0.sha256 == entry.sha256 } ?? false) {
                    logger.info("the SCEP server announces its next CA \(entry.subject); kept as a candidate pin, trusted once the server presents it",
                                metadata: ["sha256": "\(entry.sha256)", "notBefore": "\(ProfileStatus.format(entry.notBefore))",
                                           "signedBy": "\(signedBy)", "path": "\(storeDirectory)/next-ca.json"])
                }
                if entries.isEmpty { logger.debug("GetNextCACert: the server announces no next CA") }
                record = Self.record(record, after: entries, now: now)
            } catch is CancellationError {
                return
            } catch {
                logger.warning("the server's GetNextCACert answer is not used: \(AgentError.wrap(error, profile: profile.name).reason); the candidate pins are unchanged")
            }
        }

        guard let record, record != original else { return }
        do { try openStore().saveNextCA(record) } catch {
            logger.warning("the announced next CA could not be recorded: \(AgentError.wrap(error, profile: profile.name).reason)")
        }
    }

    /// A step with nothing to do still asks GetNextCACert once a day when the server
    /// offered it at the last contact: the announcement has to be on file before the day
    /// the server switches, which may come long before the next renewal.
    func refreshNextCAIfDue() async {
        guard let record = readNextCARecord(),
              Self.nextCACheckDue(record: record, serverOffers: record.serverOffersNextCA, now: environment.clock.now()) else { return }
        do {
            _ = try await connect()  // connect() follows the rollover and asks GetNextCACert
        } catch is CancellationError {
            return
        } catch {
            logger.warning("the SCEP server could not be asked for its next CA: \(AgentError.wrap(error, profile: profile.name).reason)")
        }
    }
}
