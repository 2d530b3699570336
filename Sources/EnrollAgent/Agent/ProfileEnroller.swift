import CertStore
import Foundation
import Logging
import Renewal
import SCEPClient
import TPMKeys
import X509

/// What `enroll` did for one profile.
enum EnrollResult {
    case alreadyValid(Certificate)
    case installed(InstalledGeneration, Certificate)
}

/// What `renew` did for one profile.
enum RenewResult {
    /// Nothing to do before `until` (no network was used).
    case notDue(until: Date)
    /// A recent failure: the next attempt waits until `until` (exponential backoff).
    case backingOff(until: Date)
    /// A new certificate is live, obtained with `messageType`.
    case renewed(InstalledGeneration, Certificate, messageType: MessageType)
}

/// Enrolls one profile: the persisted state machine of DESIGN.md.
/// need certificate → (challenge, key, request persisted) → sent → PENDING… → installed.
/// A restart with a pending transaction on file resumes polling it.
struct ProfileEnroller {
    let config: AgentConfig
    let profile: ProfileConfig
    let environment: AgentEnvironment
    let logger: Logger

    init(config: AgentConfig, profile: ProfileConfig, environment: AgentEnvironment, logger: Logger) {
        self.config = config
        self.profile = profile
        self.environment = environment
        var logger = logger
        logger[metadataKey: "profile"] = "\(profile.name)"
        self.logger = logger
    }

    var storeDirectory: String { config.stateDirectory + "/" + profile.name }

    /// Opens the store to write in; touches nothing but missing directories. Leftovers are
    /// cleaned by `takeLock`, once no other run can be installing.
    func openStore() throws -> ProfileStore {
        do {
            return try ProfileStore(directory: storeDirectory)
        } catch {
            throw AgentError.wrap(error, profile: profile.name)
        }
    }

    /// `enroll`: does nothing when a valid certificate is live (unless `force`).
    func enroll(force: Bool) async throws -> EnrollResult {
        let store = try openStore()
        let lock = try takeLock(store)
        defer { lock.release() }

        if !force, let live = try LiveCertificate.load(from: store), live.isValid(at: environment.clock.now()) {
            logger.info("a valid certificate is installed; nothing to do (use --force to enroll again)",
                        metadata: ["subject": "\(live.certificate.subject)", "notAfter": "\(live.certificate.notValidAfter)"])
            return .alreadyValid(live.certificate)
        }
        do {
            let (generation, certificate, _) = try await obtainCertificate(store: store, renewFrom: nil)
            return .installed(generation, certificate)
        } catch {
            let wrapped = AgentError.wrap(error, profile: profile.name)
            recordFailure(wrapped, store: store, notAfter: nil)
            throw wrapped
        }
    }

    /// `renew`: a no-op without network unless renewal is due (or `force`), a
    /// transaction is pending, or there is no certificate yet. The live
    /// certificate stays in place until a verified new one replaces it.
    func renew(force: Bool) async throws -> RenewResult {
        let store = try openStore()
        let lock = try takeLock(store)
        defer { lock.release() }
        let now = environment.clock.now()
        var state = try loadState(store)
        let live: LiveCertificate?
        do { live = try LiveCertificate.load(from: store) } catch {
            logger.warning("the installed generation cannot be read (\(error)); enrolling anew")
            live = nil
        }
        let decision = renewalDecision(live: live, state: &state, store: store, now: now)
        if !force && state.pending == nil {
            if case .notDue(let until) = decision {
                logger.debug("renewal not due", metadata: ["until": "\(until)"])
                return .notDue(until: until)
            }
            if let next = state.nextAttemptAt, next > now {
                logger.info("renewal due, but backing off after \(state.consecutiveFailures) failure(s)", metadata: ["nextAttempt": "\(next)"])
                return .backingOff(until: next)
            }
        }
        logger.info("renewal \(force ? "forced" : decision.reason)", metadata: ["decision": "\(decision.reason)"])
        // An expired certificate can no longer sign a RenewalReq: fresh PKCSReq.
        let renewFrom: LiveCertificate? = { if case .expired = decision { return nil }; return live }()
        do {
            let (generation, certificate, messageType) = try await obtainCertificate(store: store, renewFrom: renewFrom)
            return .renewed(generation, certificate, messageType: messageType)
        } catch {
            let wrapped = AgentError.wrap(error, profile: profile.name)
            recordFailure(wrapped, store: store, notAfter: live?.certificate.notValidAfter)
            throw wrapped
        }
    }

