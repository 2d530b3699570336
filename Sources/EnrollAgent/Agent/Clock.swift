import Foundation

/// The time source; tests move it instead of sleeping.
protocol AgentClock: Sendable {
    func now() -> Date
}

struct SystemClock: AgentClock {
    func now() -> Date { Date() }
}
