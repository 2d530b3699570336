import SwiftASN1

/// The `TSS2 PRIVATE KEY` file format read by tpm2-openssl and
/// tpm2-tss-engine (and openssl_tpm2_engine): a TPM key blob together with
/// the handle of the parent it must be loaded under.
///
/// ```
/// TPMKey ::= SEQUENCE {
///     type        OBJECT IDENTIFIER,         -- id-loadablekey 2.23.133.10.1.3
///     emptyAuth   [0] EXPLICIT BOOLEAN OPTIONAL,
///     parent      INTEGER,                   -- 0x40000001 (owner) or 0x81xxxxxx
///     pubkey      OCTET STRING,              -- marshalled TPM2B_PUBLIC
///     privkey     OCTET STRING               -- marshalled TPM2B_PRIVATE
/// }
/// ```
///
/// The optional policy, secret, authPolicy and description fields of later
/// revisions are not supported: keys that need them cannot be used without
/// an authorization value or policy session, which the agent does not have.
/// BER is accepted on input; output is DER.
struct TSS2PrivateKeyFile: DERImplicitlyTaggable, BERImplicitlyTaggable, Equatable, Sendable {
    /// id-loadablekey: a key to be loaded with TPM2_Load under `parent`.
    static let loadableKeyOID: ASN1ObjectIdentifier = [2, 23, 133, 10, 1, 3]
    /// The PEM label.
    static let pemDiscriminator = "TSS2 PRIVATE KEY"

    static var defaultIdentifier: ASN1Identifier { .sequence }

    /// True when the key's auth value is empty (the only kind the agent creates or uses).
    var emptyAuth: Bool
    /// TPM handle of the parent: the owner hierarchy (0x40000001, meaning the
    /// primary created from the SRK template) or a persistent key.
    var parent: UInt32
    /// Marshalled TPM2B_PUBLIC.
    var publicBlob: [UInt8]
    /// Marshalled TPM2B_PRIVATE (wrapped by the parent; useless outside that TPM).
    var privateBlob: [UInt8]

    init(emptyAuth: Bool, parent: UInt32, publicBlob: [UInt8], privateBlob: [UInt8]) {
        self.emptyAuth = emptyAuth
        self.parent = parent
        self.publicBlob = publicBlob
        self.privateBlob = privateBlob
    }

    init(derEncoded rootNode: ASN1Node, withIdentifier identifier: ASN1Identifier) throws {
        self = try DER.sequence(rootNode, identifier: identifier) { nodes in
            let type = try ASN1ObjectIdentifier(derEncoded: &nodes)
            try Self.checkType(type)
            let emptyAuth = try DER.optionalExplicitlyTagged(&nodes, tagNumber: 0, tagClass: .contextSpecific) {
                try Bool(derEncoded: $0)
            }
            let parent = try UInt32(derEncoded: &nodes)
            let pub = try ASN1OctetString(derEncoded: &nodes)
            let priv = try ASN1OctetString(derEncoded: &nodes)
            return TSS2PrivateKeyFile(emptyAuth: emptyAuth ?? false, parent: parent,
                                      publicBlob: Array(pub.bytes), privateBlob: Array(priv.bytes))
        }
    }

    init(berEncoded rootNode: ASN1Node, withIdentifier identifier: ASN1Identifier) throws {
        self = try BER.sequence(rootNode, identifier: identifier) { nodes in
            let type = try ASN1ObjectIdentifier(berEncoded: &nodes)
            try Self.checkType(type)
            let emptyAuth = try BER.optionalExplicitlyTagged(&nodes, tagNumber: 0, tagClass: .contextSpecific) {
                try Bool(berEncoded: $0)
            }
            let parent = try UInt32(berEncoded: &nodes)
            let pub = try ASN1OctetString(berEncoded: &nodes)
            let priv = try ASN1OctetString(berEncoded: &nodes)
            return TSS2PrivateKeyFile(emptyAuth: emptyAuth ?? false, parent: parent,
                                      publicBlob: Array(pub.bytes), privateBlob: Array(priv.bytes))
        }
    }

    func serialize(into coder: inout DER.Serializer, withIdentifier identifier: ASN1Identifier) throws {
        try coder.appendConstructedNode(identifier: identifier) { coder in
            try coder.serialize(Self.loadableKeyOID)
            // DER leaves out a FALSE that equals the absent value.
            if emptyAuth {
                try coder.serialize(explicitlyTaggedWithTagNumber: 0, tagClass: .contextSpecific) { coder in
                    try coder.serialize(true)
                }
            }
            try coder.serialize(parent)
            try coder.serialize(ASN1OctetString(contentBytes: ArraySlice(publicBlob)))
            try coder.serialize(ASN1OctetString(contentBytes: ArraySlice(privateBlob)))
        }
    }

    private static func checkType(_ type: ASN1ObjectIdentifier) throws {
        guard type == loadableKeyOID else {
            // importable keys (.4) and sealed data (.5) need a different flow.
            throw TPMError(.invalidKeyFile,
                           "TSS2 key file: type \(type) is not a loadable key (expected \(loadableKeyOID)); only keys created with TPM2_Create are supported")
        }
    }
}

extension TSS2PrivateKeyFile {
    /// Parses DER or BER bytes; the whole input must be one structure.
    init(bytes: [UInt8]) throws {
        do {
            // BER.parse rejects trailing bytes after the outer SEQUENCE.
            self = try TSS2PrivateKeyFile(berEncoded: try BER.parse(bytes))
        } catch let error as TPMError {
            throw error
        } catch {
            throw TPMError(.invalidKeyFile, "TSS2 key file is not a valid TPMKey structure: \(error)")
        }
    }

    /// Parses the PEM form (`-----BEGIN TSS2 PRIVATE KEY-----`).
    init(pem: String) throws {
        let document: PEMDocument
        do {
            document = try PEMDocument(pemString: pem)
        } catch {
            throw TPMError(.invalidKeyFile, "TSS2 key file is not a single PEM document: \(error)")
        }
        guard document.discriminator == Self.pemDiscriminator else {
            throw TPMError(.invalidKeyFile,
                           "key file holds a \"\(document.discriminator)\" PEM block, expected \"\(Self.pemDiscriminator)\"")
        }
        try self.init(bytes: document.derBytes)
    }

    /// DER encoding.
    func derBytes() throws -> [UInt8] {
        var serializer = DER.Serializer()
        try serializer.serialize(self)
        return serializer.serializedBytes
    }

    /// PEM with the `TSS2 PRIVATE KEY` label, 64-column base64, trailing newline.
    func pemString() throws -> String {
        PEMDocument(type: Self.pemDiscriminator, derBytes: try derBytes()).pemString + "\n"
    }
}
