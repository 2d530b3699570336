#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import EnrollmentPlan
import Foundation

/// Names inside a profile directory:
///
/// ```
/// <profile>/
///   live -> generations/000007        the current generation (relative symlink)
///   previous -> generations/000006    kept for rollback
///   generations/000007/{cert,chain,fullchain,key}.pem
///   generations/.staging-<random>/    an install in progress (or killed); never read
///   lock                              flock(2) target, holds the holder's pid
///   state.json                        ProfileState (EnrollmentPlan), 0644, no secrets
///   pending/key.pem                   key of a pending SCEP transaction, 0600 (dir 0700)
///   pending/envelope-key.pem          its temporary RSA key, for an EC key's request, 0600
/// ```
enum StoreLayout {
    static let generationsDirectory = "generations"
    static let live = "live"
    static let previous = "previous"
    static let lock = "lock"
    static let state = "state.json"
    static let pendingDirectory = "pending"
    static let pendingKey = "key.pem"
    static let pendingEnvelopeKey = "envelope-key.pem"
    static let pendingRequest = "request.der"
    /// The live certificate's last verified CRL (public data, 0644).
    static let crlCache = "crl.der"
    /// The next CA the SCEP server announced (public data, 0644; `NextCARecord`).
    static let nextCA = "next-ca.json"
    static let certificateFile = "cert.pem"
    static let chainFile = "chain.pem"
    static let fullchainFile = "fullchain.pem"
    static let keyFile = "key.pem"
    static let stagingPrefix = ".staging-"
    /// Marks temp files and temp symlinks left by a killed write (`.<name>.tmp-<random>`).
    static let temporaryMarker = ".tmp-"

    static let directoryMode: mode_t = 0o755
    static let pendingDirectoryMode: mode_t = 0o700
    static let certificateMode: mode_t = 0o644
    static let keyMode: mode_t = 0o600
    static let stateMode: mode_t = 0o644

    /// Generation directories are all digits; anything else in `generations/` is not one.
    static func isGenerationID(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
    }

    static func formatGenerationID(_ number: Int) -> String {
        let digits = String(number)
        return String(repeating: "0", count: max(0, 6 - digits.count)) + digits
    }

    static func isLeftoverTemporary(_ name: String) -> Bool {
        name.hasPrefix(".") && name.contains(temporaryMarker)
    }
}

/// The file-based store of one profile: generations of certificate + key, the `live`
/// and `previous` symlinks, the lock, the persisted enrollment state and the pending key.
///
/// Readers (nginx, curl, the agent's `status`) use `<profile>/live/{cert,chain,fullchain,key}.pem`.
/// An install builds a complete generation in a staging directory, fsyncs it, renames it
/// into `generations/`, then swaps `live` with rename(2): a kill at any instant leaves the
/// old or the new generation live, never a mix or a half-written file.
///
/// Mutating methods (`install`, `rollback`, `saveState`, the pending-key methods) expect
/// the caller to hold `lock(wait:)`: the store does not take it itself, because flock held
/// through another descriptor in the same process would deadlock. Removing what a killed
/// run left behind asks for the held lock as an argument (`cleanUpLeftovers(holding:)`),
/// because without it the "leftovers" may be another run's install in progress.
///
/// Opening a store changes nothing but missing directories; `init(readingFrom:)` opens it
/// for reading only (`status`, `check-config`) and changes nothing at all.
public final class ProfileStore: Sendable {
    /// The profile directory, `<state_dir>/<profile>`.
    public let directory: String
    /// False for a store opened with `init(readingFrom:)`: every mutating method then throws
    /// `.openedReadOnly`.
    public let isWritable: Bool
    private let fileSystem: StoreFileSystem

    /// Opens the store at `directory` to enroll and install in it, creating it (and missing
    /// parents) with mode 0755. Nothing else is touched: leftovers of a killed run are
    /// removed by `cleanUpLeftovers(holding:)` once the lock is held.
    ///
    /// Run as root, throws `.ownedByAnotherUser` (before creating anything) when the
    /// directory, its parent (the state_dir) or its `generations`/`pending` folders belong
    /// to another user: the store is that user's, and root acting in a tree another user
    /// controls is how files elsewhere get overwritten or deleted.
    public init(directory: String, fileSystem: StoreFileSystem = POSIXFileSystem()) throws {
        self.directory = Self.trimmingTrailingSlashes(directory)
        self.fileSystem = fileSystem
        self.isWritable = true
        try refuseForeignStoreAsRoot()
        try createDirectoryWithParents(self.directory)
    }