    var renewalPolicy: RenewalPolicy {
        RenewalPolicy(renewBefore: profile.renewBefore, maximumJitter: profile.renewJitter)
    }

    /// The renewal decision for the live certificate, with its jitter picked once
    /// per certificate and persisted (never re-rolled on later checks).
    func renewalDecision(live: LiveCertificate?, state: inout EnrollmentState, store: ProfileStore, now: Date) -> RenewalDecision {
        guard let live else { return .noCertificate }
        let lifetime = CertificateLifetime(notBefore: live.certificate.notValidBefore, notAfter: live.certificate.notValidAfter)
        let serial = "\(live.certificate.serialNumber)"
        if state.jitterForSerial != serial || state.renewalJitterSeconds == nil {
            var generator = SystemRandomNumberGenerator()
            state.renewalJitterSeconds = RenewalSchedule.pickJitter(lifetime, policy: renewalPolicy, using: &generator)
            state.jitterForSerial = serial
            do { try store.saveState(state) } catch {
                logger.warning("cannot persist the renewal jitter: \(error)")
            }
        }
        return RenewalSchedule.decision(now: now, lifetime: lifetime, policy: renewalPolicy, jitter: state.renewalJitterSeconds ?? 0)
    }

    /// Takes the per-profile lock, waiting (and saying so, bounded by
    /// `ProfileLock.defaultWait`) when another run holds it; then removes what a killed
    /// run left behind, which only the lock holder may do.
    func takeLock(_ store: ProfileStore) throws -> ProfileLock {
        do {
            let lock: ProfileLock
            if let free = try store.tryLock() {
                lock = free
            } else {
                logger.info("another enroll-agent run holds the lock for this profile; waiting", metadata: ["lock": "\(store.lockPath)"])
                lock = try store.lock(wait: ProfileLock.defaultWait)
            }
            try store.cleanUpLeftovers(holding: lock)
            return lock
        } catch {
            throw AgentError.wrap(error, profile: profile.name)
        }
    }

    func loadState(_ store: ProfileStore) throws -> EnrollmentState {
        do {
            return try store.loadState()
        } catch let error as CertStoreError where error.code == .corruptState {
            let moved = try store.moveCorruptStateAside(now: environment.clock.now())
            logger.warning("the state file was corrupt and was moved aside; starting fresh", metadata: ["movedTo": "\(moved ?? "-")"])
            return EnrollmentState()
        }
    }

