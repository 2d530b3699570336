// What several harnesses share: the files under fuzz/capture/ (the captured scepserver exchange
// and the throwaway fuzz PKI of make-pki-seeds.sh), the fixed time they are checked at, and a
// way to run the async parts of the agent (path building) from libFuzzer's synchronous callback.
import Dispatch
import Foundation
import SCEPClient
import SwiftASN1
import X509

public enum FuzzFixtures {
    /// fuzz/capture/, found from this source file: the harnesses run from any directory.
    public static let captureDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../capture").standardizedFileURL

    /// The bytes of `capture/<path>`; a missing fixture stops the harness at once.
    public static func read(_ path: String) -> Data {
        guard let data = try? Data(contentsOf: captureDirectory.appendingPathComponent(path)) else {
            fatalError("cannot read \(captureDirectory.path)/\(path); see fuzz/README.md (capture-scep-seeds.sh, make-pki-seeds.sh)")
        }
        return data
    }

    public static func text(_ path: String) -> String { String(decoding: read(path), as: UTF8.self) }

    /// The certificates of the PEM files `capture/<path>`, in order.
    public static func certificates(_ paths: String...) -> [Certificate] {
        paths.flatMap { path -> [Certificate] in
            guard let certificates = try? PEMDocument.parseMultiple(pemString: text(path)).map({ try Certificate(derEncoded: $0.derBytes) }),
                  !certificates.isEmpty else {
                fatalError("\(captureDirectory.path)/\(path) holds no PEM certificate")
            }
            return certificates
        }
    }

    /// 2030-06-01T00:00:00Z: inside the validity of the captured scepserver CA (2026-11-23 to
    /// 2036-11-23) and of the fuzz PKI (2026-01-01 to 2046-01-01; its expired RA ended in 2027,
    /// its future RA starts in 2035). Fixed, so a run does not depend on the machine's clock.
    public static let window = ValidityWindow(now: Date(timeIntervalSince1970: 1_906_502_400))

    /// Runs `body` to completion and waits for it: libFuzzer calls the harness synchronously,
    /// the path builder is async (swift-certificates' Verifier), though it never waits for
    /// anything. Its jobs run inline on the calling thread (`InlineExecutor`), so the task is
    /// made, run and freed inside the input's run: on the global pool the task was freed by a
    /// pool thread after the harness returned, every input looked like a leak to libFuzzer,
    /// and each was re-run and scanned by LeakSanitizer (a tenth of the speed).
    public static func blocking<T>(_ body: @escaping @Sendable () async -> T) -> T {
        let done = DispatchSemaphore(value: 0)
        let box = ResultBox<T>()
        let task = Task(executorPreference: inlineExecutor) {
            box.value = await body()
            done.signal()
        }
        done.wait()  // at once, unless something did suspend and resumes on another thread
        withExtendedLifetime(task) {}
        return box.value!
    }

    private static let inlineExecutor = InlineExecutor()

    /// Runs each job at once, on the thread that enqueues it.
    private final class InlineExecutor: TaskExecutor, @unchecked Sendable {
        func enqueue(_ job: consuming ExecutorJob) {
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }

    private final class ResultBox<T>: @unchecked Sendable {
        var value: T?   // written once before `done` is signalled, read after the wait
    }
}
