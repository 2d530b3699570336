#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// A process holding a flock(2) on a file, as the kernel reports it in /proc/locks.
///
/// The lock file's own content (the pid our runs write) cannot be trusted to name the
/// holder: `flock(1)` or any other program can hold the lock without writing it. The
/// kernel's table can, matched by the file's device and inode.
struct LockHolder: Equatable, CustomStringConvertible {
    let pid: Int32
    /// `/proc/<pid>/comm`, nil when the process is gone or hidden.
    let command: String?
    /// The real uid from `/proc/<pid>/status`, nil when unknown.
    let uid: uid_t?

    /// "pid 4242 (flock, uid 998 enroll-agent)".
    var description: String {
        var details: [String] = []
        if let command { details.append(command) }
        if let uid { details.append("uid \(uid)" + (userName(of: uid).map { " \($0)" } ?? "")) }
        return "pid \(pid)" + (details.isEmpty ? "" : " (\(details.joined(separator: ", ")))")
    }

    /// The holders of flock locks on the file open as `descriptor` (several for a shared
    /// lock); empty when /proc/locks is unreadable (e.g. under systemd's ProcSubset=pid) or
    /// names no one.
    static func holders(ofFileOpenAs descriptor: Int32, procRoot: String = "/proc") -> [LockHolder] {
        var info = stat()
        guard fstat(descriptor, &info) == 0,
              let table = try? String(contentsOfFile: procRoot + "/locks", encoding: .utf8) else { return [] }
        return flockHolderPIDs(in: table, device: info.st_dev, inode: info.st_ino).map { pid in
            LockHolder(pid: pid, command: command(of: pid, procRoot: procRoot), uid: realUID(of: pid, procRoot: procRoot))
        }
    }

    /// The pids holding (not waiting for) a FLOCK lock on `device`/`inode`, from /proc/locks
    /// text: `1: FLOCK  ADVISORY  WRITE 4242 fe:00:16222195 0 EOF`, where the device is
    /// major:minor in hex; a waiter's line has `->` after the number.
    static func flockHolderPIDs(in table: String, device: dev_t, inode: ino_t) -> [Int32] {
        let wanted = "\(hex2(deviceMajor(device))):\(hex2(deviceMinor(device))):\(inode)"
        var pids: [Int32] = []
        for line in table.split(separator: "\n") {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count >= 6, fields[1] == "FLOCK", fields[5] == wanted,
                  let pid = Int32(fields[4]), pid > 0 else { continue }   // pid 0/-1: not in our pid namespace
            if !pids.contains(pid) { pids.append(pid) }
        }
        return pids
    }

    private static func command(of pid: Int32, procRoot: String) -> String? {
        guard let text = try? String(contentsOfFile: "\(procRoot)/\(pid)/comm", encoding: .utf8) else { return nil }
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return trimmed.isEmpty ? nil : trimmed
    }

    /// The first field of the `Uid:` line (real, effective, saved, filesystem).
    private static func realUID(of pid: Int32, procRoot: String) -> uid_t? {
        guard let text = try? String(contentsOfFile: "\(procRoot)/\(pid)/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("Uid:") {
            return line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first.flatMap { uid_t($0) }
        }
        return nil
    }

    private static func hex2(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return digits.count < 2 ? "0" + digits : digits
    }
}

/// glibc's gnu_dev_major/gnu_dev_minor (macros Swift does not import): the kernel prints
/// these halves of st_dev in /proc/locks.
func deviceMajor(_ device: dev_t) -> UInt64 {
    let value = UInt64(device)
    return ((value & 0x0000_0000_000f_ff00) >> 8) | ((value & 0xffff_f000_0000_0000) >> 32)
}

func deviceMinor(_ device: dev_t) -> UInt64 {
    let value = UInt64(device)
    return (value & 0x0000_0000_0000_00ff) | ((value & 0x0000_0fff_fff0_0000) >> 12)
}
