/// What one generation holds: the issued certificate, its chain and the private key, as PEM.
///
/// The store treats the PEM text as opaque: it checks only that the certificate and key
/// are present, never parses them. The key may be a PKCS#8 PEM or a `TSS2 PRIVATE KEY` PEM.
public struct CertificateBundle: Equatable, Sendable {
    /// The end-entity certificate.
    public var certificatePEM: String
    /// Intermediate certificates up to (not necessarily including) the root; may be empty.
    public var chainPEM: String
    /// The private key (secret: never logged, written 0600).
    public var keyPEM: String

    public init(certificatePEM: String, chainPEM: String, keyPEM: String) {
        self.certificatePEM = certificatePEM
        self.chainPEM = chainPEM
        self.keyPEM = keyPEM
    }

    /// Certificate followed by the chain: what nginx, curl and most TLS clients want.
    public var fullchainPEM: String {
        guard !chainPEM.isEmpty else { return certificatePEM }
        let separator = certificatePEM.hasSuffix("\n") ? "" : "\n"
        return certificatePEM + separator + chainPEM
    }

    /// Refuses bundles that would install an unusable generation.
    /// The message never quotes the key.
    func validate(profile: String) throws {
        guard certificatePEM.contains("-----BEGIN ") else {
            throw CertStoreError(.invalidBundle, path: profile,
                                 message: "refusing to install into \(profile): the certificate is not PEM text; this is a bug in the caller")
        }
        guard keyPEM.contains("-----BEGIN ") else {
            throw CertStoreError(.invalidBundle, path: profile,
                                 message: "refusing to install into \(profile): the private key is not PEM text; this is a bug in the caller")
        }
    }
}

/// One generation directory in the store, with the paths of its four files.
///
/// The paths point into the generation itself (`<profile>/generations/000007/…`), not
/// through `live`, so a reader that uses one `InstalledGeneration` reads a consistent
/// certificate/key pair even while an install swaps `live`. External programs should use
/// `<profile>/live/…` instead, which always names the current generation.
public struct InstalledGeneration: Equatable, Sendable {
    /// Zero-padded sequence number, e.g. "000007".
    public let id: String
    /// `<profile>/generations/<id>`.
    public let directory: String
    public let certificatePath: String
    public let chainPath: String
    public let fullchainPath: String
    public let keyPath: String

    init(id: String, directory: String) {
        self.id = id
        self.directory = directory
        certificatePath = directory + "/" + StoreLayout.certificateFile
        chainPath = directory + "/" + StoreLayout.chainFile
        fullchainPath = directory + "/" + StoreLayout.fullchainFile
        keyPath = directory + "/" + StoreLayout.keyFile
    }

    var allPaths: [String] { [certificatePath, chainPath, fullchainPath, keyPath] }
}
