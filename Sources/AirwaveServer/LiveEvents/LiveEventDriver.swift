import AirwaveCore
import AirwaveProtocol
import AirwaveStore
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// Runs one `LiveEvent`: a single task takes its inputs in arrival order, feeds the engine and
/// performs the outputs (fan-out, closes, persistence, timers). Nothing else touches the engine.
final class LiveEventDriver: Sendable {
    enum Message: Sendable {
        /// `mixed`: the connection asked for the mixed stream (`?audio=mixed`); the subscription is
        /// fed to the engine right after its join, in the same step, so it never sees a separate stream.
        case input(LiveEvent.Input, connection: ClientConnection?, mixed: Bool)
        /// An input about a WebRTC peer (a WHEP listener joining), which the driver keeps for its outputs.
        case peerInput(LiveEvent.Input, peer: WebRTCPeer)
        /// A WHIP publisher asks to speak for its user; `reply` says whether the event accepted it.
        case publisher(WebRTCPeer, reply: @Sendable (Bool) -> Void)
        case tick
        /// 20 ms passed on the mix clock.
        case mixTick
        case shutdown
    }

    let eventID: String
    let host: UserIdentity
    private let messages: AsyncStream<Message>
    private let continuation: AsyncStream<Message>.Continuation
    /// Set the moment the engine reports the end, under the same lock `submit` takes, so no
    /// input is accepted after the end is known (the registry then starts a new event instead).
    private let isOver = NIOLockedValueBox(false)

    init(eventID: String, host: UserIdentity) {
        self.eventID = eventID
        self.host = host
        (messages, continuation) = AsyncStream.makeStream(of: Message.self)
    }

    /// Queues an input; false once the event is over (the caller answers `event_ended` itself).
    @discardableResult
    func submit(_ input: LiveEvent.Input, connection: ClientConnection? = nil, mixed: Bool = false) -> Bool {
        isOver.withLockedValue { over in
            guard !over else { return false }
            if case .enqueued = continuation.yield(.input(input, connection: connection, mixed: mixed)) { return true }
            return false
        }
    }

    /// True once the event is over, even while the registry still lists it (it forgets the
    /// driver only after the end has been reported).
    var hasEnded: Bool { isOver.withLockedValue { $0 } }

    /// Queues an input about a WebRTC peer; false once the event is over.
    @discardableResult
    func submit(_ input: LiveEvent.Input, peer: WebRTCPeer) -> Bool {
        isOver.withLockedValue { over in
            guard !over else { return false }
            if case .enqueued = continuation.yield(.peerInput(input, peer: peer)) { return true }
            return false
        }
    }

    /// Whether the event accepts `peer` as a publisher of its user's voice (the host or a
    /// current co-host); the engine then holds it until the user's role ends.
    func admitPublisher(_ peer: WebRTCPeer) async -> Bool {
        await withCheckedContinuation { (answer: CheckedContinuation<Bool, Never>) in
            let queued = isOver.withLockedValue { over -> Bool in
                guard !over else { return false }
                if case .enqueued = continuation.yield(.publisher(peer, reply: { answer.resume(returning: $0) })) { return true }
                return false
            }
            if !queued { answer.resume(returning: false) }
        }
    }

    /// Tells every connection the server is going away and stops the event.
    func shutdown() {
        continuation.yield(.shutdown)
    }

    /// Shared services the driver performs its outputs with.
    struct Services: Sendable {
        let writer: StoreWriter
        let directory: ActiveStreamsDirectory
        let metrics: ServerMetrics
        let logger: Logger
        /// `<data-dir>/recordings`: each event records into its own folder below.
        let recordingsDirectory: String
        /// Called once when the event is over.
        let onEnded: @Sendable (String) async -> Void
        /// The WebRTC transport, if it runs.
        let webRTC: WebRTCGateway?
    }

