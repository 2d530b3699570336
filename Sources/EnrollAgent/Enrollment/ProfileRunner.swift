import CertStore
import EnrollmentPlan
import Foundation
import Logging
import Renewal
import SCEPClient
import KeyInterface
import TPMKeys
import X509

/// What one step did.
enum StepReport {
    /// The planner said wait; nothing was done (no network, no write).
    case waited(until: Date?, reason: WaitReason)
    /// One action was performed and its result persisted. `error` is what the run should
    /// report when it stops here (the failure is already recorded in the state).
    case performed(EnrollmentAction, StepOutcome, installed: InstalledCertificate?, error: AgentError?)
}

/// A certificate a step installed.
struct InstalledCertificate {
    let generation: InstalledGeneration
    let certificate: Certificate
    let kind: RequestKind
}

/// Performs exactly one action of the enrollment state machine for one profile, under
/// the profile's lock, and persists its result once (certmonger's one step at a time).
/// It never sleeps: whoever drives it (a command, the daemon) decides when to ask again.
struct ProfileRunner {
    let config: AgentConfig
    let profile: ProfileConfig
    let environment: AgentEnvironment
    let logger: Logger

    var storeDirectory: String { config.stateDirectory + "/" + profile.name }

    var policy: EnrollmentPolicy {
        EnrollmentPolicy(renewal: profile.renewalPolicy,
                         pendingMaxAge: profile.pendingMaxAge, pollInitialInterval: profile.pollInitialInterval,
                         revocationCheckInterval: profile.revocation.checkInterval, onRevoked: profile.revocation.onRevoked.policy)
    }

    /// Plans and performs one step. `revocationCheckedThisRun`: this run has looked at the CRL.
    func step(intent: EnrollmentIntent, revocationCheckedThisRun: Bool = false) async throws -> StepReport {
        let store = try openStore()
        let lock = try takeLock(store)
        defer { lock.release() }
        let now = environment.clock.now()
        var state = try loadState(store)
        let live = readLive(store)
        if let live { try await recordInstallOfAStoppedRun(live: live, state: &state, store: store, now: now) }
        if let live { try? pickJitterIfNeeded(for: live, state: &state, store: store) }
        try discardFilesOfEndedTransaction(state: state, store: store)

        let action = EnrollmentPlanner.next(state: state, live: live.map(facts), policy: policy, intent: intent, now: now,
                                            revocationCheckedThisRun: revocationCheckedThisRun)
        if case .wait(let until, let reason) = action {
            await refreshNextCAIfDue()
            return .waited(until: until, reason: reason)
        }
        logger.info("\(Self.describe(action, state: state))", metadata: state.phase.transaction.map { ["transactionID": "\($0.transactionID)"] } ?? [:])

        var installed: InstalledCertificate?
        var outcome: StepOutcome
        var failure: Error?
        do {
            (outcome, installed) = try await perform(action, state: state, live: live, store: store)
        } catch is CancellationError {
            throw CancellationError()  // shutdown: nothing happened that needs recording
        } catch {
            failure = error
            outcome = StepClassifier.outcome(of: error, action: action, phase: state.phase)
        }
        var rng = SystemRandomNumberGenerator()
        let next = EnrollmentTransitions.apply(outcome, after: action, to: state, policy: policy,
                                               liveNotAfter: live?.certificate.notValidAfter, now: environment.clock.now(), using: &rng)
        try save(next, store)
        if next.phase.transaction == nil, state.phase.transaction != nil {
            try? store.clearPending()
        }
        if let installed { await afterInstall(installed, store: store) }
        report(outcome, next: next)
        return .performed(action, outcome, installed: installed, error: failure.map { AgentError.wrap($0, profile: profile.name) }
                          ?? Self.errorForVerdict(outcome, profile: profile.name))
    }

    // MARK: - The actions

