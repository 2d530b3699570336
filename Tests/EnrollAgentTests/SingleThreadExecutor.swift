import Foundation
import Glibc

/// A cooperative pool one thread wide, as on a single-CPU host: a task executor that runs
/// every job on one thread. Tasks started inside `withTaskExecutorPreference(executor)`
/// (child tasks included) run here, so anything that blocks this thread stalls them all.
final class SingleThreadExecutor: TaskExecutor, @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    private var shuttingDown = false
    private var worker: pthread_t?

    init() {
        let thread = Thread { [self] in run() }
        thread.name = "single-thread-pool"
        thread.start()
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    /// Whether the caller is this executor's thread.
    var isCurrentThread: Bool {
        condition.lock()
        defer { condition.unlock() }
        return worker.map { pthread_equal($0, pthread_self()) != 0 } ?? false
    }

    /// Lets the thread end once the queued jobs have run (call when nothing uses it any more).
    func shutDown() {
        condition.lock()
        shuttingDown = true
        condition.signal()
        condition.unlock()
    }

    private func run() {
        condition.lock()
        worker = pthread_self()
        condition.unlock()
        while true {
            condition.lock()
            while jobs.isEmpty && !shuttingDown { condition.wait() }
            if jobs.isEmpty {
                condition.unlock()
                return
            }
            let job = jobs.removeFirst()
            condition.unlock()
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}

/// Ticks of a task that sleeps `interval` between ticks while some work runs beside it.
struct TickRecorder {
    var times: [ContinuousClock.Instant] = []
    var allOnPool = true

    var count: Int { times.count }

    /// The longest time between two ticks (or from the first tick to the end of the work).
    var longestGap: Duration {
        zip(times, times.dropFirst()).map { $1 - $0 }.max() ?? .zero
    }

    /// Runs `work` and a ticking task side by side on `pool`; the ticking ends with the work.
    static func ticks<Result: Sendable>(
        every interval: Duration, on pool: SingleThreadExecutor, during work: @escaping @Sendable () async -> Result
    ) async -> (Result, TickRecorder) {
        await withTaskExecutorPreference(pool) {
            await withTaskGroup(of: Event<Result>.self) { group in
                group.addTask { .finished(await work()) }
                group.addTask {
                    var recorder = TickRecorder()
                    while !Task.isCancelled {
                        recorder.times.append(.now)
                        if !pool.isCurrentThread { recorder.allOnPool = false }
                        try? await Task.sleep(for: interval)
                    }
                    recorder.times.append(.now)
                    return .ticked(recorder)
                }
                var result: Result?
                var recorder = TickRecorder()
                while let event = await group.next() {
                    switch event {
                    case .finished(let value):
                        result = value
                        group.cancelAll()
                    case .ticked(let ticks):
                        recorder = ticks
                    }
                }
                return (result!, recorder)
            }
        }
    }

    private enum Event<Result: Sendable>: Sendable {
        case finished(Result)
        case ticked(TickRecorder)
    }
}
