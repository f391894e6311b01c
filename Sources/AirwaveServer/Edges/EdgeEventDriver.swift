import AirwaveCore
import AirwaveWebRTC
import AirwaveProtocol
import AirwaveStore
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// Runs one `EdgeEvent`: this node's clients of an event whose origin is another node
/// (PROTOCOL.md 8). One task takes the inputs in order, feeds the edge and executes its
/// outputs: local fan-out (one buffer per message, one hop per event loop, as on the origin),
/// the players (WHEP sessions and `GET /listen/`, `+Players`), admissions and closes, and the
/// link to the origin (`EdgeLinkClient`), reopened as the edge says. It decides nothing the
/// edge could.
final class EdgeEventDriver: Sendable {
    enum Message: Sendable {
        case input(EdgeEvent.Input, connection: ClientConnection?)
        /// An input about a WHEP player, which the driver keeps for its outputs.
        case peerInput(EdgeEvent.Input, peer: WebRTCPeer)
        /// An input about a `GET /listen/` player, which the driver keeps for its outputs;
        /// `answer` is told once whether the edge took it (nil) or refused it (the error's code),
        /// before its response head goes out.
        case listenerInput(EdgeEvent.Input, listener: HTTPListener, answer: @Sendable (ErrorCode?) -> Void)
        /// The first HLS request for the event here: the edge's segmenter starts under this id.
        case segmenter(HLSStream, id: ConnectionID)
        /// What came down link attempt `attempt`.
        case fromOrigin(attempt: Int, EdgeLinkMessage.Down)
        /// Link attempt `attempt` ended (it failed to open, or broke).
        case linkEnded(attempt: Int)
        /// Link attempt `attempt` found no live origin for the event.
        case noOrigin(attempt: Int)
        /// Link attempt `attempt` connects to this origin node.
        case linking(attempt: Int, originNode: String)
        case tick
    }

    /// Shared services.
    struct Services: Sendable {
        let metrics: ServerMetrics
        let logger: Logger
        let writer: StoreWriter
        let configuration: EdgeConfiguration
        /// The WebRTC transport, if it runs (WHEP players of the edge).
        let webRTC: WebRTCGateway?
        /// The origin node and the link's URL for an attempt, or nil when the event has no live origin now.
        let linkURL: @Sendable (_ eventID: String, _ session: String) async -> (nodeID: String, url: String)?
        /// Called once when the edge is done.
        let onFinished: @Sendable (EdgeEventDriver) async -> Void
    }

    let eventID: String
    /// This instance of the edge's event, on every link it opens: a new instance's clients are new.
    let session: String
    /// Every input, in order; closed when the edge finishes, so nothing is accepted after.
    private let inbox = DriverInbox<Message>()
    /// The link's state as of the last step (`GET /api/cluster`'s cascade).
    let status = NIOLockedValueBox(Status())

    /// What `GET /api/cluster` shows of an edge.
    struct Status: Sendable {
        var originNode: String?
        var linked = false
        var clients = 0
        var reconnects = 0
    }

    init(eventID: String) {
        self.eventID = eventID
        session = RandomToken.make(length: 16, alphabet: RandomToken.lowercaseAlphanumerics)
    }

    /// Queues a client's input; false once the edge is done (the caller starts a new one).
    @discardableResult
    func submit(_ input: EdgeEvent.Input, connection: ClientConnection? = nil) -> Bool {
        enqueue(.input(input, connection: connection))
    }

    @discardableResult
    func enqueue(_ message: Message) -> Bool {
        inbox.enqueue(message)
    }

    var hasFinished: Bool { inbox.isOver }

    /// The executors' tables.
    struct RunState {
        /// Every client, admitted or not (a refusal reaches one the origin has not admitted).
        var clients: [ConnectionID: ClientConnection] = [:]
        /// The admitted clients, grouped by event loop for the fan-out.
        var members = ConnectionGroups()
        /// The edge's WHEP players, by connection id.
        var peers: [ConnectionID: WebRTCPeer] = [:]
        /// The edge's `GET /listen/` players, by connection id.
        var listeners: [ConnectionID: HTTPListener] = [:]
        /// Players whose route waits for the edge's answer, and the error a refused one was sent.
        var listenerAnswers: [ConnectionID: @Sendable (ErrorCode?) -> Void] = [:]
        var refusals: [ConnectionID: ErrorCode] = [:]
        /// The HLS segmenter, once an HLS request asked for it.
        var segmenter: (id: ConnectionID, stream: HLSStream)?
        /// Who of the players hears which output of the origin's mix.
        var mix = MixRecipients()
        var attempt = 0
        var link: EdgeLinkClient?
        /// True once a link was up: later openings count as reconnects.
        var linkedBefore = false
        var timer = WakeUpTimer()
        var finished = false
        /// What `status` says now, so it is written only when it changes (not per frame).
        var shown = (linked: false, clients: 0)
    }

