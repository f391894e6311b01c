import Foundation

/// Latency percentiles in milliseconds (microsecond resolution).
struct LatencySummary: Codable, Sendable {
    var samples: UInt64
    var p50_ms: Double
    var p90_ms: Double
    var p99_ms: Double
    var p999_ms: Double
    var max_ms: Double
    var mean_ms: Double

    init(_ h: LatencyHistogram) {
        func ms(_ micros: UInt64) -> Double { (Double(micros) / 1000 * 1000).rounded() / 1000 }
        samples = h.count
        p50_ms = ms(h.percentile(0.50))
        p90_ms = ms(h.percentile(0.90))
        p99_ms = ms(h.percentile(0.99))
        p999_ms = ms(h.percentile(0.999))
        max_ms = ms(h.maxMicros)
        mean_ms = (h.meanMicros).rounded() / 1000
    }
}

/// Everything one run measured; `--json` prints it as is.
struct BenchReport: Codable, Sendable {
    struct Config: Codable, Sendable {
        var listeners: Int
        var speakers: Int
        var rate: Int
        var duration_s: Double
        /// Nobody spoke (--idle): only the connect and memory numbers mean anything.
        var idle: Bool
        var metrics_read: Bool
        var tokens_minted: Bool
        var connect_rate: Int
        var concurrency: Int
        var event_loops: Int
        var server: String
        var server_pid: Int32
        var fixture: String
        var fixture_packets: Int
    }
    struct Connect: Codable, Sendable {
        var listeners_connected: Int
        var listeners_failed: Int
        var failures: [String: Int]
        var wall_s: Double
        var per_second: Double
        var connect_ms_p50: Double
        var connect_ms_p99: Double
        var connect_ms_max: Double
    }
    struct Frames: Codable, Sendable {
        var sent_per_speaker: [Int]
        var sent_total: Int
        var bytes_sent: Int
        var expected_per_listener: Int
        var listeners_received: Int
        var listeners_expected: Int
        var delivery_ratio: Double
        var listeners_complete: Int
        var listener_min_received: Int
        var speakers_received: Int
        var speakers_expected: Int
        var received_total: Int
        var expected_total: Int
        var bytes_received: Int
        var gaps: Int
        var reordered: Int
        var unmatched: Int
        var bad_frames: Int
        var source_id_mismatches: Int
        var late_ticks: Int
        var listeners_closed_early: Int
        var close_codes: [String: Int]
    }
    struct Server: Codable, Sendable {
        var cpu_seconds: Double
        var window_s: Double
        var cpu_seconds_per_second: Double
        var cpu_us_per_delivered_frame: Double
        var rss_kib_idle: Int
        var rss_kib_joined: Int
        var rss_kib_end: Int
        var rss_kib_per_listener: Double
        var threads: Int
        var metrics_available: Bool
        var forwarded_audio_delta: Double
        var frames_in_opus_delta: Double
        var frames_dropped_delta: Double
        var forwarded_expected: Int
        var forwarded_minus_received: Double
    }
    struct Generator: Codable, Sendable {
        var cpu_seconds: Double
        var cpu_seconds_per_second: Double
    }
    var config: Config
    var connect: Connect
    var frames: Frames
    var latency_listeners: LatencySummary
    var latency_speakers: LatencySummary
    var server: Server
    var generator: Generator
    var errors: [String]

    func json() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return String(decoding: (try? encoder.encode(self)) ?? Data(), as: UTF8.self)
    }

    func table() -> String {
        func f(_ v: Double, _ digits: Int = 2) -> String { String(format: "%.\(digits)f", v) }
        var rows: [(String, String)] = []
        rows.append(("server", "\(config.server) (pid \(config.server_pid))"))
        if config.idle {
            rows.append(("load", "\(config.listeners) idle listeners, \(config.speakers) speaker(s) silent; \(config.event_loops) event loops"))
        } else {
            rows.append(("load", "\(config.listeners) listeners, \(config.speakers) speaker(s) × \(config.rate) frames/s for \(f(config.duration_s, 1)) s; \(config.event_loops) event loops"))
        }
        rows.append(("connected", "\(connect.listeners_connected) ok, \(connect.listeners_failed) failed in \(f(connect.wall_s)) s (\(f(connect.per_second, 0))/s)"))
        rows.append(("connect time", "p50 \(f(connect.connect_ms_p50)) ms, p99 \(f(connect.connect_ms_p99)) ms, max \(f(connect.connect_ms_max)) ms"))
        rows.append(("frames sent", "\(frames.sent_total) (\(frames.sent_per_speaker.map(String.init).joined(separator: " + ")))"))
        rows.append(("listener frames", "\(frames.listeners_received) of \(frames.listeners_expected) expected"))
        rows.append(("delivery", "\(f(frames.delivery_ratio * 100, 3)) % (\(frames.listeners_complete) listeners complete, min \(frames.listener_min_received))"))
        rows.append(("speaker frames", "\(frames.speakers_received) of \(frames.speakers_expected) expected"))
        rows.append(("anomalies", "gaps \(frames.gaps), reordered \(frames.reordered), unmatched \(frames.unmatched), bad \(frames.bad_frames), closed early \(frames.listeners_closed_early)"))
        let l = latency_listeners
        rows.append(("latency (listeners)", "p50 \(f(l.p50_ms, 3)) ms  p90 \(f(l.p90_ms, 3)) ms  p99 \(f(l.p99_ms, 3)) ms  p99.9 \(f(l.p999_ms, 3)) ms  max \(f(l.max_ms, 3)) ms  (\(l.samples) samples)"))
        if latency_speakers.samples > 0 {
            let s = latency_speakers
            rows.append(("latency (speakers)", "p50 \(f(s.p50_ms, 3)) ms  p99 \(f(s.p99_ms, 3)) ms  max \(f(s.max_ms, 3)) ms"))
        }
        rows.append(("server CPU", "\(f(server.cpu_seconds)) s in \(f(server.window_s)) s = \(f(server.cpu_seconds_per_second, 3)) s/s; \(f(server.cpu_us_per_delivered_frame, 3)) µs per delivered frame"))
        rows.append(("server RSS", "idle \(server.rss_kib_idle) KiB, joined \(server.rss_kib_joined) KiB, end \(server.rss_kib_end) KiB; \(f(server.rss_kib_per_listener, 1)) KiB per listener"))
        if server.metrics_available {
            rows.append(("server /metrics", "forwarded audio Δ \(Int(server.forwarded_audio_delta)) (expected \(server.forwarded_expected), received \(frames.received_total)), in Δ \(Int(server.frames_in_opus_delta)), dropped Δ \(Int(server.frames_dropped_delta))"))
        } else {
            rows.append(("server /metrics", config.metrics_read ? "unavailable" : "not read (--no-metrics)"))
        }
        rows.append(("generator CPU", "\(f(generator.cpu_seconds)) s (\(f(generator.cpu_seconds_per_second, 3)) s/s)"))
        for e in errors { rows.append(("error", e)) }
        let width = rows.map(\.0.count).max() ?? 0
        return rows.map { $0.0.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + $0.1 }.joined(separator: "\n")
    }
}
