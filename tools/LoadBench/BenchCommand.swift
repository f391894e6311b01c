import AirwaveMedia
import ArgumentParser
import Foundation
import NIOCore
import NIOPosix

/// `airwave-bench`: a load generator for one live event — N listeners, S speakers, Opus frames
/// at a fixed rate — that measures delivery, latency and the server's CPU and memory.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "airwave-bench",
        abstract: "Load generator for Airwave live events (SwiftNIO; 127.0.0.1 only).",
        discussion: """
            Either starts `airwave serve` itself (--server-binary) or uses a running server
            (--url ws://127.0.0.1:PORT --server-pid PID --jwt-secret S). A server that is not
            Airwave (the Django Channels relay of tools/bench/django_relay) needs --no-metrics,
            and --no-tokens when it does not check tokens. One speaker goes live;
            with --speakers S > 1, S-1 verified listeners are invited and accept to co-host.
            Every speaker sends the fixture's Opus packets at --rate frames/s for --duration s
            while N listeners count frames and measure latency (same-process monotonic clock,
            keyed by the frames' sequence numbers). With --idle nobody speaks: the listeners
            join, wait --settle s, and the report gives the server's RSS per idle listener.

            With --compare-whep the host speaks throughout and the same server is measured in
            phases (--phases ws,whep): first --baseline s with one mixed WebSocket listener
            (the mix's own cost), then --listeners WebSocket listeners joined with
            ?audio=mixed, then as many WHEP listeners (POST /whep/{eventId}, ICE, DTLS, SRTP on
            one UDP socket each; consent checks every --whep-consent-interval s). Each phase
            joins, waits --settle s, measures --duration s and hangs up; the report gives the
            server's CPU per delivered packet of the mix (50 packets/s per listener), delivery,
            RSS, and WHEP / WebSocket.
            """)

    @Option(help: "Start this `airwave` binary on a free port (and stop it at the end).")
    var serverBinary: String?
    @Option(help: "Use a running server: ws://127.0.0.1:PORT")
    var url: String?
    @Option(help: "PID of the running server (for /proc CPU and RSS).")
    var serverPid: Int32?
    @Option(help: "HS256 secret of the server (tokens of the speakers).")
    var jwtSecret: String = "airwave-bench-secret-0123456789-abcdefghijklmnop"
    @Option(help: "Binary used to mint tokens (`airwave token`); defaults to --server-binary or the `airwave` next to this program.")
    var tokenBinary: String?
    @Option(help: "Listeners (0…100000).")
    var listeners: Int = 100
    @Option(help: "Speakers: the host plus S-1 co-hosts (1…64).")
    var speakers: Int = 1
    @Option(help: "Frames per second per speaker (1…1000).")
    var rate: Int = 50
    @Option(help: "Seconds of speaking (0.1…3600).")
    var duration: Double = 10
    @Option(help: "New listener connections per second.")
    var connectRate: Int = 500
    @Option(help: "Listener handshakes in flight at most.")
    var concurrency: Int = 200
    @Option(help: "Seconds one connection may take to join.")
    var connectTimeout: Double = 15
    @Option(help: "Event loop threads of the generator.")
    var threads: Int = System.coreCount
    @Option(help: "Seconds to wait after joining before speaking (lets join notices settle).")
    var settle: Double = 1.5
    @Option(help: "At most this many seconds to wait for frames in flight after the last send.")
    var drain: Double = 5
    @Option(help: "Opus packet records to send (Fixtures/media/speech.opus-packets).")
    var fixture: String?
    @Flag(help: "Do not read the server's /metrics (a server that is not Airwave has none).")
    var noMetrics = false
    @Flag(help: "Do not mint tokens: send ?token=unchecked (a server that does not check tokens).")
    var noTokens = false
    @Flag(help: "Join the listeners and measure memory only: nobody speaks.")
    var idle = false
    @Flag(help: "Print every number as JSON.")
    var json = false
    @Flag(help: ArgumentHelp(
        "Compare transports for the event's mix in one run: WebSocket listeners with ?audio=mixed, then as many WHEP (WebRTC) listeners.",
        discussion: "Each phase joins --listeners listeners, waits --settle s, measures for --duration s, and hangs them up."))
    var compareWhep = false
    @Option(help: "With --compare-whep: the phases, in order (ws, whep).")
    var phases: String = "ws,whep"
    @Option(help: "With --compare-whep: seconds measured with a single mixed WebSocket listener first (the mix's own cost); 0 skips it.")
    var baseline: Double = 5
    @Option(help: "WHEP listeners: seconds between consent-freshness STUN checks.")
    var whepConsentInterval: Double = 2
    @Option(help: "WHEP listeners: SRTP-decrypt every n-th packet (1: all, 0: none); all are counted.")
    var whepDecryptEvery: Int = 50

    func validate() throws {
        guard (serverBinary == nil) != (url == nil) else { throw ValidationError("give exactly one of --server-binary and --url") }
        guard (0...100_000).contains(listeners) else { throw ValidationError("--listeners must be 0…100000") }
        guard (1...64).contains(speakers) else { throw ValidationError("--speakers must be 1…64") }
        guard (1...1000).contains(rate) else { throw ValidationError("--rate must be 1…1000") }
        guard duration >= 0.1 && duration <= 3600 else { throw ValidationError("--duration must be 0.1…3600") }
        guard (1...100_000).contains(connectRate) else { throw ValidationError("--connect-rate must be 1…100000") }
        guard (1...10_000).contains(concurrency) else { throw ValidationError("--concurrency must be 1…10000") }
        guard (1...256).contains(threads) else { throw ValidationError("--threads must be 1…256") }
        guard connectTimeout > 0 && connectTimeout <= 300, settle >= 0 && settle <= 60, drain >= 0 && drain <= 60 else {
            throw ValidationError("--connect-timeout 0…300, --settle 0…60, --drain 0…60")
        }
        if url != nil && serverPid == nil { throw ValidationError("--url needs --server-pid") }
        if compareWhep {
            guard speakers == 1, !idle, !noTokens else { throw ValidationError("--compare-whep takes one speaker, no --idle, no --no-tokens") }
            guard !comparisonPhases.isEmpty, phases.split(separator: ",").count == comparisonPhases.count else {
                throw ValidationError("--phases must list ws and/or whep, e.g. ws,whep")
            }
            guard baseline >= 0 && baseline <= 600 else { throw ValidationError("--baseline must be 0…600") }
            guard whepConsentInterval >= 0.05 && whepConsentInterval <= 25 else { throw ValidationError("--whep-consent-interval must be 0.05…25") }
            guard whepDecryptEvery >= 0 else { throw ValidationError("--whep-decrypt-every must be ≥ 0") }
        }
    }

    func run() throws {
        do {
            if compareWhep { try runComparison() } else { try runBench() }
        } catch let error as BenchError {
            FileHandle.standardError.write(Data("airwave-bench: \(error.description)\n".utf8))
            throw ExitCode(1)
        }
    }

    // MARK: -

    func locateFixture() throws -> String {
        if let fixture { return fixture }
        var candidates: [URL] = []
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var dir = exe.deletingLastPathComponent()
        for _ in 0..<6 { candidates.append(dir.appendingPathComponent("Fixtures/media/speech.opus-packets")); dir = dir.deletingLastPathComponent() }
        candidates.append(URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent("Fixtures/media/speech.opus-packets"))
        guard let found = candidates.first(where: { FileManager.default.fileExists(atPath: $0.path) }) else {
            throw BenchError("speech.opus-packets not found; pass --fixture")
        }
        return found.path
    }

    func locateTokenBinary() throws -> String {
        if let tokenBinary { return tokenBinary }
        if let serverBinary { return serverBinary }
        let sibling = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
            .deletingLastPathComponent().appendingPathComponent("airwave").path
        guard FileManager.default.isExecutableFile(atPath: sibling) else { throw BenchError("no `airwave` to mint tokens; pass --token-binary") }
        return sibling
    }

    func loadPackets(_ path: String) throws -> [ByteBuffer] {
        guard let data = FileManager.default.contents(atPath: path) else { throw BenchError("cannot read \(path)") }
        let packets: [[UInt8]]
        do { packets = try MediaRecordFile.readPackets([UInt8](data)) } catch { throw BenchError("\(path): \(error)") }
        guard !packets.isEmpty else { throw BenchError("\(path) holds no packets") }
        for (i, packet) in packets.enumerated() where OpusPacket.info(packet) == nil {
            throw BenchError("\(path): packet \(i) is not a valid Opus packet")
        }
        return packets.map { ByteBuffer(bytes: $0) }
    }

    /// The server under test: started from `--server-binary` (returned, to be stopped), or the
    /// running one of `--url` and `--server-pid`.
    func targetServer() throws -> (port: Int, pid: Int32, managed: ManagedServer?) {
        if let serverBinary {
            let server = try ManagedServer(binary: serverBinary, secret: jwtSecret)
            return (server.port, server.pid, server)
        }
        return (try parsePort(url!), serverPid!, nil)
    }

    /// Stops a server the bench started, saying so if it did not exit cleanly.
    static func stop(_ server: ManagedServer) {
        let status = server.stop()
        if status != 0 { FileHandle.standardError.write(Data("airwave-bench: server exit status \(status.map(String.init) ?? "killed")\n".utf8)) }
    }

    func parsePort(_ url: String) throws -> Int {
        guard let components = URLComponents(string: url), components.scheme == "ws",
              let host = components.host, host == "127.0.0.1" || host == "localhost", let port = components.port else {
            throw BenchError("--url must be ws://127.0.0.1:PORT (loopback only)")
        }
        return port
    }

    private func runBench() throws {
        var errors: [String] = []
        let fileLimit = raiseFileLimit()
        guard listeners + speakers + 64 <= fileLimit else {
            throw BenchError("\(listeners + speakers) connections need more open files than the limit \(fileLimit)")
        }
        let fixturePath = try locateFixture()
        let packets = try loadPackets(fixturePath)
        let minter: String? = try noTokens ? nil : locateTokenBinary()
        let secret = jwtSecret
        let token: (String) throws -> String = { userID in
            guard let minter else { return "unchecked" }
            return try mintToken(binary: minter, userID: userID, secret: secret)
        }

        // The server.
        let (port, pid, managed) = try targetServer()
        defer { managed.map(Self.stop) }
        guard let idleSample = ProcSample.read(pid: pid) else { throw BenchError("cannot read /proc/\(pid)") }

        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        defer { try? group.syncShutdownGracefully() }
        var loops: [LoopState] = []
        var iterator = group.makeIterator()
        while let loop = iterator.next() { loops.append(LoopState(loop: loop)) }

        let framesPerSpeaker = max(1, Int((Double(rate) * duration).rounded()))
        let table = SendTimeTable(speakers: speakers, capacity: framesPerSpeaker + 1)
        let tag = String(UInt32.random(in: 0...UInt32.max), radix: 36)
        let timeout = TimeAmount.nanoseconds(Int64(connectTimeout * 1e9))

        // Host goes live.
        let hostID = "bench-host-\(tag)"
        let host = Session(role: .speaker(0), userID: hostID, loopState: loops[0], table: table)
        let hostToken = try token(hostID)
        openSession(host, port: port, path: "/ws/stream/start/live/\(hostID)/?token=\(hostToken)", timeout: timeout)
        let link: ControlMessage
        do { link = try host.ready.futureResult.wait() } catch { throw BenchError("host could not go live: \(error)") }
        guard let eventID = link.eventID else { throw BenchError("stream_link without event_id") }
        var speakerSessions = [host]

        // Co-hosts: verified listeners, invited by the host, who accept.
        for k in 1..<max(1, speakers) {
            let userID = "bench-cohost-\(tag)-\(k)"
            let session = Session(role: .speaker(k), userID: userID, loopState: loops[k % loops.count], table: table)
            session.autoAcceptInvite = true
            let cohostToken = try token(userID)
            openSession(session, port: port, path: "/ws/stream/live/join/event/\(eventID)/\(userID)/?token=\(cohostToken)", timeout: timeout)
            do { _ = try session.ready.futureResult.wait() } catch { throw BenchError("co-host \(k) could not join: \(error)") }
            let joined = host.waitFor(timeout: timeout) { $0.type == "cohost_joined" && $0.userID == userID }
            host.sendText(#"{"type":"invite_cohost","user_id":"\#(userID)"}"#)
            do { _ = try joined.wait() } catch { throw BenchError("co-host \(k) did not become co-host: \(error)") }
            speakerSessions.append(session)
        }

        // Listeners.
        let fleet = ListenerFleet(loops: loops, table: table, port: port, eventID: eventID, connectRate: connectRate,
                                  concurrency: concurrency, timeout: timeout, runTag: tag)
        let opened = fleet.open(count: listeners)
        if settle > 0 { usleepNanos(UInt64(settle * 1e9)) }

        // Measurement window.
        let metrics0 = noMetrics ? nil : MetricsSample.fetch(port: port, attempts: 3)
        guard let joinedSample = ProcSample.read(pid: pid) else { throw BenchError("server process \(pid) is gone") }
        let selfCPU0 = ProcSample.selfCPUSeconds()
        let start = NIODeadline.now() + .milliseconds(100)
        // Idle: nobody speaks, so nothing is expected and the drain below ends at once.
        let pacers: [SpeakerPacer] = idle ? [] : speakerSessions.enumerated().map { index, session in
            SpeakerPacer(session: session, speakerIndex: index, packets: packets, total: framesPerSpeaker, rate: rate, start: start)
        }
        for pacer in pacers { pacer.begin() }
        for pacer in pacers {
            let deadline = DispatchTime.now() + duration + 10
            let box = DispatchSemaphore(value: 0)
            pacer.done.futureResult.whenComplete { _ in box.signal() }
            if box.wait(timeout: deadline) == .timedOut { errors.append("speaker \(pacer.speakerIndex) did not finish in time"); pacer.cancel() }
        }
        let sentPerSpeaker = idle ? speakerSessions.map { _ in 0 }
            : pacers.map { pacer in (try? pacer.session.loopState.loop.submit { pacer.sent }.wait()) ?? 0 }
        let bytesSent = pacers.map { pacer in (try? pacer.session.loopState.loop.submit { pacer.bytesSent }.wait()) ?? 0 }.reduce(0, +)
        let lateTicks = pacers.map { pacer in (try? pacer.session.loopState.loop.submit { pacer.lateTicks }.wait()) ?? 0 }.reduce(0, +)
        let sentTotal = sentPerSpeaker.reduce(0, +)
        let connected = opened.sessions.filter { readyOK($0) }
        let expectedListeners = sentTotal * connected.count
        let expectedSpeakers = sentPerSpeaker.reduce(0) { $0 + (sentTotal - $1) }

        // Drain: until everything expected arrived, or no progress for 1 s, or --drain s.
        let drainStart = monotonicNanos()
        var lastTotal = -1, lastProgress = drainStart
        while true {
            let total = receivedTotal(loops: loops, speakers: speakerSessions)
            let now = monotonicNanos()
            if total != lastTotal { lastTotal = total; lastProgress = now }
            if total >= expectedListeners + expectedSpeakers || now - lastProgress > 1_000_000_000 || Double(now - drainStart) / 1e9 > drain { break }
            usleepNanos(20_000_000)
        }
        guard let endSample = ProcSample.read(pid: pid) else { throw BenchError("server process \(pid) is gone") }
        let selfCPU1 = ProcSample.selfCPUSeconds()
        let metrics1 = noMetrics ? nil : MetricsSample.fetch(port: port, attempts: 3)

        // Collect, loop by loop.
        var listenerLatency = LatencyHistogram(), speakerLatency = LatencyHistogram()
        var frames = FrameTotals()
        for loop in loops {
            let part = try loop.loop.submit { () -> (LatencyHistogram, LatencyHistogram, FrameTotals) in
                var totals = FrameTotals()
                for session in loop.sessions where readyOK(session) { totals.add(session, expected: sentTotal) }
                return (loop.listenerLatency, loop.speakerLatency, totals)
            }.wait()
            listenerLatency.merge(part.0)
            speakerLatency.merge(part.1)
            frames.merge(part.2)
        }
        var speakerReceived = 0, speakerBytes = 0
        for session in speakerSessions {
            let counts = try session.loopState.loop.submit { (session.framesReceived, session.bytesReceived, session.closed, session.errorsReceived) }.wait()
            for (text, count) in counts.3.sorted(by: { $0.key < $1.key }) { errors.append("speaker \(session.userID) received error \(text) (×\(count))") }
            speakerReceived += counts.0
            speakerBytes += counts.1
            if counts.2 { errors.append("speaker \(session.userID) was disconnected") }
        }
        var connectHistogram = LatencyHistogram()
        var failures: [String: Int] = [:]
        for session in opened.sessions {
            let state = try session.loopState.loop.submit { (session.connectNanos, session.failure, readyOK(session)) }.wait()
            if state.2 { connectHistogram.record(micros: state.0 / 1000) }
            else { failures[shortReason(state.1 ?? "unknown"), default: 0] += 1 }
        }

        // Tear down: the host ends the event (the server closes everyone with 1000), then
        // whatever is still open is closed by us. All bounded.
        host.sendText(#"{"type":"stream_ended","event_id":"\#(eventID)"}"#)
        let allSessions = speakerSessions + opened.sessions
        let closeDeadline = monotonicNanos() + 5_000_000_000
        while monotonicNanos() < closeDeadline {
            let open = loops.map { loop in (try? loop.loop.submit { allSessions.filter { $0.loopState === loop && $0.channel?.isActive == true }.count }.wait()) ?? 0 }.reduce(0, +)
            if open == 0 { break }
            usleepNanos(50_000_000)
        }
        for loop in loops {
            try? loop.loop.flatSubmit { () -> EventLoopFuture<Void> in
                let futures = allSessions.filter { $0.loopState === loop }.compactMap { $0.channel }.filter { $0.isActive }
                    .map { $0.close().recover { _ in } }
                return EventLoopFuture.andAllComplete(futures, on: loop.loop)
            }.wait()
        }

        // Report.
        let window = Double(endSample.at - joinedSample.at) / 1e9
        let cpu = endSample.cpuSeconds - joinedSample.cpuSeconds
        let delivered = frames.received + speakerReceived
        var forwardedDelta = 0.0, inDelta = 0.0, droppedDelta = 0.0
        if let m0 = metrics0, let m1 = metrics1 {
            forwardedDelta = m1.forwardedAudio - m0.forwardedAudio
            inDelta = m1.framesInOpus - m0.framesInOpus
            droppedDelta = m1.framesDropped - m0.framesDropped
        } else if !noMetrics {
            errors.append("/metrics could not be read")
        }
        let connectionsInEvent = connected.count + speakers
        let report = BenchReport(
            config: .init(listeners: listeners, speakers: speakers, rate: rate, duration_s: idle ? 0 : duration, idle: idle,
                          metrics_read: !noMetrics, tokens_minted: !noTokens, connect_rate: connectRate,
                          concurrency: concurrency, event_loops: loops.count,
                          server: serverBinary ?? url!, server_pid: pid, fixture: URL(fileURLWithPath: fixturePath).lastPathComponent, fixture_packets: packets.count),
            connect: .init(listeners_connected: connected.count, listeners_failed: listeners - connected.count, failures: failures,
                           wall_s: round3(opened.wallSeconds),
                           per_second: opened.wallSeconds > 0 ? round3(Double(connected.count) / opened.wallSeconds) : 0,
                           connect_ms_p50: Double(connectHistogram.percentile(0.5)) / 1000,
                           connect_ms_p99: Double(connectHistogram.percentile(0.99)) / 1000,
                           connect_ms_max: Double(connectHistogram.maxMicros) / 1000),
            frames: .init(sent_per_speaker: sentPerSpeaker, sent_total: sentTotal, bytes_sent: bytesSent,
                          expected_per_listener: sentTotal,
                          listeners_received: frames.received, listeners_expected: expectedListeners,
                          delivery_ratio: expectedListeners > 0 ? Double(frames.received) / Double(expectedListeners) : 1,
                          listeners_complete: frames.complete, listener_min_received: frames.minReceived == .max ? 0 : frames.minReceived,
                          speakers_received: speakerReceived, speakers_expected: expectedSpeakers,
                          received_total: delivered, expected_total: expectedListeners + expectedSpeakers,
                          bytes_received: frames.bytes + speakerBytes,
                          gaps: frames.gaps, reordered: frames.reordered, unmatched: frames.unmatched, bad_frames: frames.bad,
                          source_id_mismatches: frames.sourceMismatches, late_ticks: lateTicks,
                          listeners_closed_early: frames.closedEarly, close_codes: frames.closeCodes),
            latency_listeners: LatencySummary(listenerLatency),
            latency_speakers: LatencySummary(speakerLatency),
            server: .init(cpu_seconds: round3(cpu), window_s: round3(window),
                          cpu_seconds_per_second: window > 0 ? round3(cpu / window) : 0,
                          cpu_us_per_delivered_frame: delivered > 0 ? round3(cpu * 1e6 / Double(delivered)) : 0,
                          rss_kib_idle: idleSample.rssKiB, rss_kib_joined: joinedSample.rssKiB, rss_kib_end: endSample.rssKiB,
                          rss_kib_per_listener: connected.isEmpty ? 0 : round3(Double(joinedSample.rssKiB - idleSample.rssKiB) / Double(connected.count)),
                          threads: endSample.threads,
                          metrics_available: metrics0 != nil && metrics1 != nil,
                          forwarded_audio_delta: forwardedDelta, frames_in_opus_delta: inDelta, frames_dropped_delta: droppedDelta,
                          forwarded_expected: sentPerSpeaker.reduce(0) { $0 + $1 * (connectionsInEvent - 1) },
                          forwarded_minus_received: forwardedDelta - Double(delivered)),
            generator: .init(cpu_seconds: round3(selfCPU1 - selfCPU0),
                             cpu_seconds_per_second: window > 0 ? round3((selfCPU1 - selfCPU0) / window) : 0),
            errors: errors)
        print(json ? report.json() : report.table())
    }
}

/// Sums of the listeners' counters (built on each loop, merged on the main thread).
struct FrameTotals: Sendable {
    var received = 0, bytes = 0, complete = 0, minReceived = Int.max
    var gaps = 0, reordered = 0, unmatched = 0, bad = 0, sourceMismatches = 0, closedEarly = 0
    var closeCodes: [String: Int] = [:]

    mutating func add(_ s: Session, expected: Int) {
        received += s.framesReceived
        bytes += s.bytesReceived
        if s.framesReceived >= expected { complete += 1 }
        minReceived = min(minReceived, s.framesReceived)
        gaps += s.gaps; reordered += s.reordered; unmatched += s.unmatched; bad += s.badFrames
        sourceMismatches += s.sourceMismatches
        if s.closed { closedEarly += 1; closeCodes[s.closeCode.map(String.init) ?? "none", default: 0] += 1 }
    }

    mutating func merge(_ o: FrameTotals) {
        received += o.received; bytes += o.bytes; complete += o.complete; minReceived = min(minReceived, o.minReceived)
        gaps += o.gaps; reordered += o.reordered; unmatched += o.unmatched; bad += o.bad
        sourceMismatches += o.sourceMismatches; closedEarly += o.closedEarly
        closeCodes.merge(o.closeCodes, uniquingKeysWith: +)
    }
}

/// Joined successfully (got `stream_state`/`stream_link`), even if it was closed later;
/// read on the session's loop, or after its ready promise completed.
func readyOK(_ session: Session) -> Bool { session.connectNanos > 0 }

func receivedTotal(loops: [LoopState], speakers: [Session]) -> Int {
    var total = 0
    for loop in loops {
        total += (try? loop.loop.submit { loop.sessions.reduce(0) { $0 + $1.framesReceived } }.wait()) ?? 0
    }
    for s in speakers { total += (try? s.loopState.loop.submit { s.framesReceived }.wait()) ?? 0 }
    return total
}

func shortReason(_ reason: String) -> String { String(reason.prefix(80)) }
func round3(_ v: Double) -> Double { (v * 1000).rounded() / 1000 }
