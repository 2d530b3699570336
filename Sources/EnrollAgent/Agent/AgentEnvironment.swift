import Foundation
import Logging
import SCEPClient

/// The side effects the agent uses, in one place so tests can swap them.
struct AgentEnvironment: Sendable {
    var clock: any AgentClock = SystemClock()
    var sleeper: any Sleeper = SystemSleeper()
    var host: HostIdentity = .current()
    /// Builds the HTTP transport for a profile (timeouts, CA bundle).
    var makeTransport: @Sendable (ProfileConfig) -> any HTTPTransport = { profile in
        var options = CurlTransport.Options()
        options.totalTimeout = profile.httpTimeout
        options.connectTimeout = min(10, profile.httpTimeout)
        options.caBundlePath = profile.tlsCAFile
        return CurlTransport(options: options)
    }
    /// Builds the transport that fetches CRLs: the profile's timeouts and CA bundle, as
    /// for SCEP, and Entra CBA's size limit (`RevocationChecker.maximumCRLBytes`).
    var makeCRLTransport: @Sendable (ProfileConfig) -> any HTTPTransport = { profile in
        var options = CurlTransport.Options()
        options.totalTimeout = profile.httpTimeout
        options.connectTimeout = min(10, profile.httpTimeout)
        options.caBundlePath = profile.tlsCAFile
        options.maxResponseBytes = RevocationChecker.maximumCRLBytes
        return CurlTransport(options: options)
    }
}
