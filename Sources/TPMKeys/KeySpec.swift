import KeyInterface

/// What kind of key to create.
public struct KeySpec: Sendable, Equatable {
    public var algorithm: KeyAlgorithm

    /// An RSA key of `rsaBits` bits (2048 or 3072).
    public init(rsaBits: Int = 2048) { algorithm = .rsa(bits: rsaBits) }
    /// An EC key on `curve`.
    public init(curve: EllipticCurve) { algorithm = .ec(curve) }
}
