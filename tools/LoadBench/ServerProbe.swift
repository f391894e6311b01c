import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Failures of the load generator's own set-up, printed as one line.
struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Lines a child process wrote to standard error, kept (the last 200) while a thread drains
/// the pipe so that the child never blocks on a full pipe.
final class StderrTail: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    private var port: Int?
    private var finished = false
    let ready = DispatchSemaphore(value: 0)

    func append(_ line: String) {
        lock.lock(); defer { lock.unlock() }
        lines.append(line)
        if lines.count > 200 { lines.removeFirst(lines.count - 200) }
        if port == nil, let range = line.range(of: "address=http://127.0.0.1:") {
            let digits = line[range.upperBound...].prefix { $0.isNumber }
            if let p = Int(digits) { port = p; ready.signal() }
        }
    }

    func finish() {
        lock.lock(); defer { lock.unlock() }
        if !finished { finished = true; if port == nil { ready.signal() } }
    }

    var foundPort: Int? { lock.lock(); defer { lock.unlock() }; return port }
    var text: String { lock.lock(); defer { lock.unlock() }; return lines.joined(separator: "\n") }
}

/// An `airwave serve` started by the load generator (`--server-binary`): port 0, a
/// temporary data directory, the given HS256 secret. Stopped with SIGTERM (SIGKILL after 15 s).
final class ManagedServer {
    let process = Process()
    let dataDir: URL
    let tail = StderrTail()
    private(set) var port = 0

    init(binary: String, secret: String) throws {
        dataDir = FileManager.default.temporaryDirectory.appendingPathComponent("airwave-bench-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dataDir, withIntermediateDirectories: true)
        process.executableURL = URL(fileURLWithPath: binary)
        // Every bench connection comes from 127.0.0.1: lift the per-IP and global caps (the
        // server still keeps the global one below its open-file limit). The WHEP listeners of
        // --compare-whep are anonymous, thousands from one address opened as fast as they
        // connect: lift the per-IP WebRTC caps, let them use the whole session table, and give
        // a handshake under that load more than the default 10 s.
        process.arguments = ["serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", dataDir.path, "--jwt-secret", secret,
                             "--max-connections", "1000000", "--max-connections-per-ip", "1000000",
                             "--webrtc-anonymous-per-ip", "1000000", "--webrtc-offer-rate", "1000000",
                             "--webrtc-offer-burst", "1000000", "--webrtc-reserved-sessions", "0", "--webrtc-dtls-timeout", "60"]
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("AIRWAVE_") }
        env["AIRWAVE_LOG_LEVEL"] = "info"
        process.environment = env
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        let pipe = Pipe()
        process.standardError = pipe
        try process.run()
        let handle = pipe.fileHandleForReading
        let tail = self.tail
        let reader = Thread {
            var pending = Data()
            while true {
                let chunk = handle.availableData          // blocks; empty at EOF
                if chunk.isEmpty { break }
                pending.append(chunk)
                while let nl = pending.firstIndex(of: 0x0A) {
                    tail.append(String(decoding: pending[pending.startIndex..<nl], as: UTF8.self))
                    pending.removeSubrange(pending.startIndex...nl)
                }
                if pending.count > 1 << 16 { pending.removeAll() }
            }
            tail.finish()
        }
        reader.start()
        if tail.ready.wait(timeout: .now() + 60) == .timedOut || tail.foundPort == nil {
            stop()
            throw BenchError("the server did not report its address within 60 s; stderr:\n\(tail.text)")
        }
        port = tail.foundPort!
    }

    var pid: Int32 { process.processIdentifier }

    /// SIGTERM, then wait (bounded) for exit; returns the exit status, or nil if it had to be killed.
    @discardableResult
    func stop() -> Int32? {
        guard process.isRunning else { try? FileManager.default.removeItem(at: dataDir); return process.terminationStatus }
        kill(process.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(15)
        while process.isRunning && Date() < deadline { usleep(50_000) }
        var status: Int32? = nil
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        } else {
            status = process.terminationStatus
        }
        try? FileManager.default.removeItem(at: dataDir)
        return status
    }
}

/// CPU time and resident memory of a process, from `/proc/<pid>/stat` and `/proc/<pid>/status`.
struct ProcSample: Sendable {
    var cpuSeconds: Double
    var rssKiB: Int
    var threads: Int
    var at: UInt64          // monotonic ns

    static func read(pid: Int32) -> ProcSample? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // After the command: state(0) ppid(1) … utime(11) stime(12) … num_threads(17)
        guard fields.count > 17, let utime = Double(fields[11]), let stime = Double(fields[12]) else { return nil }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        var rss = 0
        if let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) {
            for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
                rss = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0
            }
        }
        return ProcSample(cpuSeconds: (utime + stime) / ticks, rssKiB: rss, threads: Int(fields[17]) ?? 0, at: monotonicNanos())
    }

    /// This process (the load generator itself), from getrusage.
    static func selfCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
            + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
    }
}

func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// The few Prometheus series the load generator cross-checks, read with a tiny blocking HTTP/1.0
/// client (127.0.0.1 only, 5 s timeouts).
struct MetricsSample: Sendable, Codable {
    var forwardedAudio: Double = 0
    var framesInOpus: Double = 0
    var framesDropped: Double = 0
    var bytesOutAudio: Double = 0

    /// Reads /metrics, trying up to `attempts` times (a saturated server may miss the 5 s timeout).
    static func fetch(port: Int, attempts: Int = 1) -> MetricsSample? {
        var body: String?
        for _ in 0..<max(1, attempts) {
            body = httpGet(port: port, path: "/metrics")
            if body != nil { break }
        }
        guard let body else { return nil }
        var sample = MetricsSample()
        for line in body.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            let name = line[..<space]
            if name == "airwave_media_frames_forwarded_total{kind=\"audio\"}" { sample.forwardedAudio = value }
            else if name == "airwave_media_frames_in_total{kind=\"opus\"}" { sample.framesInOpus = value }
            else if name == "airwave_media_bytes_out_total{kind=\"audio\"}" { sample.bytesOutAudio = value }
            else if name.hasPrefix("airwave_media_frames_dropped_total") { sample.framesDropped += value }
        }
        return sample
    }

    static func httpGet(port: Int, path: String) -> String? {
        guard let exchange = HTTPExchange.send(port: port, method: "GET", path: path, headers: [:], body: []),
              exchange.status == 200
        else { return nil }
        return String(decoding: exchange.body, as: UTF8.self)
    }
}

/// Mints an HS256 token with `airwave token` (the bench has no JWT library of its own).
func mintToken(binary: String, userID: String, secret: String) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: binary)
    process.arguments = ["token", "--user-id", userID, "--ttl", "7200", "--jwt-secret", secret]
    process.environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("AIRWAVE_") }
    let out = Pipe()
    process.standardOutput = out
    process.standardError = FileHandle.nullDevice
    try process.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    guard process.terminationStatus == 0, !token.isEmpty else {
        throw BenchError("`\(binary) token` failed (status \(process.terminationStatus))")
    }
    return token
}

/// Raises the soft limit of open files to the hard limit.
func raiseFileLimit() -> Int {
    var limit = rlimit()
    getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    limit.rlim_cur = limit.rlim_max
    setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    return Int(limit.rlim_cur)
}
