import Foundation

/// A thread of its own for the parts of a step that block: TPM commands (ESYS is
/// synchronous; creating an RSA key takes seconds on a real TPM), lock waits, key
/// generation. A step runs with `withTaskExecutorPreference(executor)`, so its
/// synchronous work occupies this thread and never one of the cooperative pool's (one
/// per CPU): the daemon's watchdog and signal handling stay on time on a 1-CPU host.
///
/// A few threads, shared by every profile: one waiting for another run's lock must not
/// hold up the others, and more would only wait on the TPM, which serves one at a time.
///
/// `@unchecked Sendable`: the only mutable state (the job queue) is guarded by `condition`.
final class BlockingWorkExecutor: TaskExecutor, @unchecked Sendable {
    static let shared = BlockingWorkExecutor(threads: 4)

    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []

    private init(threads: Int) {
        for number in 1...threads {
            let thread = Thread { [self] in run() }
            thread.name = "enroll-agent blocking work \(number)"
            thread.start()
        }
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    /// Runs jobs for the life of the process.
    private func run() {
        while true {
            condition.lock()
            while jobs.isEmpty { condition.wait() }
            let job = jobs.removeFirst()
            condition.unlock()
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}
