import CertStore
import Foundation
import Logging
import Prometheus
import SCEPClient

/// `metrics_textfile`: the agent's state in Prometheus' text format, for node_exporter's
/// textfile collector (the fleet's monitoring reads it, no port is opened). Rewritten
/// after every enroll, renew and daemon check, from what the store says, so whichever
/// process wrote last wrote the whole truth.
enum MetricsTextfile {
    /// The series for these profiles. Timestamps are Unix seconds; absent facts (no
    /// certificate, never succeeded) leave their series out rather than report 0.
    static func render(_ statuses: [ProfileStatus], version: String = AgentVersion.string) -> String {
        let registry = PrometheusCollectorRegistry()
        registry.makeGauge(name: "enroll_agent_build_info", labels: [("version", version)],
                           help: "The running enroll-agent's version (always 1).").set(to: 1)
        func gauge(_ name: String, _ help: String, _ profile: String, _ value: Double?) {
            guard let value else { return }
            registry.makeGauge(name: name, labels: [("profile", profile)], help: help).set(to: value)
        }
        for status in statuses {
            let profile = status.profile
            gauge("enroll_agent_certificate_not_after_seconds", "notAfter of the installed certificate.",
                  profile, status.certificate?.notAfter.timeIntervalSince1970)
            gauge("enroll_agent_certificate_not_before_seconds", "notBefore of the installed certificate.",
                  profile, status.certificate?.notBefore.timeIntervalSince1970)
            gauge("enroll_agent_certificate_valid", "1 while the installed certificate is valid (not expired, not revoked).",
                  profile, status.state == "valid" ? 1 : 0)
            gauge("enroll_agent_renewal_due_seconds", "When the agent plans the next renewal step.",
                  profile, status.nextRenewal?.timeIntervalSince1970)
            gauge("enroll_agent_last_success_timestamp_seconds", "The last successful enrollment or renewal.",
                  profile, status.lastSuccessAt?.timeIntervalSince1970)
            gauge("enroll_agent_last_attempt_timestamp_seconds", "The last enrollment or renewal attempt.",
                  profile, status.lastAttemptAt?.timeIntervalSince1970)
            gauge("enroll_agent_consecutive_failures", "Failed attempts since the last success.",
                  profile, Double(status.consecutiveFailures))
            gauge("enroll_agent_pending", "1 while a request is on file (sent, PENDING at the CA, or prepared).",
                  profile, status.pending == nil ? 0 : 1)
            if let storage = status.keyStorage {
                registry.makeGauge(name: "enroll_agent_key_storage_info", labels: [("profile", profile), ("storage", storage)],
                                   help: "Where the installed certificate's key lives (always 1).").set(to: 1)
            }
        }
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return String(decoding: buffer, as: UTF8.self)
    }

    /// Writes `text` to `path` atomically: a temporary file in the same directory (0644, the
    /// collector runs as another user), synced, then renamed over the old file, so the
    /// collector never reads half a file.
    static func write(_ text: String, to path: String) throws {
        let directory = (path as NSString).deletingLastPathComponent
        let temporary = directory + "/.\((path as NSString).lastPathComponent).\(getpid()).tmp"
        // A fresh file (O_EXCL, after removing one a killed run left): never truncate or follow
        // something planted under the predictable name.
        unlink(temporary)
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o644)
        guard descriptor >= 0 else {
            throw AgentError(.store, "cannot write metrics_textfile \(path): \(String(cString: strerror(errno))) (check that \(directory) exists and the agent may write there)")
        }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
        fchmod(descriptor, 0o644)  // whatever the umask (the unit's is 0077)
        let synced = fsync(descriptor) == 0
        close(descriptor)
        guard written == bytes.count, synced, rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw AgentError(.store, "cannot write metrics_textfile \(path): \(reason)")
        }
    }

    /// Rewrites the file for every profile of `config`, when it names one. A failure is a
    /// warning: monitoring must never stop an enrollment.
    static func export(_ config: AgentConfig, logger: Logger, now: Date = Date()) {
        guard let path = config.metricsTextfile else { return }
        let statuses = config.profiles.map { ProfileStatus.read(profile: $0, stateDirectory: config.stateDirectory, now: now) }
        do {
            try write(render(statuses), to: path)
        } catch let error as AgentError {
            logger.warning("\(error.message)")
        } catch {
            logger.warning("cannot write metrics_textfile \(path): \(error)")
        }
    }
}
