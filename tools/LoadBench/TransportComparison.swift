import AirwaveWHEPClient
import AirwaveWebRTC
import Foundation
import NIOCore
import NIOPosix

/// A phase of `--compare-whep`: which transport its listeners use.
enum TransportPhase: String, Codable, Sendable {
    case ws, whep
}

/// One measured phase of `--compare-whep`.
struct PhaseResult: Codable, Sendable {
    struct WHEPDetail: Codable, Sendable {
        var rtcp_packets: Int
        var decrypted: Int
        var decrypt_failures: Int
        /// libsrtp status codes of the failures.
        var decrypt_failure_codes: [String: Int]
        var wrong_payload_type: Int
        var checks_sent: Int
        var checks_answered: Int
        var closed_by_server: Int
    }
    /// `baseline`, `ws` or `whep`.
    var phase: String
    var description: String
    var listeners_requested: Int
    var listeners_connected: Int
    /// Connected listeners that received at least one packet in the window (a WHEP session the
    /// server ended without close_notify, e.g. consent expiry, still counts as connected).
    var listeners_receiving: Int
    var failures: [String: Int]
    var join_s: Double
    var connect_ms_p50: Double
    var connect_ms_p99: Double
    var window_s: Double
    var packets_delivered: Int
    /// Connected listeners × window × 50 packets/s (the mix's rate).
    var packets_expected: Double
    var delivery_ratio: Double
    /// delivered / (delivered + gaps): loss seen in the listeners' sequence numbers, independent
    /// of when in a 20 ms tick the window's ends fell.
    var delivery_ratio_by_sequence: Double
    /// Sequence numbers skipped in the window (lost), and packets out of order.
    var gaps: Int
    var reordered: Int
    var listeners_closed_early: Int
    var packets_per_second: Double
    var server_cpu_s: Double
    var server_cpu_s_per_s: Double
    var server_cpu_us_per_packet: Double
    /// (CPU/s − baseline CPU/s) / packets/s: what the fan-out itself costs, without the mix and
    /// the speaker's input.
    var server_cpu_us_per_packet_above_baseline: Double?
    var server_rss_kib_before: Int
    var server_rss_kib_joined: Int
    var server_rss_kib_end: Int
    var server_rss_kib_per_listener: Double
    var server_threads: Int
    var generator_cpu_s_per_s: Double
    /// `airwave_media_frames_forwarded_total{kind="audio"}` over the window (nil without /metrics).
    var forwarded_audio_delta: Double?
    var host_frames_sent_in_window: Int
    var whep: WHEPDetail?
    /// How the phase's listeners were hung up (WHEP: DELETE statuses).
    var teardown: [String: Int]
}

/// Everything `--compare-whep` measured; `--json` prints it as is.
struct ComparisonReport: Codable, Sendable {
    struct Config: Codable, Sendable {
        var listeners: Int
        var duration_s: Double
        var settle_s: Double
        var baseline_s: Double
        var phases: [String]
        var rate: Int
        var event_loops: Int
        var whep_consent_interval_s: Double
        var whep_decrypt_every: Int
        var server: String
        var server_pid: Int32
        var fixture: String
    }
    var config: Config
    var phases: [PhaseResult]
    /// WHEP ÷ WebSocket CPU per delivered packet (nil unless both ran).
    var whep_over_ws_cpu_per_packet: Double?
    var whep_over_ws_cpu_per_packet_above_baseline: Double?
    var errors: [String]

