import AirwaveCore
import AirwaveMedia
import AirwaveProtocol
import AirwaveStore
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// Runs one `LiveEvent`: a single task takes its inputs in arrival order, feeds the engine and
/// executes the outputs. Nothing else touches the engine, and the driver decides nothing the
/// engine could: each output's route says who gets what.
///
/// Concerns live in their own files: `+Inbox` (inputs and the wake-up timer), `+FanOut` (routes
/// to sockets, sessions, the mixer and the level meter), `+MixClock` (the 20 ms mix ticks),
/// `+Persistence` (records and their flushes), `+Shutdown` (the server going away, the end).
final class LiveEventDriver: Sendable {
    enum Message: Sendable {
        /// `mixed`: the connection asked for the mixed stream (`?audio=mixed`); the subscription is
        /// fed to the engine right after its join, in the same step, so it never sees a separate stream.
        case input(LiveEvent.Input, connection: ClientConnection?, mixed: Bool)
        /// An input about a WebRTC peer (a WHEP listener joining), which the driver keeps for its outputs.
        case peerInput(LiveEvent.Input, peer: WebRTCPeer)
        /// An input about an HTTP listener (`GET /listen/` joining), which the driver keeps for its outputs.
        case listenerInput(LiveEvent.Input, listener: HTTPListener)
        /// The first HLS request for the event: the segmenter starts, under this connection id.
        case segmenter(HLSStream, id: ConnectionID)
        /// A WHIP publisher asks to speak for its user; `reply` says whether the event accepted it.
        case publisher(WebRTCPeer, reply: @Sendable (Bool) -> Void)
        case tick
        /// One mix tick passed on the mix clock.
        case mixTick
        case shutdown
        /// This node goes away but the event goes on elsewhere (a node of a cluster, PROTOCOL.md 8).
        case handOver
        /// An edge's link opened (`+Links`).
        case linkOpened(String, session: String, connection: ClientConnection)
        /// A message up an edge's link.
        case linkMessage(String, connection: ConnectionID, EdgeLinkMessage.Up)
        /// An edge's link closed.
        case linkClosed(String, connection: ConnectionID)
    }

    let eventID: String
    let host: UserIdentity
    /// Every input, in order; closed the moment the engine reports the end, so no input is
    /// accepted after the end is known (the registry then starts a new event instead).
    let inbox = DriverInbox<Message>()
    /// The clients of each edge's link, as of the last step (`GET /api/cluster`'s cascade).
    let linkClients = NIOLockedValueBox<[String: Int]>([:])

    init(eventID: String, host: UserIdentity) {
        self.eventID = eventID
        self.host = host
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
        /// A fresh connection id (for an edge's client).
        let newConnectionID: @Sendable () -> ConnectionID
        /// On a node: writes the event's origin row before anything goes out (`ClusterNode.claim`).
        let claimOrigin: @Sendable (String, LiveServerMessage.StreamSummary) async -> Void
    }

    /// What the driver's task holds besides the engine: the executors' tables and clocks.
    struct RunState {
        var members = ConnectionGroups()
        /// WebRTC peers of the event (WHEP listeners, WHIP publishers), by connection id.
        var peers: [ConnectionID: WebRTCPeer] = [:]
        /// HTTP listeners of the event (`GET /listen/`), by connection id.
        var listeners: [ConnectionID: HTTPListener] = [:]
        /// The HLS segmenter, once an HLS request asked for it.
        var segmenter: (id: ConnectionID, stream: HLSStream)?
        var timer = WakeUpTimer()
        var ended = false
        /// The event left this node without ending (`handedOver`): the store keeps it live.
        var handedOver = false
        var reportedEnd = false
        var lastSummary: LiveServerMessage.StreamSummary?
        var encoders = SpeakerEncoders()
        /// Decodes speakers' Opus for their level when a route says `measureLevel`.
        var meter = LevelMeter()
        /// Levels measured in this pass, fed to the engine after it.
        var measuredLevels: [UInt32: UInt8] = [:]
        var mix: EventMix
        var mixClock = MixClock()
        /// Records not yet handed to the store writer.
        var records: [StoreRecord] = []
        /// Which engine connections are edges' clients, per link (PROTOCOL.md 8).
        var links = OriginLinks()
        /// The socket of each edge's link, by the edge's node id.
        var linkSockets: [String: ClientConnection] = [:]
        /// `links.changeCount` as of the last `linkClients` published.
        var publishedLinkChanges = 0
    }

