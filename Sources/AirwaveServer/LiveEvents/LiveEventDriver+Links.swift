import AirwaveCore
import AirwaveProtocol
import NIOCore

/// The origin's links to its edges (PROTOCOL.md 8): an edge's client is a connection of the
/// engine like any other; `OriginLinks` regroups each output per link and this writes what it
/// says, once per link. The driver decides nothing here either.
extension LiveEventDriver {
    /// An edge opened its link for this event (authenticated by `ClusterLinkRoutes`).
    @discardableResult
    func linkOpened(_ link: String, session: String, connection: ClientConnection) -> Bool {
        enqueue(.linkOpened(link, session: session, connection: connection))
    }

    /// Something the edge sent up its link.
    @discardableResult
    func linkMessage(_ link: String, connection: ConnectionID, _ message: EdgeLinkMessage.Up) -> Bool {
        enqueue(.linkMessage(link, connection: connection, message))
    }

    /// The link's socket closed.
    func linkClosed(_ link: String, connection: ConnectionID) {
        _ = enqueue(.linkClosed(link, connection: connection))
    }

    /// Handles a link event; the engine's outputs are performed by the caller as for any input.
    func handleLink(_ message: Message, _ engine: inout LiveEvent, _ state: inout RunState, _ services: Services, now: Timestamp) async {
        switch message {
        case .linkOpened(let link, let session, let connection):
            if let old = state.linkSockets[link], old.id != connection.id { old.close(.normal, reason: "replaced by a newer link") }
            state.linkSockets[link] = connection
            // Clients of an earlier instance of that edge are gone; whatever the engine says
            // about it reaches the new link before its snapshot, and the edge ignores it.
            for gone in state.links.opened(link, session: session) {
                engine.handle(.disconnected(gone), now: now)
                state.encoders.remove(gone)
            }
            await perform(&engine, &state, services)
            let (snapshot, screen) = engine.linkSnapshot
            write(.snapshot(snapshot), to: link, state, services)
            for frame in screen { write(.media(frame), to: link, state, services) }
            // Clients held through a re-link keep their mix; the edge learns it again.
            for (number, id) in state.links.clients(of: link) {
                if let minus = state.mix.subscription(of: id) { write(.mixSubscriber(number, minus: minus), to: link, state, services) }
            }
        case .linkClosed(let link, let connection):
            guard state.linkSockets[link]?.id == connection else { return }  // a replaced link's close
            state.linkSockets[link] = nil
            state.links.closed(link, now: now)
        case .linkMessage(let link, let connection, let up):
            guard state.linkSockets[link]?.id == connection else { return }
            services.metrics.linkFrames(direction: "up")
            switch up {
            case .join(let number, let user):
                switch state.links.join(link, number, fresh: services.newConnectionID()) {
                case .join(let id): engine.handle(.join(id, user), now: now)
                case .held(let welcome): write(welcome, to: link, state, services)
                case .ignored: break
                }
            case .mediaListenerJoined(let number, let user, let video, let speakers):
                switch state.links.join(link, number, fresh: services.newConnectionID(), mediaOnly: true) {
                case .join(let id): engine.handle(.mediaListenerJoined(id, user, video: video, speakers: speakers), now: now)
                case .held, .ignored: break  // a re-link: the origin holds it with its mix
                }
            case .segmenterSubscription(let number):
                if case .join(let id) = state.links.join(link, number, fresh: services.newConnectionID(), mediaOnly: true) {
                    engine.handle(.segmenterSubscription(id, subscribed: true), now: now)
                }
            case .leave(let number):
                if let id = state.links.leave(link, number) {
                    engine.handle(.disconnected(id), now: now)
                    state.encoders.remove(id)
                }
            case .command(let number, let command):
                if let id = state.links.connection(link, number) { engine.handle(.command(id, command), now: now) }
            case .media(let number, let frame):
                if let id = state.links.connection(link, number) { engine.handle(.media(id, frame), now: now) }
            case .mixSubscription(let number):
                if let id = state.links.connection(link, number) { engine.handle(.mixSubscription(id, subscribed: true), now: now) }
            case .keyframeRequest:
                // A viewer of that edge asks; the engine's throttle applies as for any viewer.
                if let id = state.links.anyClient(of: link) { engine.handle(.command(id, .keyframeRequest), now: now) }
            }
        default:
            break
        }
    }

    /// Clients of links whose grace ended leave the event.
    func expireLinks(_ engine: inout LiveEvent, _ state: inout RunState, now: Timestamp) {
        for gone in state.links.expire(now: now) {
            engine.handle(.disconnected(gone), now: now)
            state.encoders.remove(gone)
        }
    }

    /// Writes what `OriginLinks` makes of one engine output down the links; a media frame is
    /// encoded once for all of them.
    func routeToLinks(_ output: LiveEvent.Output, _ state: inout RunState, _ services: Services) {
        let downs = state.links.route(output)
        guard !downs.isEmpty else { return }
        var mediaWire: ByteBuffer?
        for (link, down) in downs {
            if case .media(let frame) = down {
                let wire = mediaWire ?? WebSocketWire.frame(frame)
                mediaWire = wire
                deliverToLink(wire, class: Self.linkQueueClass(frame), link, state, services)
            } else {
                write(down, to: link, state, services)
            }
        }
        switch output {
        case .ended:
            for socket in state.linkSockets.values { socket.close(.normal) }
            state.linkSockets.removeAll()
        case .handedOver:
            // No `ended` went down: the edges keep their clients and look for the next origin.
            for socket in state.linkSockets.values { socket.close(.goingAway) }
            state.linkSockets.removeAll()
        default:
            break
        }
    }

    private func write(_ down: EdgeLinkMessage.Down, to link: String, _ state: RunState, _ services: Services) {
        switch down.frame {
        case .text(let text):
            var payload = ByteBufferAllocator().buffer(capacity: text.utf8.count)
            payload.writeString(text)
            deliverToLink(WebSocketWire.frame(opcode: WebSocketWire.text, payload: payload), class: .control, link, state, services)
        case .binary(let frame):
            deliverToLink(WebSocketWire.frame(frame), class: Self.linkQueueClass(frame), link, state, services)
        }
    }

    private func deliverToLink(_ wire: ByteBuffer, class itemClass: OutboundQueue<ByteBuffer>.Class, _ link: String, _ state: RunState,
                               _ services: Services) {
        guard let socket = state.linkSockets[link] else { return }
        services.metrics.linkFrames(direction: "down")
        let now = Timestamp.now()
        socket.channel.eventLoop.execute { socket.deliver(wire, class: itemClass, now: now) }
    }

    /// A frame's class in the link's queue: as on a client's socket (audio may be dropped when
    /// the link is slow; a config frame never).
    static func linkQueueClass(_ frame: MediaFrame) -> OutboundQueue<ByteBuffer>.Class {
        guard frame.header.kind == .screen else { return .audio }
        if frame.header.flags.contains(.config) { return .control }
        return .screen(keyframe: frame.header.flags.contains(.keyframe))
    }
}
