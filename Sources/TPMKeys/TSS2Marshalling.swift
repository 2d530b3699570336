import CTSS2

/// Byte access to the fixed-size C arrays that tpm2-tss structures import as
/// Swift tuples (`TPM2B_*.buffer`).
enum TSS2Buffer {
    /// The first `count` bytes of `tuple`, clamped to the tuple's size so a
    /// bogus `size` field from the TPM cannot read past the buffer.
    static func bytes<Tuple>(of tuple: Tuple, count: Int) -> [UInt8] {
        withUnsafeBytes(of: tuple) { raw in Array(raw.prefix(max(0, count))) }
    }

    /// Copies `bytes` into `tuple`; returns false (and copies nothing) when they do not fit.
    static func copy<Tuple>(_ bytes: [UInt8], into tuple: inout Tuple) -> Bool {
        withUnsafeMutableBytes(of: &tuple) { raw in
            guard bytes.count <= raw.count else { return false }
            raw.copyBytes(from: bytes)
            return true
        }
    }

    /// Capacity of `tuple` in bytes.
    static func capacity<Tuple>(of tuple: Tuple) -> Int { MemoryLayout<Tuple>.size }
}

/// Marshalling of the TPM blobs stored in a `TSS2 PRIVATE KEY` file
/// (TPM 2.0 Part 2 wire format, via libtss2-mu).
enum TSS2Marshalling {
    static func marshal(_ value: TPM2B_PUBLIC) throws -> [UInt8] {
        var value = value
        return try marshal(capacity: MemoryLayout<TPM2B_PUBLIC>.size) { buffer, size, offset in
            Tss2_MU_TPM2B_PUBLIC_Marshal(&value, buffer, size, offset)
        }
    }

    static func marshal(_ value: TPM2B_PRIVATE) throws -> [UInt8] {
        var value = value
        return try marshal(capacity: MemoryLayout<TPM2B_PRIVATE>.size) { buffer, size, offset in
            Tss2_MU_TPM2B_PRIVATE_Marshal(&value, buffer, size, offset)
        }
    }

    /// Parses a marshalled TPM2B_PUBLIC; the whole input must be consumed.
    static func unmarshalPublic(_ bytes: [UInt8]) throws -> TPM2B_PUBLIC {
        var out = TPM2B_PUBLIC()
        try unmarshal(bytes, what: "public area (TPM2B_PUBLIC)") { buffer, size, offset in
            Tss2_MU_TPM2B_PUBLIC_Unmarshal(buffer, size, offset, &out)
        }
        return out
    }

    /// Parses a marshalled TPM2B_PRIVATE; the whole input must be consumed.
    static func unmarshalPrivate(_ bytes: [UInt8]) throws -> TPM2B_PRIVATE {
        var out = TPM2B_PRIVATE()
        try unmarshal(bytes, what: "private blob (TPM2B_PRIVATE)") { buffer, size, offset in
            Tss2_MU_TPM2B_PRIVATE_Unmarshal(buffer, size, offset, &out)
        }
        return out
    }

    private static func marshal(
        capacity: Int,
        _ call: (UnsafeMutablePointer<UInt8>, Int, UnsafeMutablePointer<Int>) -> TSS2_RC
    ) throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: capacity)
        var offset = 0
        let rc = buffer.withUnsafeMutableBufferPointer { call($0.baseAddress!, capacity, &offset) }
        guard rc == 0 else {
            throw TPMError(.tpmFailure, "marshalling a TPM structure failed with \(TSS2ResponseCode(rc))", responseCode: rc)
        }
        return Array(buffer[..<offset])
    }

    private static func unmarshal(
        _ bytes: [UInt8], what: String,
        _ call: (UnsafePointer<UInt8>, Int, UnsafeMutablePointer<Int>) -> TSS2_RC
    ) throws {
        guard !bytes.isEmpty else {
            throw TPMError(.invalidKeyFile, "TSS2 key file: the \(what) is empty")
        }
        var offset = 0
        let rc = bytes.withUnsafeBufferPointer { call($0.baseAddress!, bytes.count, &offset) }
        guard rc == 0 else {
            throw TPMError(.invalidKeyFile, "TSS2 key file: the \(what) is malformed (\(TSS2ResponseCode(rc)))", responseCode: rc)
        }
        guard offset == bytes.count else {
            throw TPMError(.invalidKeyFile, "TSS2 key file: the \(what) has \(bytes.count - offset) trailing bytes")
        }
    }
}
