// Fleet simulation (issue 5): N agents whose certificates were all issued at the same instant,
// each running the daemon's decide → plan sleep → wake loop on its own injected clock. Prints
// when their renewal requests reach the CA, to show that the persisted jitter spreads them out
// (no thundering herd) and that retries after failures do not bunch up either.
//
// Usage: FleetSimulation [--hosts N] [--seed N] [--failure-rate F] [--buckets N]

import Foundation
import Renewal

// MARK: Options

struct Options {
    var hosts = 1_000
    var seed: UInt64 = 20_250_101
    var failureRate = 0.10
    var buckets = 30
    var lifetime: TimeInterval = 90 * 86_400

    static let usage = "usage: FleetSimulation [--hosts N] [--seed N] [--failure-rate 0...1] [--buckets N]"

    /// Parses `arguments` (without the program name); the message names the bad option.
    static func parse(_ arguments: [String]) -> Result<Options, OptionError> {
        var options = Options()
        var remaining = arguments[...]
        while let flag = remaining.popFirst() {
            if flag == "--help" || flag == "-h" { return .failure(OptionError(message: usage, isHelp: true)) }
            guard let value = remaining.popFirst() else {
                return .failure(OptionError(message: "\(flag) needs a value\n\(usage)"))
            }
            switch flag {
            case "--hosts":
                guard let n = Int(value), n > 0, n <= 10_000_000 else { return .failure(.invalid(flag, value, "a count from 1 to 10000000")) }
                options.hosts = n
            case "--seed":
                guard let n = UInt64(value) else { return .failure(.invalid(flag, value, "an unsigned 64-bit integer")) }
                options.seed = n
            case "--failure-rate":
                guard let f = Double(value), f >= 0, f <= 1 else { return .failure(.invalid(flag, value, "a fraction from 0 to 1")) }
                options.failureRate = f
            case "--buckets":
                guard let n = Int(value), n > 0, n <= 500 else { return .failure(.invalid(flag, value, "a count from 1 to 500")) }
                options.buckets = n
            default:
                return .failure(OptionError(message: "unknown option \(flag)\n\(usage)"))
            }
        }
        return .success(options)
    }
}

struct OptionError: Error {
    var message: String
    var isHelp = false

    static func invalid(_ flag: String, _ value: String, _ expected: String) -> OptionError {
        OptionError(message: "\(flag) \(value): expected \(expected)\n\(Options.usage)")
    }
}

/// SplitMix64: a small seeded generator, so every run with the same seed prints the same figures.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

// MARK: One agent on an injected clock

/// What one agent did: when its requests reached the CA, and how often it woke up.
struct AgentRun {
    var requests: [Date] = []
    var wakeUps = 0
}

/// Runs the daemon loop for one agent from `start` until it holds a renewed certificate.
/// The clock is a plain variable advanced by exactly the planned sleep: no real time passes.
func simulateAgent(
    lifetime: CertificateLifetime,
    policy: RenewalPolicy,
    jitter: TimeInterval,
    failedAttempts: Int,
    start: Date,
    rng: inout SplitMix64
) -> AgentRun {
    var run = AgentRun()
    var now = start
    var failures = 0
    var retryAt: Date?
    while true {
        let decision = RenewalSchedule.decision(now: now, lifetime: lifetime, policy: policy, jitter: jitter)
        let nextCheck = retryAt ?? decision.nextCheck(now: now)
        if decision.requiresAction && now >= nextCheck {
            run.requests.append(now)
            guard failures < failedAttempts else { return run }
            failures += 1
            retryAt = RetryBackoff.retryTime(now: now, consecutiveFailures: failures,
                                             notAfter: lifetime.notAfter, using: &rng)
            continue
        }
        now += WakeupPlanner.nextWake(now: now, dueTimes: [nextCheck])
        run.wakeUps += 1
    }
}

// MARK: Fleet scenarios

struct Scenario {
    var title: String
    var policy: RenewalPolicy
    var failureRate: Double
}

struct FleetResult {
    var scenario: Scenario
    var requests: [Date]   // sorted
    var firstAttempts: Int
    var averageWakeUps: Double
}

func simulateFleet(_ scenario: Scenario, options: Options, issuedAt: Date, seed: UInt64) -> FleetResult {
    var rng = SplitMix64(seed: seed)
    let lifetime = CertificateLifetime(notBefore: issuedAt, notAfter: issuedAt + options.lifetime)
    // Each agent picks its jitter once, when its certificate is installed (and would persist it).
    let jitters = (0..<options.hosts).map { _ in
        RenewalSchedule.pickJitter(lifetime, policy: scenario.policy, using: &rng)
    }
    // Exactly round(rate · N) hosts, chosen at random, fail their first attempt.
    let failing = Set((0..<options.hosts).shuffled(using: &rng)
        .prefix(Int((Double(options.hosts) * scenario.failureRate).rounded())))
    var requests: [Date] = []
    var wakeUps = 0
    for host in 0..<options.hosts {
        let run = simulateAgent(lifetime: lifetime, policy: scenario.policy, jitter: jitters[host],
                                failedAttempts: failing.contains(host) ? 1 : 0, start: issuedAt, rng: &rng)
        requests += run.requests
        wakeUps += run.wakeUps
    }
    return FleetResult(scenario: scenario, requests: requests.sorted(), firstAttempts: options.hosts,
                       averageWakeUps: Double(wakeUps) / Double(options.hosts))
}

// MARK: Measures

/// The most requests in any 60-second window [t, t + 60s), over all start times t.
func busiestMinute(_ sorted: [Date]) -> Int {
    var best = 0
    var start = 0
    for end in sorted.indices {
        while sorted[end].timeIntervalSince(sorted[start]) >= 60 { start += 1 }
        best = max(best, end - start + 1)
    }
    return best
}