    func json() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return String(decoding: (try? encoder.encode(self)) ?? Data(), as: UTF8.self)
    }

    func table() -> String {
        func f(_ v: Double, _ digits: Int = 2) -> String { String(format: "%.\(digits)f", v) }
        var out = ["server \(config.server) (pid \(config.server_pid)); host speaks \(config.rate) frames/s; "
            + "\(config.listeners) listeners per phase, \(f(config.settle_s, 1)) s settle, \(f(config.duration_s, 1)) s measured; "
            + "\(config.event_loops) generator event loops; WHEP consent every \(f(config.whep_consent_interval_s, 1)) s, "
            + "decrypt every \(config.whep_decrypt_every == 0 ? "none" : String(config.whep_decrypt_every))"]
        out.append("")
        out.append("| phase | connected | receiving | delivered | delivery (vs 50/s) | delivery (sequence) | gaps | server CPU (s/s) | µs CPU per delivered packet | µs above baseline | RSS before → joined → end (MiB) | KiB per listener (joined) | generator CPU (s/s) | join (s) |")
        out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for p in phases {
            let above = p.server_cpu_us_per_packet_above_baseline.map { f($0) } ?? "—"
            out.append("| \(p.description) | \(p.listeners_connected)/\(p.listeners_requested) | \(p.listeners_receiving) | \(p.packets_delivered) | \(f(p.delivery_ratio * 100, 2)) % | \(f(p.delivery_ratio_by_sequence * 100, 2)) % | \(p.gaps) | \(f(p.server_cpu_s_per_s, 3)) | \(f(p.server_cpu_us_per_packet)) | \(above) | \(f(Double(p.server_rss_kib_before) / 1024, 1)) → \(f(Double(p.server_rss_kib_joined) / 1024, 1)) → \(f(Double(p.server_rss_kib_end) / 1024, 1)) | \(f(p.server_rss_kib_per_listener, 1)) | \(f(p.generator_cpu_s_per_s, 3)) | \(f(p.join_s)) |")
        }
        out.append("")
        if let ratio = whep_over_ws_cpu_per_packet {
            var line = "WHEP / WebSocket, server CPU per delivered packet: \(f(ratio)) ×"
            if let above = whep_over_ws_cpu_per_packet_above_baseline { line += " (above baseline: \(f(above)) ×)" }
            out.append(line)
        }
        for p in phases {
            if !p.failures.isEmpty { out.append("\(p.phase) failures: \(p.failures.sorted { $0.key < $1.key }.map { "\($0.key) ×\($0.value)" }.joined(separator: ", "))") }
            if let w = p.whep {
                out.append("\(p.phase): RTCP \(w.rtcp_packets), decrypted \(w.decrypted) (failed \(w.decrypt_failures)\(w.decrypt_failure_codes.isEmpty ? "" : ", libsrtp status " + w.decrypt_failure_codes.sorted { $0.key < $1.key }.map { "\($0.key) ×\($0.value)" }.joined(separator: ", "))), wrong PT \(w.wrong_payload_type), checks \(w.checks_answered)/\(w.checks_sent) answered, closed by server \(w.closed_by_server); connect p50 \(f(p.connect_ms_p50)) ms p99 \(f(p.connect_ms_p99)) ms; teardown \(p.teardown.sorted { $0.key < $1.key }.map { "\($0.key) ×\($0.value)" }.joined(separator: ", "))")
            }
            if let forwarded = p.forwarded_audio_delta {
                out.append("\(p.phase): server forwarded audio Δ \(Int(forwarded)) (/metrics), host sent \(p.host_frames_sent_in_window) in the window")
            }
        }
        for e in errors { out.append("error: \(e)") }
        return out.joined(separator: "\n")
    }
}

/// What is counted at both ends of a measurement window.
private struct WindowEnd {
    var proc: ProcSample
    var selfCPU: Double
    var delivered: Int
    var gaps: Int
    var reordered: Int
    var closed: Int
    var hostSent: Int
    /// Each listener's packets so far, in a fixed order.
    var perListener: [Int]
}

/// What the listeners of a phase have counted so far.
private struct Tally {
    var delivered = 0, gaps = 0, reordered = 0, closed = 0
    var perListener: [Int] = []
}

extension BenchCommand {
    /// The packets per second of the event mix (one 20 ms Opus packet per tick).
    static let mixPacketsPerSecond = 50.0