    private func perform(_ action: EnrollmentAction, state: ProfileState, live: LiveCertificate?,
                         store: ProfileStore) async throws -> (StepOutcome, InstalledCertificate?) {
        switch action {
        case .wait:
            preconditionFailure("wait is not performed")
        case .abandon(let reason):
            logger.warning("abandoning the request on file: \(reason)")
            return (.abandoned(transactionID: state.phase.transaction?.transactionID ?? "-", reason: reason), nil)
        case .startRequest(let purpose):
            let revoked = RevocationSchedule.revocation(state, for: live.map(facts)) != nil
            return (.prepared(try await startRequest(purpose, live: live, liveRevoked: revoked, store: store)), nil)
        case .checkRevocation:
            guard let live else { return (.localFailure("no certificate to check"), nil) }
            return (.revocationChecked(try await checkRevocation(live, store: store)), nil)
        case .send, .resend:
            guard let transaction = state.phase.transaction else { return (.localFailure("no request on file"), nil) }
            guard let messageDER = try store.loadPendingRequest() else {
                let reason = "the request of transaction \(transaction.transactionID) is not on file (written by an older agent, or removed); a new one follows"
                return (.abandoned(transactionID: transaction.transactionID, reason: reason), nil)
            }
            let session = try await connect()
            let keys = try transactionKeys(transaction, store: store)
            let answer = try await session.enrollment.submit(PreparedEnrollment(transaction: transaction, messageDER: messageDER),
                                                             server: session.server, replyKey: keys.signer, newKey: keys.new)
            return try await settle(answer, action: action, transaction: transaction, phase: state.phase, store: store)
        case .poll:
            guard let transaction = state.phase.transaction else { return (.localFailure("no request on file"), nil) }
            let session = try await connect()
            let keys = try transactionKeys(transaction, store: store)
            let answer = try await session.enrollment.poll(transaction, server: session.server, signerKey: keys.signer, newKey: keys.new)
            return try await settle(answer, action: action, transaction: transaction, phase: state.phase, store: store)
        }
    }

    /// A verified answer: install a certificate, or hand the verdict to the transitions.
    private func settle(_ answer: EnrollmentOutcome, action: EnrollmentAction, transaction: SCEPTransaction,
                        phase: EnrollmentPhase, store: ProfileStore) async throws -> (StepOutcome, InstalledCertificate?) {
        guard case .issued(let issued) = answer else {
            return (StepClassifier.outcome(of: answer, action: action, phase: phase) ?? .pending, nil)
        }
        let generation = try store.installWithPendingKey(certificatePEM: issued.certificatePEM, chainPEM: issued.chainPEM)
        let certificate = issued.certificate
        let lifetime = CertificateLifetime(notBefore: certificate.notValidBefore, notAfter: certificate.notValidAfter)
        var rng = SystemRandomNumberGenerator()
        let jitter = RenewalSchedule.pickJitter(lifetime, policy: policy.renewal, using: &rng)
        let facts = LiveCertificateFacts(lifetime: lifetime, serial: CertificateText.serialHex(certificate))
        return (.installed(facts, keyStorage: transaction.keyStorage, jitter: jitter),
                InstalledCertificate(generation: generation, certificate: certificate, kind: transaction.kind))
    }