/// Nearest-rank percentile of a sorted, non-empty array.
func percentile(_ sorted: [Date], _ p: Double) -> Date {
    let rank = Int((p / 100 * Double(sorted.count)).rounded(.up))
    return sorted[min(max(rank - 1, 0), sorted.count - 1)]
}

func offset(_ date: Date, from reference: Date) -> String {
    let seconds = date.timeIntervalSince(reference)
    return (seconds > 0 ? "+" : "") + DurationText.format(seconds)
}

func percent(_ part: Int, of whole: Int) -> String {
    String(format: "%.1f%%", Double(part) / Double(whole) * 100)
}

func pad(_ text: String, _ width: Int) -> String {
    text.count >= width ? text : String(repeating: " ", count: width - text.count) + text
}

func report(_ result: FleetResult, options: Options, nominal: Date) {
    let requests = result.requests
    guard let first = requests.first, let last = requests.last else { return }
    let retries = requests.count - result.firstAttempts
    print("== \(result.scenario.title)")
    print("requests: \(requests.count) (\(result.firstAttempts) first attempts, \(retries) retries); "
        + String(format: "%.0f", result.averageWakeUps) + " wake-ups per agent before renewing")
    print("times relative to the nominal renewal time (2/3 of the lifetime):")
    print("  min \(offset(first, from: nominal))  p50 \(offset(percentile(requests, 50), from: nominal))  "
        + "p99 \(offset(percentile(requests, 99), from: nominal))  max \(offset(last, from: nominal))  "
        + "spread \(DurationText.format(last.timeIntervalSince(first)))")
    let herd = busiestMinute(requests)
    let span = last.timeIntervalSince(first)
    let mean = span >= 60 ? String(format: " (mean over the spread: %.2f per minute)", Double(requests.count) / (span / 60)) : ""
    print("busiest 1-minute window: \(herd) requests = \(percent(herd, of: options.hosts)) of \(options.hosts) hosts" + mean)

    guard span > 0 else {
        print("histogram: all \(requests.count) requests at \(offset(first, from: nominal)), in the same second\n")
        return
    }
    let width = span / Double(options.buckets)
    var counts = [Int](repeating: 0, count: options.buckets)
    for request in requests {
        counts[min(Int(request.timeIntervalSince(first) / width), options.buckets - 1)] += 1
    }
    let tallest = counts.max() ?? 1
    print("histogram: \(options.buckets) buckets of \(DurationText.format(width)), # = "
        + String(format: "%.1f", Double(tallest) / 50) + " requests")
    for (index, count) in counts.enumerated() {
        let from = first + Double(index) * width
        let bar = String(repeating: "#", count: Int((Double(count) / Double(tallest) * 50).rounded()))
        print("  \(pad(offset(from, from: nominal), 8)) \(pad(String(count), 5)) \(bar)")
    }
    print("")
}

// MARK: Main

let options: Options
switch Options.parse(Array(CommandLine.arguments.dropFirst())) {
case .success(let parsed): options = parsed
case .failure(let error):
    FileHandle.standardError.write(Data((error.message + "\n").utf8))
    exit(error.isHelp ? 0 : 2)
}

// A fixed issuance instant keeps the output reproducible; only offsets matter.
let issuedAt = Date(timeIntervalSince1970: 1_735_689_600)
let lifetime = CertificateLifetime(notBefore: issuedAt, notAfter: issuedAt + options.lifetime)
let nominal = RenewalSchedule.nominalRenewalTime(lifetime, policy: .default)
let iso = ISO8601DateFormatter()

print("Fleet simulation: \(options.hosts) hosts, \(DurationText.format(options.lifetime)) certificates "
    + "all issued at \(iso.string(from: issuedAt)), seed \(options.seed)")
print("default policy: renew at 2/3 of the lifetime (\(iso.string(from: nominal))), jitter picked once "
    + "per host in 0...\(DurationText.format(RenewalSchedule.jitterBound(lifetime, policy: .default))) earlier; "
    + "daemon sleeps at most \(DurationText.format(WakeupPlanner.defaultMaximumSleep))")
print("")

let scenarios = [
    Scenario(title: "no jitter (maximum jitter 0): every host renews at the nominal time",
             policy: RenewalPolicy(maximumJitter: 0), failureRate: 0),
    Scenario(title: "default jitter, every first attempt succeeds", policy: .default, failureRate: 0),
    Scenario(title: "default jitter, \(percent(Int((options.failureRate * 1000).rounded()), of: 1000)) of hosts "
        + "fail their first attempt and retry with RetryBackoff (full jitter, base 1m)",
             policy: .default, failureRate: options.failureRate),
]
// The same seed for every scenario: the jittered scenarios share their jitter draws, so the
// retry scenario differs from the plain one only by the retries.
let results = scenarios.map { simulateFleet($0, options: options, issuedAt: issuedAt, seed: options.seed) }
for result in results { report(result, options: options, nominal: nominal) }

print("== summary (herd = most requests in any 1-minute window)")
print("  \(pad("requests", 8)) \(pad("spread", 8)) \(pad("herd", 6)) \(pad("of N", 7))  scenario")
for result in results {
    let spread = result.requests.last.map { $0.timeIntervalSince(result.requests[0]) } ?? 0
    let herd = busiestMinute(result.requests)
    print("  \(pad(String(result.requests.count), 8)) \(pad(DurationText.format(spread), 8)) "
        + "\(pad(String(herd), 6)) \(pad(percent(herd, of: options.hosts), 7))  \(result.scenario.title)")
}
