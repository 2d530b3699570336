import Foundation
import Logging
import SCEPClient

/// The side effects the agent uses, in one place so tests can swap them.
struct AgentEnvironment: Sendable {
    var clock: any AgentClock = SystemClock()
    var sleeper: any Sleeper = SystemSleeper()
    var host: HostIdentity = .current()
    /// Builds the HTTP transport for a profile (timeouts, CA bundle, proxy); throws when the
    /// proxy credentials cannot be read.
    var makeTransport: @Sendable (ProfileConfig) throws -> any HTTPTransport = { profile in
        CurlTransport(options: try CurlTransport.Options(profile: profile))
    }
    /// Builds the transport that fetches CRLs: the profile's as for SCEP (timeouts, CA
    /// bundle, proxy), with Entra CBA's size limit (`RevocationChecker.maximumCRLBytes`).
    var makeCRLTransport: @Sendable (ProfileConfig) throws -> any HTTPTransport = { profile in
        var options = try CurlTransport.Options(profile: profile)
        options.maxResponseBytes = RevocationChecker.maximumCRLBytes
        return CurlTransport(options: options)
    }
}

extension CurlTransport.Options {
    /// The transport settings of a profile.
    init(profile: ProfileConfig) throws {
        self.init()
        totalTimeout = profile.httpTimeout
        connectTimeout = min(10, profile.httpTimeout)
        caBundlePath = profile.tlsCAFile
        proxy = profile.proxy
        proxyCredentials = try profile.proxyCredentialsFile.map(ProxyCredentialsFile.read)
    }
}

/// `proxy_credentials_file`: one line `user:password`, read with the rules of every secret
/// (bounded, no control characters), handed to libcurl, never logged.
enum ProxyCredentialsFile {
    static func read(_ path: String) throws -> HTTPCredentials {
        let secret = try SecretText.read(.proxyCredentialsFile(path: path), path: path)
        guard let colon = secret.value.firstIndex(of: ":"), colon != secret.value.startIndex else {
            throw AgentError(.config, "proxy_credentials_file \(path) must hold one line user:password (the user name, a colon, the password)")
        }
        return HTTPCredentials(scheme: .basic, username: String(secret.value[..<colon]),
                               password: String(secret.value[secret.value.index(after: colon)...]))
    }
}