    /// Key first (a TPM may take seconds or fail, and neither should use up a one-time
    /// challenge), then the challenge, then the request; everything is on file before
    /// anything is sent.
    private func startRequest(_ purpose: RequestPurpose, live: LiveCertificate?, liveRevoked: Bool, store: ProfileStore) async throws -> SCEPTransaction {
        let session = try await connect()
        let now = environment.clock.now()
        // Not expired is what counts here: a certificate whose notBefore lies a few seconds
        // ahead of our clock (the CA's clock runs ahead) can sign a RenewalReq all the same.
        // A revoked one is treated as gone: no RenewalReq, no reused key, nothing it "renews".
        let liveValid = !liveRevoked && (live.map { now <= $0.certificate.notValidAfter } ?? false)
        let liveAlgorithm = live.flatMap { KeyAlgorithm(publicKey: $0.certificate.publicKey) }
        let liveKeyReceivesReplies = liveAlgorithm?.canDecryptEnvelopes ?? true
        // A CA rollover: the live certificate's CA is pinned (old and new during a change, or
        // the old pin after GetNextCACert) but the server no longer presents it.
        let fromCurrentCA = live.map { !session.enrollment.pin.pinsOne(of: $0.chain) || session.server.certificates.isIssuedByTrustedCA($0.certificate) } ?? true
        let kind = EnrollmentPlanner.requestKind(purpose: purpose, mode: profile.renewalMode.requestMode,
                                                 serverOffersRenewal: session.server.capabilities.supportsRenewal, liveCertificateValid: liveValid,
                                                 liveCertificateRevoked: liveRevoked, liveKeyReceivesReplies: liveKeyReceivesReplies,
                                                 liveCertificateFromCurrentCA: fromCurrentCA)
        if liveRevoked {
            logger.info("the installed certificate is revoked: a PKCSReq with a new key and a fresh challenge replaces it, never a RenewalReq signed by it")
        } else if kind == .pkcsReq, purpose.mayRenewWithLiveCertificate, liveValid, !liveKeyReceivesReplies, let liveAlgorithm {
            logger.info("renewing the \(liveAlgorithm) certificate with a PKCSReq and a fresh challenge: a RenewalReq's reply would be encrypted to its key, which cannot receive RSA key transport")
        } else if kind == .pkcsReq, purpose.mayRenewWithLiveCertificate, liveValid, !fromCurrentCA, profile.renewalMode == .auto {
            logger.info("the installed certificate was issued by a CA the server no longer presents (CA rollover): renewing with a PKCSReq and a fresh challenge, as the new CA may refuse a RenewalReq signed by it")
        } else if kind == .pkcsReq, purpose.mayRenewWithLiveCertificate, liveValid, profile.renewalMode == .auto {
            logger.info("the server does not offer Renewal; renewing with a PKCSReq and a fresh challenge")
        }
        let renewal: (certificate: Certificate, key: any EnrollmentKey)? = kind == .renewalReq ? (live!.certificate, try liveKey(store)) : nil

        let key: any EnrollmentKey
        let stored: (any EnrollmentKey)? = profile.reuseKey && liveValid ? try (renewal?.key ?? liveKey(store)) : nil
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
        // PKCSReq is authenticated by a fresh challenge. A RenewalReq is authenticated by the
        // current certificate, but RFC 8894 lets it carry a challenge too, and some servers
        // (micromdm scepserver) insist: send one whenever a source is configured.
        let challenge = try await challengeProvider().fetchChallenge()
        let spec = try ProfileRequest.spec(for: profile, host: environment.host, endpointVariables: challenge?.variables ?? [:])
        let renews = liveValid ? live.map { RenewedCertificate(serial: CertificateText.serialHex($0.certificate), notAfter: $0.certificate.notValidAfter) } : nil
        // An EC key's reply goes to a temporary RSA key (RFC 8894 §2.3), kept with the request.
        let envelopeKey = renewal == nil ? try keyProvider.envelopeKey(for: key) : nil
        let prepared = try await session.enrollment.prepare(
            server: session.server, newKey: key, spec: spec, challenge: challenge?.secret.value, renewWith: renewal, renews: renews,
            envelopeKey: envelopeKey)
        try store.savePendingKey(pem: try key.pemRepresentation())
        if let envelopeKey { try store.savePendingEnvelopeKey(pem: try envelopeKey.pemRepresentation()) }
        try store.savePendingRequest(prepared.messageDER)
        logger.info("prepared \(kind.rawValue) (\(purpose.description))",
                    metadata: ["transactionID": "\(prepared.transaction.transactionID)", "keyStorage": "\(key.storage.rawValue)"])
        return prepared.transaction
    }