    /// Resumes a pending transaction if one is on file, else sends a new request:
    /// a RenewalReq signed with `renewFrom` when the profile and the server allow
    /// it, else a PKCSReq with a fresh challenge.
    func obtainCertificate(store: ProfileStore, renewFrom: LiveCertificate?) async throws -> (InstalledGeneration, Certificate, MessageType) {
        let pin = try loadPin()
        let transport = RetryingTransport(
            base: environment.makeTransport(profile), maxAttempts: 3, initialDelay: 1, sleeper: environment.sleeper,
            events: { [logger] in AgentEvents.log($0, logger) })
        let enrollment = SCEPEnrollment(
            service: SCEPService(url: profile.scepURL.absoluteString, transport: transport), pin: pin,
            preferredCipher: profile.contentEncryption.cipher, allowWeakAlgorithms: profile.allowWeakAlgorithms,
            now: { [clock = environment.clock] in clock.now() }, events: { [logger] in AgentEvents.log($0, logger) })
        let server = try await enrollment.discover()
        logger.info("SCEP server checked against the pinned CA", metadata: [
            "url": "\(profile.scepURL.absoluteString)", "issuer": "\(server.certificates.issuingCA.subject)",
            "digest": "\(server.algorithms.digest.rawValue)", "cipher": "\(server.algorithms.cipher.rawValue)",
            "method": "\(server.algorithms.usePOST ? "POST" : "GET")"])

        var state = try loadState(store)
        if let pending = state.pending, let keyPEM = try store.loadPendingKey() {
            logger.info("resuming the pending SCEP transaction instead of enrolling again", metadata: ["transactionID": "\(pending.transactionID)"])
            let key = try keyProvider.loadKey(pem: keyPEM)
            let signerKey = pending.messageType == MessageType.renewalReq.name ? try currentKey(store) : key
            do {
                return try await pollUntilIssued(pending, key: key, signerKey: signerKey, enrollment: enrollment, server: server,
                                                 store: store, state: &state, resuming: true)
            } catch let error as SCEPError where !pending.acknowledged && error.code == .httpStatus {
                // The server never said PENDING for this request, and it does not answer
                // CertPoll for it (micromdm scepserver answers every CertPoll with HTTP 500):
                // the request was cut off before it counted. Start over with a new request.
                logger.warning("the server does not know the interrupted request (\(error.message)); sending a new one",
                               metadata: ["transactionID": "\(pending.transactionID)"])
                state.pending = nil
                try store.saveState(state)
                try store.clearPending()
            }
        }
        if state.pending != nil {
            logger.warning("a pending transaction was on file without its key; abandoning it and enrolling again")
            state.pending = nil
        }

        let renewal = try renewalSigner(renewFrom, server: server, store: store)
        // The key first: a TPM may take seconds to create it, or fail, and neither
        // should use up a short-lived one-time challenge.
        let key: any EnrollmentKey
        let stored: (any EnrollmentKey)? = profile.reuseKey
            ? try (renewal?.key ?? (renewFrom != nil ? currentKey(store) : nil))  // reuse_key, RenewalReq or PKCSReq
            : nil
        if let stored {
            switch keyProvider.reuseDecision(for: stored) {
            case .reuse(let warning):
                if let warning { logger.warning("\(warning)") }
                key = stored
            case .replace(let reason):
                // e.g. key_storage = "tpm" and the stored key is a software key: never keep it.
                logger.warning("\(reason)")
                key = try keyProvider.createKey()
            }
        } else {
            key = try keyProvider.createKey()
        }
        // PKCSReq is authenticated by a fresh challenge. A RenewalReq is authenticated by
        // the current certificate, but RFC 8894 lets it carry a challenge too, and some
        // servers (micromdm scepserver) insist: send one whenever a source is configured.
        let challenge = try await challengeProvider().fetchChallenge()
        let spec = try ProfileRequest.spec(for: profile, host: environment.host, endpointVariables: challenge?.variables ?? [:])
        let prepared = try await enrollment.prepare(
            server: server, newKey: key, spec: spec, challenge: challenge?.secret.value,
            renewWith: renewal.map { (certificate: $0.certificate, key: $0.key) })

        // Persist key and transaction BEFORE sending: a crash after this point
        // resumes polling rather than burning the one-time challenge.
        let pending = PendingTransaction(
            transactionID: prepared.transaction.transactionID, messageType: prepared.transaction.messageType.name,
            signerCertificateDER: prepared.transaction.signerCertificateDER, issuerDER: prepared.transaction.issuerDER,
            subjectDER: prepared.transaction.subjectDER, keyStorage: key.storage.rawValue, startedAt: environment.clock.now())
        try store.savePendingKey(pem: try key.pemRepresentation())
        state.pending = pending
        try store.saveState(state)

        logger.info("sending \(prepared.transaction.messageType.name)", metadata: ["transactionID": "\(pending.transactionID)", "keyStorage": "\(key.storage.rawValue)"])
        let signerKey = renewal?.key ?? key
        let outcome = try await enrollment.submit(prepared, server: server, replyKey: signerKey, newKey: key)
        return try await handle(outcome, pending: pending, key: key, signerKey: signerKey, enrollment: enrollment, server: server, store: store, state: &state)
    }

    /// The current certificate and key for a RenewalReq, or nil for a PKCSReq.
    private func renewalSigner(_ live: LiveCertificate?, server: ServerProfile, store: ProfileStore) throws -> (certificate: Certificate, key: any EnrollmentKey)? {
        guard let live else { return nil }
        switch profile.renewalMode {
        case .pkcsReq:
            return nil
        case .auto where !server.capabilities.supportsRenewal:
            logger.info("the server does not offer Renewal; renewing with a PKCSReq and a fresh challenge")
            return nil
        case .auto, .renewalReq:
            return (live.certificate, try currentKey(store))
        }
    }

    private func currentKey(_ store: ProfileStore) throws -> any EnrollmentKey {
        guard let generation = try store.liveGeneration() else {
            throw AgentError(.store, "a RenewalReq is pending but no certificate is installed to sign its polls")
        }
        return try keyProvider.loadKey(pem: try store.readBundle(of: generation).keyPEM)
    }

