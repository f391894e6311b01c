import AirwaveProtocol

/// The origin's side of the links its edges hold for one event (PROTOCOL.md 8): which of the
/// engine's connections are an edge's clients, and what of each engine output goes down which
/// link. The engine decides everything as if every edge client were its own connection; this
/// only regroups the decision per link, so that a frame, notice or list goes down once per
/// edge however many of its clients receive it (the edge fans out; `EdgeEvent`).
///
/// Rules (each checked by `OriginLinksTests`):
/// - A client's join is the engine's join; its `stream_state` (the engine's sign that it was
///   admitted) becomes `welcome`, and the `chat_history` right after it is left out: the edge
///   replays both from its own mirror. A refused join's error and close go down as they are.
/// - Media goes down once per link: audio to a link with a recipient, screen frames to every
///   link (the edge keeps the GOP for its late joiners); a joiner's screen catch-up is not sent
///   (its edge replays its own GOP).
/// - A client's mix (`mixSubscriber`, `mixUnsubscriber`) goes to its link; the mix itself goes
///   down once per link and output (`EventMix`), not per client. A media-only client (a WHEP or
///   HTTP player of the edge) is joined without a `welcome`; a speaker's stop
///   (`sessionsDropSource`) goes to every link with clients, for their per-speaker players.
/// - The end goes down as the notice to all, then one `ended` with the engine's close code (not
///   a close per client).
/// - A link that drops keeps its clients for `grace`: an edge re-links within a second and
///   announces the same clients, who are welcomed again without a notice. After the grace they
///   count as gone. A new session of the same edge (its event restarted) replaces the old one's
///   clients at once.
public struct OriginLinks: Sendable {
    /// A link is named by its edge's node id: one link per event per edge.
    public typealias LinkID = String
    public typealias EdgeClient = EdgeLinkMessage.EdgeClient
    public typealias Down = EdgeLinkMessage.Down

    struct Link: Sendable {
        /// The edge's instance of the event on the other end.
        var session: String
        var isUp = true
        var clients: [EdgeClient: ConnectionID] = [:]
        /// While down: when its clients count as gone.
        var graceEndsAt: Timestamp?
    }

    struct Owner: Sendable, Hashable {
        var link: LinkID
        var number: EdgeClient
    }

    /// How long a dropped link's clients stay in the event.
    public let grace: Duration
    var links: [LinkID: Link] = [:] {
        // Kept with every change, so no frame pays for finding the links that are up.
        didSet {
            upLinks = links.filter(\.value.isUp).keys.sorted()
            changeCount &+= 1
        }
    }
    var owners: [ConnectionID: Owner] = [:]
    /// Clients whose join the engine has not answered yet.
    var awaitingWelcome: Set<ConnectionID> = []
    /// Clients welcomed in this step: their `chat_history` follows and is left out.
    var justWelcomed: Set<ConnectionID> = []
    /// Set by the end's notice to all (`stream_ended`, `server_shutdown`): the engine's close of
    /// every connection follows, and a link gets one `ended` with the code instead of a close per client.
    var ending: CloseCode?

    public init(grace: Duration = .seconds(5)) {
        self.grace = grace
    }

    /// What to do with an edge client's join.
    public enum Admission: Sendable, Hashable {
        /// A new connection of the engine: feed it `.join` with this id.
        case join(ConnectionID)
        /// The engine holds it already (a re-link): send this `welcome` down, nothing else.
        case held(Down)
        /// No such link is open: ignore it.
        case ignored
    }

    /// The links that are up, in a stable order.
    public private(set) var upLinks: [LinkID] = []
    /// Counts changes of the links and their clients (a driver republishes `clientsPerLink`
    /// only when it moved).
    public private(set) var changeCount = 0

    /// Every edge client the engine holds.
    public var clientCount: Int { owners.count }

    /// The engine's connections that are edges' clients.
    public var allClients: Set<ConnectionID> { Set(owners.keys) }

    /// Clients the engine holds per link (an edge's node id), links in their grace included.
    public var clientsPerLink: [LinkID: Int] { links.mapValues(\.clients.count) }

    /// The link an edge client is on.
    public func link(of connection: ConnectionID) -> LinkID? { owners[connection]?.link }

    /// A link opened for `session`. Returns the clients of an earlier session of the same edge:
    /// they are gone (feed the engine `.disconnected` for each). The caller then sends the
    /// snapshot.
    public mutating func opened(_ link: LinkID, session: String) -> [ConnectionID] {
        if var existing = links[link], existing.session == session {
            existing.isUp = true
            existing.graceEndsAt = nil
            links[link] = existing
            return []
        }
        let gone = links[link].map { $0.clients.values.sorted() } ?? []
        for connection in gone { forget(connection) }
        links[link] = Link(session: session)
        return gone
    }

    /// The link dropped: nothing goes down it, and its clients stay until the grace ends.
    public mutating func closed(_ link: LinkID, now: Timestamp) {
        guard links[link]?.isUp == true else { return }
        let ends = now + grace
        links[link]?.isUp = false
        links[link]?.graceEndsAt = ends
    }

    /// An edge client joined (or is announced again after a re-link). A media-only client
    /// (`mediaOnly`) gets no `stream_state`, so no `welcome` is made from one.
    public mutating func join(_ link: LinkID, _ number: EdgeClient, fresh: ConnectionID, mediaOnly: Bool = false) -> Admission {
        guard links[link]?.isUp == true else { return .ignored }
        if links[link]?.clients[number] != nil { return .held(.welcome(number)) }
        links[link]?.clients[number] = fresh
        owners[fresh] = Owner(link: link, number: number)
        if !mediaOnly { awaitingWelcome.insert(fresh) }
        return .join(fresh)
    }

