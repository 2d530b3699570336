import CLinux

/// Process-wide protections applied before anything else runs.
enum ProcessHardening {
    /// No core dump and no ptrace attach by other processes of the same user: this
    /// process holds the one-time challenge, bearer tokens and (software) private keys in
    /// memory. (The units also set LimitCORE=0.) Children get their own dumpable flag back
    /// at execve, so hooks are unaffected.
    static func apply() {
        _ = enroll_disable_dumpable()
        _ = enroll_disable_core_files()
    }
}
