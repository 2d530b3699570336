// The test SCEP server (Tests/SCEPTestSupport) as a process of its own, for benchmarks that
// need what micromdm scepserver cannot do: it issues certificates for EC keys (micromdm
// signs with the CSR's signature algorithm, which its RSA CA key cannot).
//
//   SCEPTestServerTool CA_PEM_PATH     # writes the CA certificate there, prints the URL, serves until killed
//
// Build it in debug: it reaches the test support module with @testable import.
import Foundation
@testable import SCEPTestSupport

guard CommandLine.arguments.count == 2 else {
    FileHandle.standardError.write(Data("usage: SCEPTestServerTool CA_PEM_PATH\n".utf8))
    exit(64)
}
let ca = try TestPKI.ca()
let server = try TestSCEPServer(ca: ca)
try (try ca.certificate.serializeAsPEM().pemString + "\n").write(toFile: CommandLine.arguments[1], atomically: true, encoding: .utf8)
// Unbuffered: the script waits for this line.
FileHandle.standardOutput.write(Data((server.url + "\n").utf8))
while true { sleep(3600) }