    var comparisonPhases: [TransportPhase] {
        phases.split(separator: ",").compactMap { TransportPhase(rawValue: $0.trimmingCharacters(in: .whitespaces).lowercased()) }
    }

    func runComparison() throws {
        var errors: [String] = []
        let fileLimit = raiseFileLimit()
        guard listeners + 64 <= fileLimit else {
            throw BenchError("\(listeners) listeners need more open files than the limit \(fileLimit)")
        }
        let fixturePath = try locateFixture()
        let packets = try loadPackets(fixturePath)
        let minter = try locateTokenBinary()

        let (port, pid, managed) = try targetServer()
        defer { managed.map(Self.stop) }
        guard ProcSample.read(pid: pid) != nil else { throw BenchError("cannot read /proc/\(pid)") }

        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        defer { try? group.syncShutdownGracefully() }
        var loops: [LoopState] = []
        var iterator = group.makeIterator()
        while let loop = iterator.next() { loops.append(LoopState(loop: loop)) }
        let timeout = TimeAmount.nanoseconds(Int64(connectTimeout * 1e9))
        let tag = String(UInt32.random(in: 0...UInt32.max), radix: 36)

        // The host goes live and speaks until the end (the pacer is cancelled then).
        let totalFrames = min(rate * 3600, (1 << 24) - 2)
        let table = SendTimeTable(speakers: 1, capacity: totalFrames + 1)
        let hostID = "bench-host-\(tag)"
        let host = Session(role: .speaker(0), userID: hostID, loopState: loops[0], table: table)
        let hostToken = try mintToken(binary: minter, userID: hostID, secret: jwtSecret)
        openSession(host, port: port, path: "/ws/stream/start/live/\(hostID)/?token=\(hostToken)", timeout: timeout)
        let link: ControlMessage
        do { link = try host.ready.futureResult.wait() } catch { throw BenchError("host could not go live: \(error)") }
        guard let eventID = link.eventID else { throw BenchError("stream_link without event_id") }
        let pacer = SpeakerPacer(session: host, speakerIndex: 0, packets: packets, total: totalFrames, rate: rate,
                                 start: .now() + .milliseconds(100))
        pacer.begin()
        let hostSent = { (try? host.loopState.loop.submit { pacer.sent }.wait()) ?? 0 }

        let context: DTLSContext
        do { context = try DTLSContext(commonName: "airwave-bench") } catch { throw BenchError("DTLS context: \(error)") }
        let whepConfiguration = WHEPListenerConfiguration(
            consentInterval: .nanoseconds(Int64(whepConsentInterval * 1e9)), connectTimeout: timeout,
            decryptEvery: whepDecryptEvery)

        var results: [PhaseResult] = []
        var baselineRate: Double?
        let runs: [(name: String, transport: TransportPhase, count: Int, seconds: Double)] =
            (baseline > 0 ? [("baseline", TransportPhase.ws, 1, baseline)] : [])
            + comparisonPhases.map { ($0.rawValue, $0, listeners, duration) }
        for (index, run) in runs.enumerated() {
            let before = ProcSample.read(pid: pid)
            var result: PhaseResult
            switch run.transport {
            case .ws:
                result = try measureWebSocket(name: run.name, count: run.count, seconds: run.seconds, loops: loops, table: table,
                                              port: port, pid: pid, eventID: eventID, tag: "\(tag)p\(index)", timeout: timeout,
                                              hostSent: hostSent)
            case .whep:
                result = try measureWHEP(name: run.name, count: run.count, seconds: run.seconds, loops: loops.map(\.loop),
                                         port: port, pid: pid, eventID: eventID, tag: "\(tag)p\(index)", context: context,
                                         configuration: whepConfiguration, hostSent: hostSent)
            }
            result.server_rss_kib_before = before?.rssKiB ?? 0
            result.server_rss_kib_per_listener = result.listeners_connected > 0
                ? round3(Double(result.server_rss_kib_joined - result.server_rss_kib_before) / Double(result.listeners_connected)) : 0
            if run.name == "baseline" {
                baselineRate = result.server_cpu_s_per_s
            } else if let baselineRate, result.packets_per_second > 0 {
                result.server_cpu_us_per_packet_above_baseline =
                    round3((result.server_cpu_s_per_s - baselineRate) * 1e6 / result.packets_per_second)
            }
            if result.listeners_connected < result.listeners_requested {
                errors.append("\(run.name): \(result.listeners_requested - result.listeners_connected) listeners did not connect")
            }
            results.append(result)
            // Let the hang-ups finish before the next phase joins.
            usleepNanos(1_000_000_000)
        }

        // Tear down: stop speaking, end the event, close the host.
        let hostClosed = (try? host.loopState.loop.submit { host.closed }.wait()) ?? true
        // A pacer whose socket closed has completed itself; cancelling it again would complete
        // its promise twice.
        if hostClosed { errors.append("the host was disconnected during the run") } else { pacer.cancel() }
        host.sendText(#"{"type":"stream_ended","event_id":"\#(eventID)"}"#)
        usleepNanos(200_000_000)
        try? host.loopState.loop.flatSubmit { host.channel?.close() ?? host.loopState.loop.makeSucceededVoidFuture() }.wait()

        let ws = results.first { $0.phase == "ws" }, whep = results.first { $0.phase == "whep" }
        var ratio: Double?, ratioAbove: Double?
        if let ws, let whep, ws.server_cpu_us_per_packet > 0 {
            ratio = round3(whep.server_cpu_us_per_packet / ws.server_cpu_us_per_packet)
            if let a = whep.server_cpu_us_per_packet_above_baseline, let b = ws.server_cpu_us_per_packet_above_baseline, b > 0 {
                ratioAbove = round3(a / b)
            }
        }
        let report = ComparisonReport(
            config: .init(listeners: listeners, duration_s: duration, settle_s: settle, baseline_s: baseline,
                          phases: comparisonPhases.map(\.rawValue), rate: rate, event_loops: loops.count,
                          whep_consent_interval_s: whepConsentInterval, whep_decrypt_every: whepDecryptEvery,
                          server: serverBinary ?? url!, server_pid: pid, fixture: URL(fileURLWithPath: fixturePath).lastPathComponent),
            phases: results, whep_over_ws_cpu_per_packet: ratio, whep_over_ws_cpu_per_packet_above_baseline: ratioAbove,
            errors: errors)
        print(json ? report.json() : report.table())
    }

    // MARK: - Phases

    /// `count` WebSocket listeners with `?audio=mixed`: join, settle, measure, close.
    private func measureWebSocket(name: String, count: Int, seconds: Double, loops: [LoopState], table: SendTimeTable,
                                  port: Int, pid: Int32, eventID: String, tag: String, timeout: TimeAmount,
                                  hostSent: () -> Int) throws -> PhaseResult {
        var fleet = ListenerFleet(loops: loops, table: table, port: port, eventID: eventID, connectRate: connectRate,
                                  concurrency: concurrency, timeout: timeout, runTag: tag)
        fleet.query = "?audio=mixed"
        fleet.mixed = true
        let opened = fleet.open(count: count)
        let sessions = opened.sessions
        func snapshot() -> Tally {
            var total = Tally()
            for loop in loops {
                let mine = sessions.filter { $0.loopState === loop }
                let part = try? loop.loop.submit { () -> Tally in
                    var sum = Tally()
                    for s in mine where readyOK(s) {
                        sum.delivered += s.framesReceived; sum.gaps += s.gaps; sum.reordered += s.reordered
                        sum.closed += s.closed ? 1 : 0
                        sum.perListener.append(s.framesReceived)
                    }
                    return sum
                }.wait()
                if let part {
                    total.delivered += part.delivered; total.gaps += part.gaps; total.reordered += part.reordered
                    total.closed += part.closed; total.perListener += part.perListener
                }
            }
            return total
        }
        var connectHistogram = LatencyHistogram()
        var failures: [String: Int] = [:]
        var connected = 0
        for session in sessions {
            let state = try session.loopState.loop.submit { (session.connectNanos, session.failure, readyOK(session)) }.wait()
            if state.2 { connected += 1; connectHistogram.record(micros: state.0 / 1000) }
            else { failures[shortReason(state.1 ?? "unknown"), default: 0] += 1 }
        }
        let window = try measureWindow(seconds: seconds, pid: pid, port: port, hostSent: hostSent, count: snapshot)

        // Hang up: close every socket (bounded), and forget the sessions.
        for loop in loops {
            try? loop.loop.flatSubmit { () -> EventLoopFuture<Void> in
                let futures = sessions.filter { $0.loopState === loop }.compactMap { $0.channel }.filter { $0.isActive }
                    .map { $0.close().recover { _ in } }
                return EventLoopFuture.andAllComplete(futures, on: loop.loop)
            }.wait()
            let ids = Set(sessions.filter { $0.loopState === loop }.map { ObjectIdentifier($0) })
            try? loop.loop.submit { loop.sessions.removeAll { ids.contains(ObjectIdentifier($0)) } }.wait()
        }
        let description = name == "baseline" ? "baseline: 1 mixed WebSocket listener" : "WebSocket ?audio=mixed"
        return phaseResult(name: name, description: description, requested: count, connected: connected, failures: failures,
                           joinSeconds: opened.wallSeconds, connect: connectHistogram, window: window, whep: nil,
                           teardown: ["closed": sessions.count])
    }

    /// `count` WHEP listeners: offer, ICE, DTLS, then measure and hang up (DELETE).
    private func measureWHEP(name: String, count: Int, seconds: Double, loops: [EventLoop], port: Int, pid: Int32,
                             eventID: String, tag: String, context: DTLSContext, configuration: WHEPListenerConfiguration,
                             hostSent: () -> Int) throws -> PhaseResult {
        let workers = min(concurrency, 32)
        let fleet = WHEPFleet(loops: loops, port: port, eventID: eventID, context: context, configuration: configuration,
                              connectRate: connectRate, concurrency: workers, runTag: tag)
        let opened = fleet.open(count: count)
        let members = opened.members
        var last = WHEPCounters()
        let window = try measureWindow(seconds: seconds, pid: pid, port: port, hostSent: hostSent) {
            let (total, packets) = WHEPFleet.counters(members, loops: loops)
            last = total
            return Tally(delivered: total.rtpPackets, gaps: total.gaps, reordered: total.reordered,
                         closed: total.closedByServer, perListener: packets)
        }
        let detail = PhaseResult.WHEPDetail(
            rtcp_packets: last.rtcpPackets, decrypted: last.decrypted, decrypt_failures: last.decryptFailures,
            decrypt_failure_codes: Dictionary(uniqueKeysWithValues: last.decryptFailureCodes.map { (String($0.key), $0.value) }),
            wrong_payload_type: last.wrongPayloadType, checks_sent: last.checksSent, checks_answered: last.checksAnswered,
            closed_by_server: last.closedByServer)
        let teardown = WHEPFleet.close(members, port: port, concurrency: workers)
        return phaseResult(name: name, description: "WHEP (WebRTC)", requested: count, connected: members.count,
                           failures: opened.failures, joinSeconds: opened.wallSeconds, connect: opened.connectHistogram,
                           window: window, whep: detail, teardown: teardown)
    }

    private struct Window {
        var joined: ProcSample
        var start: WindowEnd
        var end: WindowEnd
        var forwarded: Double?
    }

    /// Waits --settle s, then counts for `seconds`: the listeners' totals (`count`) and the
    /// server's /proc numbers at both ends, /metrics just outside them.
    private func measureWindow(seconds: Double, pid: Int32, port: Int, hostSent: () -> Int,
                               count: () -> Tally) throws -> Window {
        if settle > 0 { usleepNanos(UInt64(settle * 1e9)) }
        guard let joined = ProcSample.read(pid: pid) else { throw BenchError("server process \(pid) is gone") }
        let metrics0 = noMetrics ? nil : MetricsSample.fetch(port: port, attempts: 3)
        func end(countFirst: Bool) throws -> WindowEnd {
            var counted = Tally()
            if countFirst { counted = count() }
            guard let proc = ProcSample.read(pid: pid) else { throw BenchError("server process \(pid) is gone") }
            let selfCPU = ProcSample.selfCPUSeconds()
            let sent = hostSent()
            if !countFirst { counted = count() }
            return WindowEnd(proc: proc, selfCPU: selfCPU, delivered: counted.delivered, gaps: counted.gaps,
                             reordered: counted.reordered, closed: counted.closed, hostSent: sent,
                             perListener: counted.perListener)
        }
        // Counters are read just inside the /proc samples at both ends, so the window's CPU
        // covers every packet counted.
        let start = try end(countFirst: true)
        usleepNanos(UInt64(seconds * 1e9))
        let finish = try end(countFirst: false)
        let metrics1 = noMetrics ? nil : MetricsSample.fetch(port: port, attempts: 3)
        var forwarded: Double?
        if let metrics0, let metrics1 { forwarded = metrics1.forwardedAudio - metrics0.forwardedAudio }
        return Window(joined: joined, start: start, end: finish, forwarded: forwarded)
    }

    private func phaseResult(name: String, description: String, requested: Int, connected: Int, failures: [String: Int],
                             joinSeconds: Double, connect: LatencyHistogram, window: Window, whep: PhaseResult.WHEPDetail?,
                             teardown: [String: Int]) -> PhaseResult {
        let seconds = Double(window.end.proc.at - window.start.proc.at) / 1e9
        let cpu = window.end.proc.cpuSeconds - window.start.proc.cpuSeconds
        let delivered = window.end.delivered - window.start.delivered
        let expected = Double(connected) * seconds * Self.mixPacketsPerSecond
        let gaps = window.end.gaps - window.start.gaps
        return PhaseResult(
            phase: name, description: description, listeners_requested: requested, listeners_connected: connected,
            listeners_receiving: zip(window.start.perListener, window.end.perListener).count { $1 > $0 },
            failures: failures, join_s: round3(joinSeconds),
            connect_ms_p50: Double(connect.percentile(0.5)) / 1000, connect_ms_p99: Double(connect.percentile(0.99)) / 1000,
            window_s: round3(seconds), packets_delivered: delivered, packets_expected: round3(expected),
            delivery_ratio: expected > 0 ? Double(delivered) / expected : 0,
            delivery_ratio_by_sequence: delivered + gaps > 0 ? Double(delivered) / Double(delivered + gaps) : 0,
            gaps: gaps, reordered: window.end.reordered - window.start.reordered,
            listeners_closed_early: window.end.closed,
            packets_per_second: seconds > 0 ? round3(Double(delivered) / seconds) : 0,
            server_cpu_s: round3(cpu), server_cpu_s_per_s: seconds > 0 ? round3(cpu / seconds) : 0,
            server_cpu_us_per_packet: delivered > 0 ? round3(cpu * 1e6 / Double(delivered)) : 0,
            server_cpu_us_per_packet_above_baseline: nil,
            server_rss_kib_before: 0, server_rss_kib_joined: window.joined.rssKiB, server_rss_kib_end: window.end.proc.rssKiB,
            server_rss_kib_per_listener: 0, server_threads: window.end.proc.threads,
            generator_cpu_s_per_s: seconds > 0 ? round3((window.end.selfCPU - window.start.selfCPU) / seconds) : 0,
            forwarded_audio_delta: window.forwarded, host_frames_sent_in_window: window.end.hostSent - window.start.hostSent,
            whep: whep, teardown: teardown)
    }
}