    /// Consumes inputs until the event ends or the server shuts down.
    func run(engine initial: LiveEvent, services: Services) async {
        var engine = initial
        var state = RunState(mix: EventMix(
            directory: services.recordingsDirectory + "/" + eventID,
            logger: services.logger))
        perform(&engine, &state, services)
        await services.directory.update(engine.summary)
        for await message in messages {
            let now = Timestamp.now()
            switch message {
            case .input(let input, let connection, let mixed):
                if let connection { state.members.insert(connection) }
                engine.handle(input, now: now)
                if mixed, let connection {
                    engine.handle(.mixSubscription(connection.id, subscribed: true), now: now)
                }
                if case .disconnected(let id) = input {
                    state.members.remove(id)
                    state.peers[id] = nil
                    state.encoders.remove(id)
                }
            case .peerInput(let input, let peer):
                state.peers[peer.id] = peer
                engine.handle(input, now: now)
            case .publisher(let peer, let reply):
                state.peers[peer.id] = peer
                engine.handle(.publisherConnected(peer.id, peer.user), now: now)
                reply(engine.isPublisher(peer.id))
            case .tick:
                state.timerAt = nil  // the timer fired: the next wake-up needs a new one
                engine.handle(.tick, now: now)
            case .mixTick:
                let levels = runDueMixTicks(&state, services)
                if !levels.isEmpty { engine.handle(.measuredLevels(levels), now: now) }
            case .shutdown:
                shutdown(&engine, &state, services, now: now)
            }
            await performAsync(&engine, &state, services)
            if state.ended {
                if !state.reportedEnd {
                    state.reportedEnd = true
                    state.timer?.cancel()
                    state.mixTimer?.cancel()
                    state.mix.stopRecording()
                    await services.directory.remove(eventID)
                    services.metrics.eventParticipants(eventID, count: nil)
                    await services.onEnded(eventID)
                    continuation.finish()
                }
                continue
            }
            let summary = engine.summary
            if summary != state.lastSummary {
                if summary.participantCount != state.lastSummary?.participantCount {
                    services.metrics.eventParticipants(eventID, count: summary.participantCount)
                }
                state.lastSummary = summary
                await services.directory.update(summary)
            }
            scheduleTimer(engine.nextWakeUp, &state, now: now)
        }
    }

    private struct RunState {
        var members = ConnectionGroups()
        /// WebRTC peers of the event (WHEP listeners, WHIP publishers), by connection id.
        var peers: [ConnectionID: WebRTCPeer] = [:]
        var timer: Task<Void, Never>?
        var timerAt: Timestamp?
        var ended = false
        var reportedEnd = false
        var lastSummary: LiveServerMessage.StreamSummary?
        var encoders = SpeakerEncoders()
        var mix: EventMix
        /// Yields `.mixTick` every 20 ms while the mix runs.
        var mixTimer: Task<Void, Never>?
        /// When the mix clock started, and how many 20 ms ticks have been mixed since.
        var mixStart: ContinuousClock.Instant?
        var mixTicksDone = 0
    }

    /// Mixes every tick that is due by the mix clock: normally one, more when the driver fell
    /// behind (a busy machine), so the mix and a recording keep wall-clock time. A stall over
    /// 1 s is skipped rather than mixed in a burst. Returns the last tick's levels.
    private func runDueMixTicks(_ state: inout RunState, _ services: Services) -> [UInt32: UInt8] {
        guard let start = state.mixStart else { return [:] }
        let due = Int((ContinuousClock.now - start) / .milliseconds(20))
        if due - state.mixTicksDone > 50 { state.mixTicksDone = due - 50 }
        var levels: [UInt32: UInt8] = [:]
        while state.mixTicksDone < due {
            levels = state.mix.tick(metrics: services.metrics, webRTC: services.webRTC)
            state.mixTicksDone += 1
        }
        return levels
    }