    /// The engine's connection of an edge client, if it holds it.
    public func connection(_ link: LinkID, _ number: EdgeClient) -> ConnectionID? {
        links[link]?.clients[number]
    }

    /// The link's clients and their connections, by number.
    public func clients(of link: LinkID) -> [(number: EdgeClient, connection: ConnectionID)] {
        (links[link]?.clients ?? [:]).sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    /// Some client of the link (to stand for the edge in a keyframe request).
    public func anyClient(of link: LinkID) -> ConnectionID? {
        links[link]?.clients.values.min()
    }

    /// An edge client left: forgets it and returns its connection (feed `.disconnected`).
    public mutating func leave(_ link: LinkID, _ number: EdgeClient) -> ConnectionID? {
        guard let connection = links[link]?.clients[number] else { return nil }
        forget(connection)
        return connection
    }

    /// Links whose grace ended are forgotten; returns their clients (feed `.disconnected` for each).
    public mutating func expire(now: Timestamp) -> [ConnectionID] {
        var gone: [ConnectionID] = []
        for (id, link) in links.sorted(by: { $0.key < $1.key }) {
            guard let ends = link.graceEndsAt, ends <= now else { continue }
            gone.append(contentsOf: link.clients.values.sorted())
            links[id] = nil
        }
        for connection in gone { forget(connection) }
        return gone
    }

    /// When `expire` has something to do.
    public var nextWakeUp: Timestamp? {
        links.values.compactMap(\.graceEndsAt).min()
    }

    /// What of one engine output goes down which link, in order.
    public mutating func route(_ output: LiveEvent.Output) -> [(LinkID, Down)] {
        guard !links.isEmpty else { return [] }
        switch output {
        case .send(let message, let route):
            return send(message, to: route.sockets)
        case .forward(let frame, let route):
            return forward(frame, to: route.sockets)
        case .close(let connection, let code):
            guard let owner = forget(connection), links[owner.link]?.isUp == true else { return [] }
            if ending != nil {
                ending = code
                return []
            }
            return [(owner.link, .close(owner.number, code))]
        case .ended:
            let downs = upLinks.map { ($0, Down.ended(ending ?? .normal)) }
            links.removeAll()
            owners.removeAll()
            awaitingWelcome.removeAll()
            justWelcomed.removeAll()
            return downs
        case .mixSubscriber(let connection, let minus):
            guard let owner = owners[connection], links[owner.link]?.isUp == true else { return [] }
            return [(owner.link, .mixSubscriber(owner.number, minus: minus))]
        case .mixUnsubscriber(let connection):
            guard let owner = owners[connection], links[owner.link]?.isUp == true else { return [] }
            return [(owner.link, .mixUnsubscriber(owner.number))]
        case .handedOver:
            // The links close without an end: the edges keep their clients and find the next origin.
            links.removeAll()
            owners.removeAll()
            awaitingWelcome.removeAll()
            justWelcomed.removeAll()
            return []
        case .sessionsDropSource(let source):
            // For the edges' per-speaker players (rare: a speaker stopping).
            return upLinks.filter { links[$0]?.clients.isEmpty == false }.map { ($0, .sessionsDropSource(source)) }
        case .persist, .awaitPersistence, .encodePCM, .mediaDropped, .mixDropSource, .recordingStart, .recordingStop:
            return []
        }
    }

    private mutating func send(_ message: LiveEvent.Message, to audience: LiveEvent.Audience) -> [(LinkID, Down)] {
        switch audience {
        case .none:
            return []
        case .all:
            if message.type == .streamEnded || message.type == .serverShutdown { ending = .normal }
            return upLinks.map { ($0, .message(message, to: .all)) }
        case .allExcept(let sender, _):
            let owner = owners[sender]
            return upLinks.map { link in
                if let owner, owner.link == link { return (link, .message(message, to: .allExcept(owner.number))) }
                return (link, .message(message, to: .all))
            }
        case .one(let connection):
            return personal(message, to: connection)
        case .only(let connections):
            return connections.flatMap { personal(message, to: $0) }
        }
    }

    private mutating func personal(_ message: LiveEvent.Message, to connection: ConnectionID) -> [(LinkID, Down)] {
        guard let owner = owners[connection], links[owner.link]?.isUp == true else { return [] }
        if awaitingWelcome.contains(connection), message.type == .streamState {
            awaitingWelcome.remove(connection)
            justWelcomed.insert(connection)
            return [(owner.link, .welcome(owner.number))]
        }
        if justWelcomed.remove(connection) != nil, message.type == .chatHistory {
            return []
        }
        return [(owner.link, .message(message, to: .one(owner.number)))]
    }

    private func forward(_ frame: MediaFrame, to audience: LiveEvent.Audience) -> [(LinkID, Down)] {
        let isScreen = frame.header.kind == .screen
        switch audience {
        case .none, .one, .only:
            // A joiner's catch-up: its edge replays the GOP it keeps.
            return []
        case .all:
            return upLinks.filter { isScreen || links[$0]?.clients.isEmpty == false }.map { ($0, .media(frame)) }
        case .allExcept(let sender, let skipping):
            return upLinks.filter { link in
                isScreen || links[link]?.clients.values.contains { $0 != sender && !skipping.contains($0) } == true
            }.map { ($0, .media(frame)) }
        }
    }

    @discardableResult
    private mutating func forget(_ connection: ConnectionID) -> Owner? {
        guard let owner = owners.removeValue(forKey: connection) else { return nil }
        links[owner.link]?.clients[owner.number] = nil
        awaitingWelcome.remove(connection)
        justWelcomed.remove(connection)
        return owner
    }
}