    private func handle(
        _ outcome: EnrollmentOutcome, pending: PendingTransaction, key: any EnrollmentKey, signerKey: any EnrollmentKey,
        enrollment: SCEPEnrollment, server: ServerProfile, store: ProfileStore, state: inout EnrollmentState
    ) async throws -> (InstalledGeneration, Certificate, MessageType) {
        switch outcome {
        case .issued(let issued):
            let (generation, certificate) = try await install(issued, store: store, state: &state)  // INTEGRATION(subprocess): install is async (the hook is awaited)
            let messageType = MessageType.allCases.first { $0.name == pending.messageType } ?? .pkcsReq
            return (generation, certificate, messageType)
        case .rejected(let failInfo, let text):
            // The transaction is over; its key is useless.
            state.pending = nil
            try store.saveState(state)
            try store.clearPending()
            throw SCEPError(.rejectedByServer, EnrollmentOutcome.rejectionMessage(failInfo, text))
        case .pending:
            var acknowledged = pending
            if !acknowledged.acknowledged {
                acknowledged.acknowledged = true
                state.pending = acknowledged
                try store.saveState(state)
            }
            return try await pollUntilIssued(acknowledged, key: key, signerKey: signerKey, enrollment: enrollment, server: server, store: store, state: &state)
        }
    }

    /// CertPoll with bounded exponential backoff until issued, refused, or this
    /// run has polled for `poll_max_wait`. On timeout the transaction stays on
    /// file so the next run resumes it.
    private func pollUntilIssued(
        _ initial: PendingTransaction, key: any EnrollmentKey, signerKey: any EnrollmentKey, enrollment: SCEPEnrollment,
        server: ServerProfile, store: ProfileStore, state: inout EnrollmentState, resuming: Bool = false
    ) async throws -> (InstalledGeneration, Certificate, MessageType) {
        var pending = initial
        guard let messageType = MessageType.allCases.first(where: { $0.name == pending.messageType }) else {
            throw AgentError(.store, "the pending transaction has an unknown message type \(pending.messageType)")
        }
        let transaction = EnrollmentTransaction(
            transactionID: pending.transactionID, messageType: messageType, signerCertificateDER: pending.signerCertificateDER,
            issuerDER: pending.issuerDER, subjectDER: pending.subjectDER)
        // A resumed transaction is polled at once: its last wait ended long ago.
        var delay = resuming ? 0 : PollSchedule.delay(afterPolls: pending.pollCount, initial: profile.pollInitialInterval)
        // poll_max_wait bounds one run's polling, not the transaction's life: a run that
        // resumes a transaction older than that must still poll it.
        let pollingSince = environment.clock.now()
        while true {
            let waited = environment.clock.now().timeIntervalSince(pollingSince)
            if waited + delay > profile.pollMaxWait {
                let age = Int(environment.clock.now().timeIntervalSince(pending.startedAt))
                throw SCEPError(.pollTimeout,
                                "the request (transactionID \(pending.transactionID)) is still PENDING, \(age) s after it was sent (this run polled for up to poll_max_wait \(Int(profile.pollMaxWait)) s); it stays on file and the next run resumes polling — a CA administrator may need to approve it")
            }
            if delay > 0 {
                logger.info("request pending; polling again", metadata: ["transactionID": "\(pending.transactionID)", "inSeconds": "\(Int(delay))"])
                try await environment.sleeper.sleep(seconds: delay)
            }
            let outcome = try await enrollment.poll(transaction, server: server, signerKey: signerKey, newKey: key)
            pending.pollCount += 1
            pending.lastPollAt = environment.clock.now()
            if case .pending = outcome { pending.acknowledged = true }
            state.pending = pending
            try store.saveState(state)
            switch outcome {
            case .pending:
                delay = PollSchedule.delay(afterPolls: pending.pollCount, initial: profile.pollInitialInterval)
            default:
                return try await handle(outcome, pending: pending, key: key, signerKey: signerKey, enrollment: enrollment, server: server, store: store, state: &state)
            }
        }
    }

