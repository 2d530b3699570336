// libFuzzer harness: the store's state.json (StateFileCoding.decode, the decoder
// ProfileStore.loadState uses). A decoded state must re-encode, and one encode/decode round
// later the file must be stable: the agent rewrites state.json on every run.
@testable import CertStore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzStateFile(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    guard let state = try? StateFileCoding.decode(bytes) else { return 0 }
    _ = StateFileCoding.describe(DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "")))
    guard let written = try? StateFileCoding.encode(state) else {
        preconditionFailure("a decoded state does not encode")
    }
    guard let reread = try? StateFileCoding.decode(written) else {
        preconditionFailure("the agent cannot read the state file it wrote: \(String(decoding: written, as: UTF8.self))")
    }
    precondition((try? StateFileCoding.encode(reread)) == written, "state.json changes on every rewrite")
    return 0
}
