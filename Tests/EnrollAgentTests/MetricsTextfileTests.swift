import Foundation
import TestSupport
import X509
import XCTest

@testable import EnrollAgent
@testable import SCEPTestSupport

/// `metrics_textfile`: the series a fleet's Prometheus reads through node_exporter's
/// textfile collector (Debian's prometheus-node-exporter here, scraped on loopback).
final class MetricsTextfileTests: XCTestCase {
    func testTheRenderedSeriesOfAProfile() {
        var status = ProfileStatus(profile: "device", state: "valid", consecutiveFailures: 2)
        status.certificate = ProfileStatus.CertificateInfo(
            subject: "CN=a", subjectAlternativeNames: [], serial: "01", issuer: "CN=ca",
            notBefore: Date(timeIntervalSince1970: 1_700_000_000), notAfter: Date(timeIntervalSince1970: 1_707_776_000),
            sha256Fingerprint: "", certificatePath: "", keyPath: "")
        status.nextRenewal = Date(timeIntervalSince1970: 1_705_000_000)
        status.lastSuccessAt = Date(timeIntervalSince1970: 1_700_000_100)
        status.keyStorage = "tpm"
        let unenrolled = ProfileStatus(profile: "wifi", state: "none", consecutiveFailures: 0)
        let text = MetricsTextfile.render([status, unenrolled], version: "9.9.9")
        let expected = [
            #"enroll_agent_build_info{version="9.9.9"} 1"#,
            #"enroll_agent_certificate_not_after_seconds{profile="device"} 1707776000"#,
            #"enroll_agent_certificate_not_before_seconds{profile="device"} 1700000000"#,
            #"enroll_agent_certificate_valid{profile="device"} 1"#,
            #"enroll_agent_renewal_due_seconds{profile="device"} 1705000000"#,
            #"enroll_agent_last_success_timestamp_seconds{profile="device"} 1700000100"#,
            #"enroll_agent_consecutive_failures{profile="device"} 2"#,
            #"enroll_agent_pending{profile="device"} 0"#,
            #"enroll_agent_key_storage_info{profile="device",storage="tpm"} 1"#,
            #"enroll_agent_certificate_valid{profile="wifi"} 0"#,
            #"enroll_agent_consecutive_failures{profile="wifi"} 0"#,
            "# TYPE enroll_agent_certificate_not_after_seconds gauge",
            "# HELP enroll_agent_consecutive_failures Failed attempts since the last success.",
        ]
        let lines = Set(text.split(separator: "\n").map { Self.normalizingNumbers(String($0)) })
        for line in expected {
            XCTAssertTrue(lines.contains(line), "missing \(line) in\n\(text)")
        }
        // Facts that do not exist are left out, not reported as 0.
        XCTAssertFalse(text.contains(#"enroll_agent_certificate_not_after_seconds{profile="wifi"}"#), text)
        XCTAssertFalse(text.contains(#"enroll_agent_last_attempt_timestamp_seconds{profile="device"}"#), text)
    }

    /// The agent writes the file after `enroll`; node_exporter serves its series.
    func testNodeExporterServesTheAgentsSeriesAfterAnEnrollment() throws {
        let exporterBinary = try PeerSkip.unlessCI { try PeerRequirement.require(binary: "prometheus-node-exporter") }
        let workspace = try TestServerWorkspace(prefix: "metrics")
        let server = try TestSCEPServer(ca: try TestPKI.ca())
        defer { server.stop() }
        let textfileDirectory = workspace.appending("textfile")
        try FileManager.default.createDirectory(atPath: textfileDirectory, withIntermediateDirectories: true)
        let textfile = textfileDirectory + "/enroll_agent.prom"
        let config = "metrics_textfile = \"\(textfile)\"\n" + (try workspace.config(for: server))
        let run = try AgentProcess.run(arguments: ["enroll"], config: config)
        XCTAssertEqual(run.exitCode, 0, run.transcript)
        var status = stat()
        XCTAssertEqual(stat(textfile, &status), 0, "no metrics file")
        XCTAssertEqual(status.st_mode & 0o777, 0o644)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: textfileDirectory).filter { $0 != "enroll_agent.prom" }
        XCTAssertEqual(leftovers, [], "temporary files left behind")

        let certificate = try Certificate(pemEncoded: String(contentsOfFile: workspace.appending("state/device/live/cert.pem"), encoding: .utf8))
        let port = try LoopbackPort.free()
        let exporter = try ChildProcess(executable: exporterBinary, arguments: [
            "--web.listen-address=127.0.0.1:\(port)", "--collector.disable-defaults", "--collector.textfile",
            "--collector.textfile.directory=\(textfileDirectory)",
        ], outputPath: workspace.appending("node-exporter.log"))
        defer { _ = exporter.terminate(gracePeriod: 2) }
        let deadline = Date().addingTimeInterval(15)
        while !LoopbackPort.accepts(port), Date() < deadline { usleep(100_000) }
        let scrape = try ChildProcess.run(executable: "curl", arguments: ["-sS", "http://127.0.0.1:\(port)/metrics"], timeout: 30)
        let metrics = String(decoding: scrape.standardOutput, as: UTF8.self)
        let notAfter = Int(certificate.notValidAfter.timeIntervalSince1970)
        let lines = Set(metrics.split(separator: "\n").map { Self.normalizingNumbers(String($0)) })
        XCTAssertTrue(lines.contains(#"enroll_agent_certificate_not_after_seconds{profile="device"} \#(notAfter)"#), metrics)
        XCTAssertTrue(lines.contains(#"enroll_agent_certificate_valid{profile="device"} 1"#), metrics)
        XCTAssertTrue(lines.contains(#"enroll_agent_pending{profile="device"} 0"#), metrics)
        XCTAssertTrue(lines.contains(#"enroll_agent_consecutive_failures{profile="device"} 0"#), metrics)
        XCTAssertTrue(lines.contains(#"enroll_agent_key_storage_info{profile="device",storage="software"} 1"#), metrics)
        XCTAssertTrue(metrics.contains("enroll_agent_last_success_timestamp_seconds{profile=\"device\"}"), metrics)
        XCTAssertTrue(metrics.contains("enroll_agent_renewal_due_seconds{profile=\"device\"}"), metrics)
        XCTAssertTrue(lines.contains("node_textfile_scrape_error 0"), "node_exporter could not parse the file:\n\(metrics)")
    }

    /// node_exporter prints 1.707776e+09 where we print 1707776000.0: compare numbers as integers.
    private static func normalizingNumbers(_ line: String) -> String {
        guard let space = line.lastIndex(of: " "), !line.hasPrefix("#"), let value = Double(line[line.index(after: space)...]),
              value == value.rounded(), abs(value) < 1e15 else { return line }
        return String(line[..<space]) + " " + String(Int(value))
    }

    /// The shipped alert rules use only series the agent writes.
    func testTheShippedAlertRulesUseTheAgentsSeries() throws {
        let rules = try String(contentsOfFile: URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("packaging/prometheus/enroll-agent.rules.yml").path, encoding: .utf8)
        var status = ProfileStatus(profile: "p", state: "valid", consecutiveFailures: 0)
        status.certificate = ProfileStatus.CertificateInfo(subject: "", subjectAlternativeNames: [], serial: "", issuer: "",
                                                           notBefore: Date(), notAfter: Date(), sha256Fingerprint: "", certificatePath: "", keyPath: "")
        let written = MetricsTextfile.render([status])
        let used = rules.matches(of: /enroll_agent_[a-z_]+/).map { String($0.output) }
        XCTAssertGreaterThanOrEqual(Set(used).count, 3)
        for name in Set(used) {
            XCTAssertTrue(written.contains("\n\(name){") || written.contains("# TYPE \(name) "), "\(name) is not a series the agent writes")
        }
    }
}
