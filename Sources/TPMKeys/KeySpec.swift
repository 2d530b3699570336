/// What kind of key to create.
public struct KeySpec: Sendable, Equatable {
    /// RSA modulus size in bits (2048 or 3072).
    public var rsaBits: Int
    public init(rsaBits: Int = 2048) { self.rsaBits = rsaBits }
}