    /// Consumes inputs until the event ends or the server shuts down.
    func run(engine initial: LiveEvent, services: Services) async {
        var engine = initial
        var state = RunState(mix: EventMix(directory: services.recordingsDirectory + "/" + eventID, logger: services.logger))
        await services.claimOrigin(eventID, engine.summary)
        await perform(&engine, &state, services)
        await services.directory.update(engine.summary)
        for await message in inbox.messages {
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
                    state.listeners[id] = nil
                    state.encoders.remove(id)
                }
            case .peerInput(let input, let peer):
                state.peers[peer.id] = peer
                engine.handle(input, now: now)
            case .listenerInput(let input, let listener):
                state.listeners[listener.id] = listener
                engine.handle(input, now: now)
            case .segmenter(let stream, let id):
                state.segmenter = (id, stream)
                engine.handle(.segmenterSubscription(id, subscribed: true), now: now)
            case .publisher(let peer, let reply):
                state.peers[peer.id] = peer
                engine.handle(.publisherConnected(peer.id, peer.user), now: now)
                reply(engine.isPublisher(peer.id))
            case .tick:
                state.timer.fired()
                engine.handle(.tick, now: now)
                expireLinks(&engine, &state, now: now)
            case .mixTick:
                let levels = runDueMixTicks(&state, services)
                if !levels.isEmpty { engine.handle(.measuredLevels(levels), now: now) }
            case .shutdown:
                engine.handle(.shutdown, now: now)
            case .handOver:
                engine.handle(.handOver(keeping: state.links.allClients), now: now)
            case .linkOpened, .linkMessage, .linkClosed:
                await handleLink(message, &engine, &state, services, now: now)
            }
            await perform(&engine, &state, services)
            // Levels the meter measured in this pass go back to the engine in the same step, so
            // `active_speakers` follows the audio without another trip through the inbox.
            if !state.measuredLevels.isEmpty {
                engine.handle(.measuredLevels(state.measuredLevels), now: now)
                state.measuredLevels.removeAll(keepingCapacity: true)
                await perform(&engine, &state, services)
            }
            if state.ended {
                await reportEnd(&state, services)
                continue
            }
            await publishSummary(engine.summary, &state, services)
            if state.links.changeCount != state.publishedLinkChanges {
                state.publishedLinkChanges = state.links.changeCount
                let perLink = state.links.clientsPerLink
                linkClients.withLockedValue { $0 = perLink }
            }
            scheduleTimer([engine.nextWakeUp, state.links.nextWakeUp].compactMap { $0 }.min(), &state, now: now)
        }
    }

    /// Executes every output the engine has, in order.
    func perform(_ engine: inout LiveEvent, _ state: inout RunState, _ services: Services) async {
        while let output = engine.pollOutput() {
            routeToLinks(output, &state, services)
            switch output {
            case .send(let message, let route):
                send(message, route, state, services)
            case .forward(let frame, let route):
                forward(frame, route, &state, services)
            case .close(let id, let code):
                if let connection = state.members.remove(id) {
                    connection.close(code)
                } else if let peer = state.peers.removeValue(forKey: id) {
                    services.webRTC?.close(peer)
                } else if let listener = state.listeners.removeValue(forKey: id) {
                    // The stream's end page, then the end of the response.
                    if !state.mix.finishHTTPListener(id) { listener.abort() }
                    updateMixClock(&state)
                }
            case .persist(let record):
                state.records.append(StoreRecord(record))
            case .awaitPersistence:
                await flushRecords(&state, services)
            case .ended, .handedOver:
                state.mix.endSegmenters()
                updateMixClock(&state)
                state.ended = true
                state.handedOver = output == .handedOver
                inbox.close()
                services.logger.info(state.handedOver ? "event handed over: it may resume on another node" : "event ended",
                                     metadata: ["event_id": "\(eventID)"])
            case .encodePCM(let pcm, let speaker):
                encodePCM(pcm, speaker: speaker, state: &state)
            case .mediaDropped(let reason):
                services.metrics.mediaDropped(reason: reason.rawValue)
            case .mixSubscriber(let id, let minus):
                if let connection = state.members[id] {
                    state.mix.subscribe(id, minus: minus, via: .socket(connection))
                } else if let peer = state.peers[id] {
                    state.mix.subscribe(id, minus: minus, via: .session(ufrag: peer.ufrag))
                } else if let listener = state.listeners[id] {
                    state.mix.subscribe(id, minus: minus, via: .http(listener))
                } else if let segmenter = state.segmenter, segmenter.id == id {
                    state.mix.subscribe(id, minus: minus, via: .segmenter(segmenter.stream))
                } else if let link = state.links.link(of: id) {
                    state.mix.subscribe(id, minus: minus, via: .link(link))
                }
                updateMixClock(&state)
            case .mixUnsubscriber(let id):
                state.mix.unsubscribe(id)
                updateMixClock(&state)
            case .mixDropSource(let source):
                state.mix.dropSource(source)
                state.meter.remove(source: source)
            case .sessionsDropSource(let source):
                let ufrags = state.peers.values.filter { $0.speakerTracks > 0 }.map(\.ufrag)
                if !ufrags.isEmpty { services.webRTC?.releaseSpeaker(source, in: ufrags) }
            case .recordingStart(let name):
                state.mix.startRecording(name: name)
                updateMixClock(&state)
            case .recordingStop:
                _ = runDueMixTicks(&state, services)  // the file covers the time up to the stop
                state.mix.stopRecording()
                updateMixClock(&state)
            }
        }
        enqueueRecords(&state, services)
    }

    /// The directory line and the participant gauge follow the engine's summary.
    private func publishSummary(_ summary: LiveServerMessage.StreamSummary, _ state: inout RunState, _ services: Services) async {
        guard summary != state.lastSummary else { return }
        if summary.participantCount != state.lastSummary?.participantCount {
            services.metrics.eventParticipants(eventID, count: summary.participantCount)
        }
        state.lastSummary = summary
        await services.directory.update(summary)
    }
}