    /// Opens the store at `directory` for reading: creates, locks, cleans and modifies
    /// nothing, and works on a store owned by another user (root's `status`). A missing
    /// directory reads as an empty store.
    public init(readingFrom directory: String, fileSystem: StoreFileSystem = POSIXFileSystem()) {
        self.directory = Self.trimmingTrailingSlashes(directory)
        self.fileSystem = fileSystem
        self.isWritable = false
    }

    private static func trimmingTrailingSlashes(_ path: String) -> String {
        var trimmed = path
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed.removeLast() }
        return trimmed
    }

    // MARK: Paths

    /// `<profile>/live`: the directory external programs read from.
    public var liveDirectory: String { path(StoreLayout.live) }
    /// `<profile>/live/cert.pem`.
    public var liveCertificatePath: String { liveDirectory + "/" + StoreLayout.certificateFile }
    /// `<profile>/live/chain.pem`.
    public var liveChainPath: String { liveDirectory + "/" + StoreLayout.chainFile }
    /// `<profile>/live/fullchain.pem`.
    public var liveFullchainPath: String { liveDirectory + "/" + StoreLayout.fullchainFile }
    /// `<profile>/live/key.pem`.
    public var liveKeyPath: String { liveDirectory + "/" + StoreLayout.keyFile }
    /// `<profile>/state.json`.
    public var statePath: String { path(StoreLayout.state) }
    /// `<profile>/pending/key.pem`.
    public var pendingKeyPath: String { pendingDirectory + "/" + StoreLayout.pendingKey }
    /// `<profile>/pending/envelope-key.pem`: the temporary RSA key an EC key's request is
    /// signed and answered with (RFC 8894 §2.3); 0600, gone with the transaction.
    public var pendingEnvelopeKeyPath: String { pendingDirectory + "/" + StoreLayout.pendingEnvelopeKey }
    /// `<profile>/pending/request.der`: the pkiMessage as sent (its challenge is encrypted
    /// to the CA/RA, and still it is kept 0600), so the same request can be sent again.
    public var pendingRequestPath: String { pendingDirectory + "/" + StoreLayout.pendingRequest }
    /// `<profile>/lock`.
    public var lockPath: String { path(StoreLayout.lock) }
    /// `<profile>/crl.der`: the last CRL that verified for the live certificate; its
    /// nextUpdate is also in the state.
    public var crlCachePath: String { path(StoreLayout.crlCache) }

    private var generationsDirectory: String { path(StoreLayout.generationsDirectory) }
    private var previousLink: String { path(StoreLayout.previous) }
    private var pendingDirectory: String { path(StoreLayout.pendingDirectory) }

    private func path(_ name: String) -> String { directory + "/" + name }

    private func generation(_ id: String) -> InstalledGeneration {
        InstalledGeneration(id: id, directory: generationsDirectory + "/" + id)
    }

    // MARK: Reading generations

    /// The generation `live` points to, or nil before the first install.
    /// Throws `.brokenGeneration` when `live` points to something that is not a complete generation.
    public func liveGeneration() throws -> InstalledGeneration? {
        guard let id = try linkedGenerationID(liveDirectory) else { return nil }
        let live = generation(id)
        let missing = try missingFiles(live)
        guard missing.isEmpty else {
            throw CertStoreError(.brokenGeneration, path: live.directory,
                                 message: "the live generation \(live.directory) lacks \(missing.joined(separator: ", ")); reinstall the certificate (enroll again) or roll back")
        }
        return live
    }

    /// The generation kept for rollback, or nil when there is none (or it is no longer complete).
    public func previousGeneration() throws -> InstalledGeneration? {
        guard let id = try? linkedGenerationID(previousLink) else { return nil }
        let previous = generation(id)
        guard try missingFiles(previous).isEmpty else { return nil }
        return previous
    }

    /// IDs of the complete generation directories, oldest first (staging directories excluded).
    public func generationIDs() throws -> [String] {
        try fileSystem.contentsOfDirectory(generationsDirectory)
            .filter(StoreLayout.isGenerationID)
            .filter { try missingFiles(generation($0)).isEmpty }
            .sorted { (Int($0) ?? 0, $0) < (Int($1) ?? 0, $1) }
    }

    /// Reads the certificate, chain and key of one generation.
    public func readBundle(of generation: InstalledGeneration) throws -> CertificateBundle {
        func text(_ path: String) throws -> String {
            guard let bytes = try fileSystem.readFile(path) else {
                throw CertStoreError(.brokenGeneration, path: path,
                                     message: "\(path) is missing; reinstall the certificate (enroll again) or roll back")
            }
            return String(decoding: bytes, as: UTF8.self)
        }
        return CertificateBundle(certificatePEM: try text(generation.certificatePath),
                                 chainPEM: try text(generation.chainPath),
                                 keyPEM: try text(generation.keyPath))
    }

    /// The generation ID a `live`/`previous` symlink names, nil when the link is absent.
    private func linkedGenerationID(_ link: String) throws -> String? {
        guard let target = try fileSystem.readSymlink(link) else { return nil }
        let prefix = StoreLayout.generationsDirectory + "/"
        guard target.hasPrefix(prefix), StoreLayout.isGenerationID(String(target.dropFirst(prefix.count))) else {
            throw CertStoreError(.brokenGeneration, path: link,
                                 message: "\(link) points to \(target), not to a generation under \(generationsDirectory); remove the link and enroll again")
        }
        return String(target.dropFirst(prefix.count))
    }

    private func missingFiles(_ generation: InstalledGeneration) throws -> [String] {
        try generation.allPaths.filter { try fileSystem.itemKind($0) != .file }.map(lastComponent(of:))
    }

    // MARK: Installing

    /// Installs `bundle` as a new generation and makes it live; the generation that was
    /// live becomes `previous`, older ones are pruned.
    ///
    /// If this throws, the generation that was live before is still live and untouched.
    /// Once it returns, the new generation is live; housekeeping after that point (the
    /// `previous` link, pruning) is best effort and retried by the next install.
    @discardableResult
    public func install(_ bundle: CertificateBundle) throws -> InstalledGeneration {
        try requireWritable("install a certificate")
        try bundle.validate(profile: directory)
        try fileSystem.makeDirectory(generationsDirectory, mode: StoreLayout.directoryMode)
        try cleanUpStaging()

        // The old live generation becomes `previous` only if it is complete.
        let oldLive = try? liveGeneration()
        let new = generation(try nextGenerationID())
        try buildGeneration(bundle, at: new)

        do {
            try swapLink(liveDirectory, to: new.id)
        } catch {
            // `live` still names the old generation; the new one must not linger as a candidate.
            try? removeGeneration(new.id)
            throw error
        }

        if let oldLive, oldLive.id != new.id {
            try? swapLink(previousLink, to: oldLive.id)
        }
        try? pruneGenerations()
        return new
    }

    /// Installs the certificate with the key saved by `savePendingKey(pem:)`.
    ///
    /// The pending key is left in place: after this returns, set the phase to idle
    /// to nil and save it, then call `clearPending()`. A crash in between then at worst
    /// leaves an unused key file, never a pending transaction without its key.
    @discardableResult
    public func installWithPendingKey(certificatePEM: String, chainPEM: String) throws -> InstalledGeneration {
        guard let key = try loadPendingKey() else {
            throw CertStoreError(.noPendingKey, path: pendingKeyPath,
                                 message: "no pending key at \(pendingKeyPath) to install the issued certificate with; abandon the pending transaction and enroll again")
        }
        return try install(CertificateBundle(certificatePEM: certificatePEM, chainPEM: chainPEM, keyPEM: key))
    }

    /// Makes the previous generation live again (and the current one previous, so a second
    /// rollback undoes the first). Returns the generation now live.
    @discardableResult
    public func rollback() throws -> InstalledGeneration {
        try requireWritable("roll back")
        let live = try liveGeneration()
        guard let previous = try previousGeneration(), previous.id != live?.id else {
            throw CertStoreError(.noPreviousGeneration, path: previousLink,
                                 message: "no previous generation to roll back to in \(directory)")
        }
        try swapLink(liveDirectory, to: previous.id)
        if let live {
            try? swapLink(previousLink, to: live.id)
        }
        return previous
    }

    /// Removes what a killed install or write left behind: staging directories and temp
    /// files. Readers never look at them; this only reclaims space.
    ///
    /// Only with the lock held, which `lock` proves: while another run holds it, a staging
    /// directory may be its install in progress. Throws `.lockNotHeld` for a released lock
    /// or one of another store.
    public func cleanUpLeftovers(holding lock: ProfileLock) throws {
        try requireWritable("clean up leftovers")
        guard lock.isHeld, lock.path == lockPath else {
            throw CertStoreError(.lockNotHeld, path: lockPath,
                                 message: "refusing to clean up \(directory) without holding its lock \(lockPath) (given \(lock.isHeld ? "the lock \(lock.path)" : "a released lock")); this is a bug in the caller")
        }
        try cleanUpStaging()
    }

    /// Removes staging directories and temp files (see `cleanUpLeftovers(holding:)`); the
    /// caller holds the lock. Every removal goes by descriptor, never through a symlink.
    private func cleanUpStaging() throws {
        for name in try fileSystem.contentsOfDirectory(generationsDirectory)
        where name.hasPrefix(StoreLayout.stagingPrefix) || StoreLayout.isLeftoverTemporary(name) {
            try fileSystem.removeTree(StoreLayout.generationsDirectory + "/" + name, under: directory)
        }
        for name in try fileSystem.contentsOfDirectory(directory) where StoreLayout.isLeftoverTemporary(name) {
            try fileSystem.removeTree(name, under: directory)
        }
        // A `pending` that is not a directory is not listed: its names are not the store's.
        guard try fileSystem.itemKind(pendingDirectory) == .directory else { return }
        for name in try fileSystem.contentsOfDirectory(pendingDirectory) where StoreLayout.isLeftoverTemporary(name) {
            try fileSystem.removeTree(StoreLayout.pendingDirectory + "/" + name, under: directory)
        }
    }

    private func nextGenerationID() throws -> String {
        var highest = 0
        for name in try fileSystem.contentsOfDirectory(generationsDirectory) where StoreLayout.isGenerationID(name) {
            highest = max(highest, Int(name) ?? 0)
        }
        // Links may name a generation whose directory vanished; never reuse its number.
        for link in [liveDirectory, previousLink] {
            if let id = try? linkedGenerationID(link), let number = Int(id) { highest = max(highest, number) }
        }
        return StoreLayout.formatGenerationID(highest + 1)
    }

    /// Writes the four files into a staging directory, makes them durable, then renames
    /// the directory to its generation name. On failure nothing is left but, at worst, a
    /// staging directory that readers ignore and the next install removes.
    private func buildGeneration(_ bundle: CertificateBundle, at target: InstalledGeneration) throws {
        let staging = generationsDirectory + "/" + StoreLayout.stagingPrefix + randomSuffix()
        try fileSystem.makeDirectory(staging, mode: StoreLayout.directoryMode)
        do {
            let files: [(String, String, mode_t)] = [
                (StoreLayout.keyFile, bundle.keyPEM, StoreLayout.keyMode),
                (StoreLayout.certificateFile, bundle.certificatePEM, StoreLayout.certificateMode),
                (StoreLayout.chainFile, bundle.chainPEM, StoreLayout.certificateMode),
                (StoreLayout.fullchainFile, bundle.fullchainPEM, StoreLayout.certificateMode),
            ]
            for (name, text, mode) in files {
                try fileSystem.writeFile(staging + "/" + name, contents: Array(text.utf8), mode: mode)
            }
            try fileSystem.syncDirectory(staging)
            try fileSystem.rename(staging, to: target.directory)
        } catch {
            try? removeGeneration(lastComponent(of: staging))
            throw error
        }
        do {
            try fileSystem.syncDirectory(generationsDirectory)
        } catch {
            try? removeGeneration(target.id)
            throw error
        }
    }

    /// Points `link` at `generations/<id>` atomically: a new symlink under a temp name,
    /// renamed over `link`. Once the rename succeeded the swap counts as done; the
    /// directory fsync after it is best effort (on power loss the old target may come
    /// back, which is also a consistent state).
    private func swapLink(_ link: String, to id: String) throws {
        let temporary = directory + "/." + lastComponent(of: link) + StoreLayout.temporaryMarker + randomSuffix()
        try fileSystem.createSymlink(at: temporary, target: StoreLayout.generationsDirectory + "/" + id)
        do {
            try fileSystem.rename(temporary, to: link)
        } catch {
            try? fileSystem.removeItem(temporary)
            throw error
        }
        try? fileSystem.syncDirectory(directory)
    }

    /// Keeps the generations `live` and `previous` name; removes every other one.
    private func pruneGenerations() throws {
        let keep = Set([try? linkedGenerationID(liveDirectory), try? linkedGenerationID(previousLink)].compactMap { $0 })
        guard !keep.isEmpty else { return }
        for name in try fileSystem.contentsOfDirectory(generationsDirectory)
        where StoreLayout.isGenerationID(name) && !keep.contains(name) {
            try removeGeneration(name)
        }
        try fileSystem.syncDirectory(generationsDirectory)
    }

    /// Removes `generations/<name>` (a generation or a staging directory) by descriptor.
    private func removeGeneration(_ name: String) throws {
        try fileSystem.removeTree(StoreLayout.generationsDirectory + "/" + name, under: directory)
    }

    private func createDirectoryWithParents(_ path: String) throws {
        if try fileSystem.itemKind(path) == .directory { return }
        let parent = parentDirectory(of: path)
        if parent != path && parent != "." && parent != "/" {
            try createDirectoryWithParents(parent)
        }
        try fileSystem.makeDirectory(path, mode: StoreLayout.directoryMode)
    }

    /// Root never modifies a store that belongs to someone else (see `init(directory:)`).
    private func refuseForeignStoreAsRoot() throws {
        guard geteuid() == 0 else { return }
        let stateDirectory = parentDirectory(of: directory)
        for folder in [stateDirectory, directory, generationsDirectory, pendingDirectory] {
            guard let owner = try fileSystem.owner(of: folder), owner != 0 else { continue }
            throw CertStoreError.ownedByAnotherUser(folder, owner: owner, handOver: folder == stateDirectory ? folder : directory)
        }
    }

    private func requireWritable(_ action: String) throws {
        guard isWritable else {
            throw CertStoreError(.openedReadOnly, path: directory,
                                 message: "cannot \(action) in \(directory): the store was opened read-only (for status); this is a bug in the caller")
        }
    }

    // MARK: Lock

    /// Takes the per-profile lock (flock on `<profile>/lock`, created 0600), waiting up to
    /// `wait` for another holder to release it. Throws `.lockBusy` naming the holder (pid,
    /// command, uid from /proc/locks) when the wait runs out, `CancellationError` when the
    /// current task is cancelled meanwhile. Blocks the calling thread while it waits.
    public func lock(wait: Duration = ProfileLock.defaultWait) throws -> ProfileLock {
        try requireWritable("take the lock")
        return try ProfileLock.acquire(path: lockPath, wait: wait)
    }

    /// Takes the per-profile lock if it is free; nil at once when another holder has it.
    public func tryLock() throws -> ProfileLock? {
        try requireWritable("take the lock")
        return try ProfileLock.tryAcquire(path: lockPath)
    }

    // MARK: Enrollment state

    /// The persisted state; an empty state when `state.json` does not exist yet.
    /// Throws `.corruptState` (naming the file) when it cannot be decoded; the caller may
    /// then call `moveCorruptStateAside(now:)`.
    public func loadState() throws -> ProfileState {
        guard let bytes = try fileSystem.readFile(statePath) else { return ProfileState() }
        do {
            return try StateFileCoding.decode(bytes)
        } catch {
            throw CertStoreError(.corruptState, path: statePath,
                                 message: "the state file \(statePath) is corrupt (\(StateFileCoding.describe(error))); move it aside to start fresh (this forgets any pending SCEP transaction)")
        }
    }

    /// Writes `state.json` atomically (temp file, fsync, rename, fsync directory), mode 0644.
    public func saveState(_ state: ProfileState) throws {
        try requireWritable("save the state")
        let bytes: [UInt8]
        do {
            bytes = try StateFileCoding.encode(state)
        } catch {
            throw CertStoreError(.fileSystem, path: statePath,
                                 message: "cannot encode the state for \(statePath): \(error); this is a bug")
        }
        try fileSystem.writeFile(statePath, contents: bytes, mode: StoreLayout.stateMode)
    }

    /// Renames a corrupt `state.json` to `state.json.corrupt-<UTC timestamp>` so the next
    /// `loadState()` starts fresh. Returns the new path, or nil when there was no state file.
    @discardableResult
    public func moveCorruptStateAside(now: Date) throws -> String? {
        try requireWritable("move the state file aside")
        guard try fileSystem.itemKind(statePath) != nil else { return nil }
        // Basic format (no separators): 20250102T030405Z, safe in file names.
        let stamp = now.formatted(Date.ISO8601FormatStyle(dateSeparator: .omitted, dateTimeSeparator: .standard, timeSeparator: .omitted))
        let base = statePath + ".corrupt-" + stamp
        var destination = base
        var counter = 1
        while try fileSystem.itemKind(destination) != nil {
            destination = base + "-\(counter)"
            counter += 1
        }
        try fileSystem.rename(statePath, to: destination)
        try fileSystem.syncDirectory(directory)
        return destination
    }

    // MARK: CRL cache

    /// Writes the CRL atomically (temp file, fsync, rename, fsync directory), mode 0644:
    /// a CRL is public. Never touches the installed generations.
    public func saveCRL(_ der: [UInt8]) throws {
        try requireWritable("cache the CRL")
        try fileSystem.writeFile(crlCachePath, contents: der, mode: StoreLayout.certificateMode)
    }

    /// The cached CRL, or nil.
    public func loadCRL() throws -> [UInt8]? {
        try fileSystem.readFile(crlCachePath)
    }

    // MARK: Next CA (GetNextCACert)

    /// `<profile>/next-ca.json`.
    public var nextCAPath: String { path(StoreLayout.nextCA) }

    /// Writes the next-CA record atomically (like the CRL cache), mode 0644.
    public func saveNextCA(_ record: NextCARecord) throws {
        try requireWritable("record the announced next CA")
        try fileSystem.writeFile(nextCAPath, contents: try NextCARecord.encode(record), mode: StoreLayout.certificateMode)
    }

    /// The next-CA record, or nil when none is on file. A file that does not decode is
    /// `.corruptState`: the caller may ignore it (it only adds trust, never removes any).
    public func loadNextCA() throws -> NextCARecord? {
        guard let bytes = try fileSystem.readFile(nextCAPath) else { return nil }
        do { return try NextCARecord.decode(bytes) } catch {
            throw CertStoreError(.corruptState, path: nextCAPath,
                                 message: "the next-CA record \(nextCAPath) is corrupt (\(StateFileCoding.describe(error))); remove it, the next contact with the server writes it again")
        }
    }

    // MARK: Pending key

    /// Persists the new private key of a transaction about to be sent, so a restart can
    /// resume polling: `<profile>/pending/key.pem`, 0600, in a 0700 directory, atomically.
    /// Call this before sending the request.
    public func savePendingKey(pem: String) throws {
        try requireWritable("save the pending key")
        try fileSystem.makeDirectory(pendingDirectory, mode: StoreLayout.pendingDirectoryMode)
        try fileSystem.writeFile(pendingKeyPath, contents: Array(pem.utf8), mode: StoreLayout.keyMode)
        try fileSystem.syncDirectory(directory)
    }

    /// Persists the temporary RSA key of an EC key's transaction (see
    /// `pendingEnvelopeKeyPath`), with `savePendingKey(pem:)`, before the request is sent.
    public func savePendingEnvelopeKey(pem: String) throws {
        try requireWritable("save the pending envelope key")
        try fileSystem.makeDirectory(pendingDirectory, mode: StoreLayout.pendingDirectoryMode)
        try fileSystem.writeFile(pendingEnvelopeKeyPath, contents: Array(pem.utf8), mode: StoreLayout.keyMode)
        try fileSystem.syncDirectory(directory)
    }

    /// The pending envelope key, or nil when none is stored.
    public func loadPendingEnvelopeKey() throws -> String? {
        guard let bytes = try fileSystem.readFile(pendingEnvelopeKeyPath) else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Persists the request about to be sent (see `pendingRequestPath`). Call it with
    /// `savePendingKey(pem:)`, before the state names the transaction.
    public func savePendingRequest(_ der: [UInt8]) throws {
        try requireWritable("save the pending request")
        try fileSystem.makeDirectory(pendingDirectory, mode: StoreLayout.pendingDirectoryMode)
        try fileSystem.writeFile(pendingRequestPath, contents: der, mode: StoreLayout.keyMode)
        try fileSystem.syncDirectory(directory)
    }

    /// The request on file, or nil.
    public func loadPendingRequest() throws -> [UInt8]? {
        try fileSystem.readFile(pendingRequestPath)
    }

    /// The pending key, or nil when none is stored.
    public func loadPendingKey() throws -> String? {
        guard let bytes = try fileSystem.readFile(pendingKeyPath) else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Deletes the pending key and its directory (after install, or when abandoning the
    /// transaction). Does not touch `state.json`: persist a phase without a transaction first.
    public func clearPending() throws {
        try requireWritable("clear the pending key")
        try fileSystem.removeTree(StoreLayout.pendingDirectory, under: directory)
        try fileSystem.syncDirectory(directory)
    }
}