    // INTEGRATION(subprocess): async only because PostInstallHook.run is.
    private func install(_ issued: IssuedCertificate, store: ProfileStore, state: inout EnrollmentState) async throws -> (InstalledGeneration, Certificate) {
        let generation = try store.installWithPendingKey(certificatePEM: issued.certificatePEM, chainPEM: issued.chainPEM)
        let storage = state.pending?.keyStorage
        state.pending = nil
        state.lastError = nil
        state.lastErrorAt = nil
        state.consecutiveFailures = 0
        state.lastSuccessAt = environment.clock.now()
        state.keyStorage = storage
        state.nextAttemptAt = nil
        let lifetime = CertificateLifetime(notBefore: issued.certificate.notValidBefore, notAfter: issued.certificate.notValidAfter)
        var generator = SystemRandomNumberGenerator()
        state.renewalJitterSeconds = RenewalSchedule.pickJitter(lifetime, policy: renewalPolicy, using: &generator)
        state.jitterForSerial = "\(issued.certificate.serialNumber)"
        try store.saveState(state)
        try store.clearPending()
        logger.info("certificate installed", metadata: [
            "subject": "\(issued.certificate.subject)", "serial": "\(CertificateText.serial(issued.certificate))",
            "notAfter": "\(issued.certificate.notValidAfter)", "path": "\(store.liveCertificatePath)",
            "generation": "\(generation.id)"])
        if !profile.postInstall.isEmpty {
            // INTEGRATION(subprocess): awaited; runs without holding a cooperative-pool thread.
            await PostInstallHook(argv: profile.postInstall, passedThrough: profile.hookEnvironment).run(
                profile: profile.name, paths: (store.liveCertificatePath, store.liveKeyPath, store.liveFullchainPath), logger: logger)
        }
        return (generation, issued.certificate)
    }

    /// Remembers the failure for `status`; never lets a bookkeeping error hide the real one.
    func recordFailure(_ error: AgentError, store: ProfileStore, notAfter: Date?) {
        guard var state = try? store.loadState() else { return }
        let now = environment.clock.now()
        state.lastError = error.reason  // status shows it under the profile already
        state.lastErrorAt = now
        state.consecutiveFailures += 1
        var generator = SystemRandomNumberGenerator()
        state.nextAttemptAt = RetryBackoff.retryTime(now: now, consecutiveFailures: state.consecutiveFailures,
                                                     notAfter: notAfter, using: &generator)
        try? store.saveState(state)
    }

    func loadPin() throws -> PinnedCA {
        let pemText = try profile.caPin.file.map(PinFile.read)
        return try PinnedCA(pemText: pemText, fingerprints: profile.caPin.sha256Fingerprints,
                            raFingerprints: profile.caPin.raSHA256Fingerprints)
    }

    var keyProvider: KeyProvider {
        KeyProvider(policy: profile.keyStorage, tcti: profile.tcti, bits: profile.keyBits, logger: logger)
    }

    func challengeProvider() -> any ChallengeProvider {
        switch profile.challenge {
        case .noChallenge: return NoChallengeProvider()
        case .file(let path): return FileChallengeProvider(path: path)
        case .command(let argv): return CommandChallengeProvider(argv: argv)
        case .endpoint(let url, let tokenFile):
            return EndpointChallengeProvider(url: url.absoluteString, tokenFile: tokenFile,
                                             transport: environment.makeTransport(profile), sleeper: environment.sleeper, logger: logger, clock: environment.clock)
        }
    }
}

/// Delay before the next CertPoll: initial × 2^polls, capped at 10 minutes.
enum PollSchedule {
    static let maximumDelay: TimeInterval = 600
    static func delay(afterPolls polls: Int, initial: TimeInterval) -> TimeInterval {
        min(maximumDelay, initial * pow(2, Double(min(polls, 20))))
    }
}

/// Library events → log lines.
enum AgentEvents {
    static func log(_ event: SCEPEvent, _ logger: Logger) {
        switch event {
        case .weakReplyAlgorithm(let what):
            logger.warning("\(what): a weak algorithm, accepted only because the reply carries nothing secret and the certificate is verified against the pin; ask the CA operator to upgrade")
        case .retrying(let attempt, let delay, let reason):
            logger.warning("request failed (\(reason)); retrying", metadata: ["attempt": "\(attempt)", "inSeconds": "\(delay)"])
        case .pending(let transactionID, let next):
            logger.info("request pending", metadata: ["transactionID": "\(transactionID)", "nextPollSeconds": "\(next)"])
        case .sent(let type, let transactionID, let bytes, let method):
            logger.debug("sent \(type.name)", metadata: ["transactionID": "\(transactionID)", "bytes": "\(bytes)", "method": "\(method)"])
        case .ignoredCertificate(let subject, let sha256, let reason):
            logger.warning("the server sent a certificate that is not used: \(reason)", metadata: ["subject": "\(subject)", "sha256": "\(sha256)"])
        case .issuedDiffers(let difference):
            logger.warning("the issued certificate differs from the request: \(difference)")
        }
    }
}