    func run(_ services: Services) async {
        var edge = EdgeEvent(eventID: eventID, now: .now(), configuration: services.configuration)
        var state = RunState()
        perform(&edge, &state, services)
        for await message in inbox.messages {
            let now = Timestamp.now()
            switch message {
            case .input(let input, let connection):
                if let connection { state.clients[connection.id] = connection }
                edge.handle(input, now: now)
                if case .disconnected(let id) = input {
                    state.clients[id] = nil
                    state.members.remove(id)
                    state.peers[id] = nil
                    state.listeners[id] = nil
                    state.listenerAnswers[id] = nil  // its route gave up waiting
                    state.refusals[id] = nil
                    state.mix.unsubscribe(id)
                }
            case .peerInput(let input, let peer):
                state.peers[peer.id] = peer
                edge.handle(input, now: now)
            case .listenerInput(let input, let listener, let answer):
                state.listeners[listener.id] = listener
                state.listenerAnswers[listener.id] = answer
                edge.handle(input, now: now)
            case .segmenter(let stream, let id):
                state.segmenter = (id, stream)
                edge.handle(.segmenterSubscription(id), now: now)
            case .fromOrigin(let attempt, let down):
                guard attempt == state.attempt else { continue }
                if case .snapshot = down {
                    if state.linkedBefore {
                        services.metrics.linkReconnected()
                        status.withLockedValue { $0.reconnects += 1 }
                    }
                    state.linkedBefore = true
                }
                services.metrics.linkFrames(direction: "down")
                edge.handle(.fromOrigin(down), now: now)
            case .linkEnded(let attempt), .noOrigin(let attempt):
                guard attempt == state.attempt else { continue }
                state.link = nil
                if case .noOrigin = message { edge.handle(.noOrigin, now: now) } else { edge.handle(.linkDown, now: now) }
            case .linking(let attempt, let originNode):
                if attempt == state.attempt { status.withLockedValue { $0.originNode = originNode } }
                continue
            case .tick:
                state.timer.fired()
                edge.handle(.tick, now: now)
            }
            perform(&edge, &state, services)
            if (edge.isLinked, edge.clientCount) != (state.shown.linked, state.shown.clients) {
                state.shown = (edge.isLinked, edge.clientCount)
                status.withLockedValue { [shown = state.shown] in
                    $0.linked = shown.linked
                    $0.clients = shown.clients
                }
            }
            if state.finished { break }
            let inbox = self.inbox
            state.timer.schedule(edge.nextWakeUp, now: now) { inbox.yield(.tick) }
        }
        state.timer.cancel()
        state.link?.close()
        await services.onFinished(self)
    }

    private func perform(_ edge: inout EdgeEvent, _ state: inout RunState, _ services: Services) {
        while let output = edge.pollOutput() {
            switch output {
            case .send(let message, let route):
                if case .one(let id) = route.sockets, let code = message.errorCode, state.listenerAnswers[id] != nil {
                    state.refusals[id] = code  // a player's refusal: its route answers with it
                }
                let frame = WebSocketWire.text(message.json)
                let count = deliver(frame, to: route.sockets, class: .control, state)
                services.metrics.messageOut(type: message.type.rawValue, count: count)
                if let code = message.errorCode { services.metrics.error(code: code.rawValue) }
            case .forward(let frame, let route):
                if !route.sockets.isNone {
                    let wire = WebSocketWire.frame(frame)
                    let count = deliver(wire, to: route.sockets, class: LiveEventDriver.queueClass(route.queue), state)
                    services.metrics.mediaForwarded(kind: frame.header.kind, recipients: count, bytes: count * wire.readableBytes)
                }
                if !route.sessions.isNone { forwardToPlayers(frame, route.sessions, state, services) }
            case .mixPacket(let frame, let minus):
                state.mix.deliver(frame.payload.withUnsafeReadableBytes { Array($0) }, of: MixRecipients.output(minus),
                                  sequence: frame.header.sequence, timestamp: frame.header.timestamp,
                                  metrics: services.metrics, webRTC: services.webRTC)
            case .mixSubscriber(let id, let minus):
                subscribePlayer(id, minus: minus, &state)
            case .mixUnsubscriber(let id):
                state.mix.unsubscribe(id)
            case .sessionsDropSource(let source):
                let ufrags = state.peers.values.filter { $0.speakerTracks > 0 }.map(\.ufrag)
                if !ufrags.isEmpty { services.webRTC?.releaseSpeaker(source, in: ufrags) }
            case .admit(let id):
                if let connection = state.clients[id] { state.members.insert(connection) }
                state.listenerAnswers.removeValue(forKey: id)?(nil)
            case .close(let id, let code):
                state.members.remove(id)
                state.clients.removeValue(forKey: id)?.close(code)
                if let answer = state.listenerAnswers.removeValue(forKey: id) {
                    // Refused before its response: the route answers with the error instead.
                    state.listeners[id] = nil
                    answer(state.refusals.removeValue(forKey: id) ?? .serverBusy)
                } else {
                    closePlayer(id, &state, services)
                }
            case .uplink(let message):
                state.link?.send(message)
                services.metrics.linkFrames(direction: "up")
            case .openLink:
                state.link?.close()
                state.attempt += 1
                state.link = EdgeLinkClient.open(eventID: eventID, session: session, attempt: state.attempt, driver: self, services: services)
            case .closeLink:
                state.link?.close()
                state.link = nil
            case .mediaDropped(let reason):
                services.metrics.mediaDropped(reason: reason.rawValue)
            case .recordOrphanedEnd:
                services.writer.enqueue([StoreRecord(.eventEnded(eventID: eventID, reason: "host_timeout", at: .now()))])
            case .finished:
                inbox.close()
                state.finished = true
                inbox.finish()
            }
        }
    }

    /// Writes to the clients a route names: a member set for `.all`, any client for `.one` (an
    /// error to a client the origin refused reaches it before its close).
    private func deliver(_ frame: ByteBuffer, to audience: LiveEvent.Audience, class itemClass: OutboundQueue<ByteBuffer>.Class,
                         _ state: RunState) -> Int {
        if case .one(let id) = audience, state.members[id] == nil {
            guard let connection = state.clients[id] else { return 0 }
            let now = Timestamp.now()
            connection.channel.eventLoop.execute { connection.deliver(frame, class: itemClass, now: now) }
            return 1
        }
        return state.members.deliver(frame, to: audience, class: itemClass)
    }
}