    /// The key the issued certificate must carry, and the one that signs our messages and
    /// opens the reply (the live key for a RenewalReq, the temporary RSA key of an EC key's
    /// PKCSReq).
    private func transactionKeys(_ transaction: SCEPTransaction, store: ProfileStore) throws -> (new: any EnrollmentKey, signer: any EnrollmentKey) {
        guard let pem = try store.loadPendingKey() else {
            throw AgentError(.store, "the key of transaction \(transaction.transactionID) is missing from \(store.pendingKeyPath); run `enroll-agent enroll --abandon-pending` to start over")
        }
        let new = try keyProvider.loadKey(pem: pem)
        if transaction.kind == .renewalReq { return (new, try liveKey(store)) }
        guard !new.algorithm.canDecryptEnvelopes else { return (new, new) }
        guard let envelopePEM = try store.loadPendingEnvelopeKey() else {
            throw AgentError(.store, "the temporary RSA key of transaction \(transaction.transactionID) (an \(new.algorithm) request) is missing from \(store.pendingEnvelopeKeyPath); run `enroll-agent enroll --abandon-pending` to start over")
        }
        return (new, try SoftwareKey(pem: envelopePEM))
    }

    private func liveKey(_ store: ProfileStore) throws -> any EnrollmentKey {
        guard let generation = try store.liveGeneration() else {
            throw AgentError(.store, "a RenewalReq needs the installed certificate's key, and no certificate is installed")
        }
        return try keyProvider.loadKey(pem: try store.readBundle(of: generation).keyPEM)
    }

    // MARK: - Around the steps

    struct ServerSession {
        let enrollment: SCEPEnrollment
        let server: ServerProfile
    }

    /// GetCACaps + GetCACert, checked against the pin (and announced next CAs), then
    /// GetNextCACert when due (`followCARollover`).
    func connect() async throws -> ServerSession {
        let transport = RetryingTransport(
            base: try environment.makeTransport(profile), maxAttempts: 3, initialDelay: 1, sleeper: environment.sleeper,
            events: { [logger] in AgentEvents.log($0, logger) })
        let pin = try loadPin()
        let enrollment = SCEPEnrollment(
            service: SCEPService(url: profile.scepURL.absoluteString, transport: transport), pin: pin,
            preferredCipher: profile.contentEncryption.cipher, allowWeakAlgorithms: profile.allowWeakAlgorithms,
            now: { [clock = environment.clock] in clock.now() }, events: { [logger] in AgentEvents.log($0, logger) })
        let server = try await enrollment.discover()
        logger.debug("SCEP server checked against the pinned CA", metadata: [
            "url": "\(profile.scepURL.absoluteString)", "issuer": "\(server.certificates.issuingCA.subject)",
            "digest": "\(server.algorithms.digest.rawValue)", "cipher": "\(server.algorithms.cipher.rawValue)",
            "method": "\(server.algorithms.usePOST ? "POST" : "GET")"])
        let session = ServerSession(enrollment: enrollment, server: server)
        await followCARollover(session, pin: pin)
        return session
    }

    private func afterInstall(_ installed: InstalledCertificate, store: ProfileStore) async {
        let certificate = installed.certificate
        logger.info("certificate installed", metadata: [
            "subject": "\(certificate.subject)", "serial": "\(CertificateText.serial(certificate))",
            "notAfter": "\(certificate.notValidAfter)", "path": "\(store.liveCertificatePath)",
            "generation": "\(installed.generation.id)", "via": "\(installed.kind.rawValue)"])
        if !profile.postInstall.isEmpty {
            await PostInstallHook(argv: profile.postInstall, passedThrough: profile.hookEnvironment).run(
                profile: profile.name, paths: (store.liveCertificatePath, store.liveKeyPath, store.liveFullchainPath), logger: logger)
        }
    }