    /// Starts or stops the 20 ms mix clock to match whether the mix runs. Deadlines advance by
    /// exactly 20 ms, so the mix keeps real time even when one sleep wakes late.
    private func updateMixTimer(_ state: inout RunState) {
        if state.mix.isActive, state.mixTimer == nil {
            state.mixStart = .now
            state.mixTicksDone = 0
            let continuation = self.continuation
            state.mixTimer = Task {
                let clock = ContinuousClock()
                var deadline = clock.now
                while !Task.isCancelled {
                    deadline += .milliseconds(20)
                    try? await clock.sleep(until: deadline)
                    guard !Task.isCancelled else { return }
                    continuation.yield(.mixTick)
                }
            }
        } else if !state.mix.isActive, let timer = state.mixTimer {
            timer.cancel()
            state.mixTimer = nil
            state.mixStart = nil
        }
    }

    private func scheduleTimer(_ wakeUp: Timestamp?, _ state: inout RunState, now: Timestamp) {
        guard wakeUp != state.timerAt else { return }
        // A wake-up that only moved later (a speaker's level keeps it fresh) keeps the pending
        // timer: its tick comes early, costs a no-op and re-arms. No new task per audio packet.
        if let current = state.timerAt, let wakeUp, current <= wakeUp { return }
        state.timer?.cancel()
        state.timerAt = wakeUp
        guard let wakeUp else { return }
        let delay = max(0, wakeUp.milliseconds - now.milliseconds)
        let continuation = self.continuation
        state.timer = Task {
            try? await Task.sleep(for: .milliseconds(delay))
            guard !Task.isCancelled else { return }
            continuation.yield(.tick)
        }
    }

    /// Performs outputs that need no waiting (start-up records).
    private func perform(_ engine: inout LiveEvent, _ state: inout RunState, _ services: Services) {
        var records: [StoreRecord] = []
        while let output = engine.pollOutput() {
            if case .persist(let record) = output { records.append(StoreRecord(record)) }
        }
        services.writer.enqueue(records)
    }

    private func performAsync(_ engine: inout LiveEvent, _ state: inout RunState, _ services: Services) async {
        var records: [StoreRecord] = []
        while let output = engine.pollOutput() {
            switch output {
            case .send(let message, let recipients):
                let frame = WebSocketWire.text(message)
                let count: Int
                switch recipients {
                case .one(let id):
                    if let connection = state.members[id] {
                        connection.send(frame)
                        count = 1
                    } else {
                        count = 0
                    }
                case .all: count = state.members.broadcast(frame)
                case .allExcept(let id): count = state.members.broadcast(frame, except: id)
                }
                services.metrics.messageOut(type: message["type"]?.stringValue ?? "unknown", count: count)
                if message["type"] == "error", let code = message["code"]?.stringValue { services.metrics.error(code: code) }
            case .close(let id, let code):
                if let connection = state.members.remove(id) {
                    connection.close(code)
                } else if let peer = state.peers.removeValue(forKey: id) {
                    services.webRTC?.close(peer)
                }
            case .persist(let record):
                records.append(StoreRecord(record))
            case .awaitPersistence:
                services.writer.enqueue(records)
                records.removeAll()
                await services.writer.flush()
            case .ended:
                state.ended = true
                isOver.withLockedValue { $0 = true }
                services.logger.info("event ended", metadata: ["event_id": "\(eventID)"])
            case .forward(let media, let recipients):
                // One wire buffer for every recipient: header and payload are encoded once here.
                let frame = WebSocketWire.frame(media)
                let count: Int
                let itemClass: OutboundQueue<ByteBuffer>.Class
                switch media.header.kind {
                case .opus, .pcm: itemClass = .audio
                case .screen:
                    // A config frame is as precious as a control message: decoders need it.
                    itemClass = media.header.flags.contains(.config) ? .control : .screen(keyframe: media.header.flags.contains(.keyframe))
                }
                switch recipients {
                case .one(let id):
                    count = state.members.send(frame, class: itemClass, to: id) ? 1 : 0
                case .allExcept(let sender, let skipping):
                    count = state.members.broadcast(frame, class: itemClass, except: sender, skipping: skipping)
                }
                services.metrics.mediaForwarded(kind: media.header.kind, recipients: count, bytes: count * frame.readableBytes)
                if media.header.kind == .screen, !state.peers.isEmpty { forwardScreen(media, to: recipients, engine, state, services) }
            case .encodePCM(let pcm, let speaker):
                // Encoded on the speaker's own event loop; the packets come back as inputs, and
                // the engine checks the speaker's gate again then.
                guard let connection = state.members[speaker] else { break }
                state.encoders.encode(pcm, speaker: connection) { [self] packets in
                    for packet in packets { submit(.encodedAudio(speaker: speaker, packet)) }
                }
            case .mediaDropped(let reason):
                services.metrics.mediaDropped(reason: reason.rawValue)
            case .mix(let frame):
                state.mix.push(frame)
            case .mixSubscriber(let id, let minus):
                if let connection = state.members[id] {
                    state.mix.subscribe(connection, minus: minus)
                } else if let peer = state.peers[id] {
                    state.mix.subscribe(peer, minus: minus)
                }
                updateMixTimer(&state)
            case .mixUnsubscriber(let id):
                state.mix.unsubscribe(id)
                updateMixTimer(&state)
            case .mixDropSource(let source):
                state.mix.dropSource(source)
            case .recordingStart(let name):
                state.mix.startRecording(name: name)
                updateMixTimer(&state)
            case .recordingStop:
                _ = runDueMixTicks(&state, services)  // the file covers the time up to the stop
                state.mix.stopRecording()
                updateMixTimer(&state)
            }
        }
        services.writer.enqueue(records)
    }