    private func report(_ outcome: StepOutcome, next: ProfileState) {
        switch outcome {
        case .pending:
            logger.info("request pending at the CA", metadata: [
                "transactionID": "\(next.phase.transaction?.transactionID ?? "-")",
                "nextPoll": "\(next.retryAt.map { ProfileStatus.format($0) } ?? "-")"])
        case .unknownToCA(let message):
            logger.warning("the CA does not know the request on file (\(message)); sending the same request again")
        case .unreadable(let reason):
            logger.error("the CA's answer could not be used: \(reason)")
        case .unverified(let message) where next.phase.transaction != nil:
            logger.warning("no usable answer for the request on file (\(message)); it stays on file and is tried again",
                           metadata: ["retryAt": "\(next.retryAt.map { ProfileStatus.format($0) } ?? "-")"])
        case .abandoned(let transactionID, _):
            logger.info("transaction abandoned", metadata: ["transactionID": "\(transactionID)"])
        case .revocationChecked(let check):
            RevocationLog.report(check, onRevoked: profile.revocation.onRevoked.policy, logger: logger)
        default:
            break
        }
    }

    /// A verified FAILURE ends the run with exit 77 even though nothing was thrown.
    static func errorForVerdict(_ outcome: StepOutcome, profile: String) -> AgentError? {
        if case .rejected(let message) = outcome { return AgentError(.rejected, message, profile: profile) }
        return nil
    }

    static func describe(_ action: EnrollmentAction, state: ProfileState) -> String {
        switch action {
        case .wait: return "nothing to do"
        case .startRequest(let purpose): return "starting a new request: \(purpose.description)"
        case .send: return "sending the request on file"
        case .resend: return "sending the same request again"
        case .poll: return "polling the CA for the request on file (CertPoll)"
        case .abandon(let reason): return "giving up the request on file: \(reason)"
        case .checkRevocation: return "checking the certificate against its CRL"
        }
    }

    /// Files of a transaction the state no longer names (a crash after the state was
    /// saved and before they were deleted): only the lock holder gets here.
    private func discardFilesOfEndedTransaction(state: ProfileState, store: ProfileStore) throws {
        if state.phase.transaction == nil, try store.loadPendingKey() != nil || store.loadPendingRequest() != nil {
            try store.clearPending()
        }
    }

    /// A run stopped (killed, power cut) after it installed a transaction's certificate and
    /// before it saved the state: the transaction is still on file, but its key is the live
    /// key. Polling it again would sign the CertPoll of a RenewalReq with the wrong key (the
    /// CA refuses it for ever); the install is recorded instead, and the hook runs.
    /// The live key is the pending key, and (for a renewal, where `reuse_key` keeps the key)
    /// the live certificate is not the one the transaction renews.
    private func recordInstallOfAStoppedRun(live: LiveCertificate, state: inout ProfileState, store: ProfileStore, now: Date) async throws {
        guard let transaction = state.phase.transaction, let pendingKey = try store.loadPendingKey(),
              try store.readBundle(of: live.generation).keyPEM == pendingKey,
              transaction.renews.map({ $0.serial != CertificateText.serialHex(live.certificate) }) ?? true else { return }
        logger.warning("the certificate of transaction \(transaction.transactionID) was installed by a run that stopped before recording it; recorded now",
                       metadata: ["generation": "\(live.generation.id)", "serial": "\(CertificateText.serial(live.certificate))"])
        var rng = SystemRandomNumberGenerator()
        let jitter = RenewalSchedule.pickJitter(live.lifetime, policy: policy.renewal, using: &rng)
        state = EnrollmentTransitions.apply(.installed(facts(live), keyStorage: transaction.keyStorage, jitter: jitter), after: .poll,
                                            to: state, policy: policy, liveNotAfter: live.certificate.notValidAfter, now: now, using: &rng)
        try save(state, store)
        try? store.clearPending()
        await afterInstall(InstalledCertificate(generation: live.generation, certificate: live.certificate, kind: transaction.kind), store: store)
    }