    /// Screen frames for WebRTC listeners: VP8 only, config frames left out (VP8 has none in
    /// band), to the same recipients the engine chose (so each starts with a keyframe).
    private func forwardScreen(_ media: MediaFrame, to recipients: LiveEvent.MediaRecipients, _ engine: LiveEvent,
                               _ state: RunState, _ services: Services) {
        guard let webRTC = services.webRTC, !media.header.flags.contains(.config),
              engine.screen?.codec?.lowercased() == "vp8"
        else { return }
        let ufrags = state.peers.values.filter { peer in
            guard peer.receivesVideo else { return false }
            switch recipients {
            case .one(let id): return peer.id == id
            case .allExcept(let sender, let skipping): return peer.id != sender && !skipping.contains(peer.id)
            }
        }.map(\.ufrag)
        guard !ufrags.isEmpty else { return }
        webRTC.sendVideo(to: ufrags, frame: media.payload.withUnsafeReadableBytes { Array($0) }, timestamp: media.header.timestamp)
        services.metrics.mediaForwarded(kind: .screen, recipients: ufrags.count, bytes: ufrags.count * media.payload.readableBytes)
    }

    private func shutdown(_ engine: inout LiveEvent, _ state: inout RunState, _ services: Services, now: Timestamp) {
        guard !state.ended else { return }
        state.mixTimer?.cancel()
        state.mix.stopRecording()
        let frame = WebSocketWire.text(LiveServerMessage.serverShutdown)
        state.members.broadcast(frame)
        for connection in state.members.all {
            connection.close(.goingAway, reason: "server_shutdown")
            services.writer.enqueue([.participantLeft(eventID: eventID, connectionID: connection.id.rawValue, at: now.milliseconds)])
        }
        state.members = ConnectionGroups()
        for peer in state.peers.values {
            services.webRTC?.close(peer)
            if peer.kind == .whep {
                services.writer.enqueue([.participantLeft(eventID: eventID, connectionID: peer.id.rawValue, at: now.milliseconds)])
            }
        }
        state.peers.removeAll()
        services.writer.enqueue([.eventEnded(eventID: eventID, reason: "server_shutdown", at: now.milliseconds)])
        state.ended = true
        isOver.withLockedValue { $0 = true }
    }
}