    private func pickJitterIfNeeded(for live: LiveCertificate, state: inout ProfileState, store: ProfileStore) throws {
        let serial = CertificateText.serialHex(live.certificate)
        guard state.renewalJitter?.serial != serial else { return }
        let lifetime = CertificateLifetime(notBefore: live.certificate.notValidBefore, notAfter: live.certificate.notValidAfter)
        var rng = SystemRandomNumberGenerator()
        state.renewalJitter = RenewalJitter(serial: serial, seconds: RenewalSchedule.pickJitter(lifetime, policy: policy.renewal, using: &rng))
        try save(state, store)
    }

    func facts(_ live: LiveCertificate) -> LiveCertificateFacts {
        LiveCertificateFacts(lifetime: CertificateLifetime(notBefore: live.certificate.notValidBefore, notAfter: live.certificate.notValidAfter),
                             serial: CertificateText.serialHex(live.certificate),
                             hasCRLDistributionPoint: live.certificate.extensions[oid: CRLDistributionPoints.oid] != nil)
    }

    private func readLive(_ store: ProfileStore) -> LiveCertificate? {
        do { return try LiveCertificate.load(from: store) } catch {
            logger.warning("the installed generation cannot be read (\(error)); enrolling anew")
            return nil
        }
    }

    private func save(_ state: ProfileState, _ store: ProfileStore) throws {
        do { try store.saveState(state) } catch { throw AgentError.wrap(error, profile: profile.name) }
    }

    // MARK: - Store, lock, pin, key and challenge sources

    /// Opens the store to write in; touches nothing but missing directories. Leftovers are
    /// cleaned by `takeLock`, once no other run can be installing.
    func openStore() throws -> ProfileStore {
        do {
            return try ProfileStore(directory: storeDirectory)
        } catch {
            throw AgentError.wrap(error, profile: profile.name)
        }
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

    func loadState(_ store: ProfileStore) throws -> ProfileState {
        do {
            return try store.loadState()
        } catch let error as CertStoreError where error.code == .corruptState {
            let moved = try store.moveCorruptStateAside(now: environment.clock.now())
            logger.warning("the state file was corrupt and was moved aside; starting fresh", metadata: ["movedTo": "\(moved ?? "-")"])
            return ProfileState()
        }
    }

    func loadPin() throws -> PinnedCA {
        let pemText = try profile.caPin.file.map(PinFile.read)
        return try PinnedCA(pemText: pemText, fingerprints: profile.caPin.sha256Fingerprints,
                            raFingerprints: profile.caPin.raSHA256Fingerprints).addingCandidates(nextCACandidates())
    }

    var keyProvider: KeyProvider {
        KeyProvider(policy: profile.keyStorage, tcti: profile.tcti, algorithm: profile.keyAlgorithm, logger: logger)
    }

    func challengeProvider() throws -> any ChallengeProvider {
        switch profile.challenge {
        case .noChallenge: return NoChallengeProvider()
        case .file(let path): return FileChallengeProvider(path: path)
        case .command(let argv): return CommandChallengeProvider(argv: argv)
        case .endpoint(let endpoint):
            return EndpointChallengeProvider(url: endpoint.url.absoluteString, auth: endpoint.auth, format: endpoint.format,
                                             transport: try environment.makeTransport(profile), sleeper: environment.sleeper, logger: logger, clock: environment.clock)
        }
    }
}

extension OnRevoked {
    var policy: RevokedCertificatePolicy {
        switch self {
        case .reenroll: return .reenroll
        case .report: return .report
        }
    }
}

extension RenewalMode {
    var requestMode: RenewalRequestMode {
        switch self {
        case .auto: return .auto
        case .renewalReq: return .renewalReq
        case .pkcsReq: return .pkcsReq
        }
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
