import AirwaveProtocol

/// One live event as an edge node serves it (PROTOCOL.md 8): the node's own clients of an event
/// whose origin is another node, fed through one link to that origin.
///
/// The origin's engine is the one authority: admission (duplicate and replaced users), roles,
/// invites, gates, mutes and the order of everything. The edge decides none of it. It forwards
/// its clients' joins, leaves, commands and media up the link and delivers what comes down, and
/// it keeps what a late local joiner needs so that the origin sends each frame and notice once
/// per edge, not once per client:
///
/// - **Media-only clients** (WHEP and `GET /listen/` players): joined up the link like the
///   origin's own (`mediaListenerJoined`), counted and listed there; the origin answers with no
///   `welcome` (they have no control channel), so they are members once announced. They get the
///   origin's mix packets (`mixPacket`, one encoding for every node), a speaker's own audio
///   (per-speaker players) and VP8 screen frames through the edge's screen pipeline.
/// - **Replay to a joiner** (on the origin's `welcome`): the latest `stream_state`, the
///   `chat_history` (the last `chatHistoryLimit` broadcasts) and, in screen mode, the cached
///   config frame and GOP from the last keyframe (bounded like the origin's, 4 MiB; past the
///   bound, or with no GOP, the joiner waits for the next keyframe, asked for up the link).
///   `participant_list` and `participant_count` are not replayed: the origin's coalesced ones
///   for the join reach every member, the joiner included, as on one node.
/// - **Link down**: local clients stay connected. Commands wait in an `EdgeCommandBuffer`
///   (bounded; beyond it the sender gets `rate_limited`); media is dropped (it would be stale).
///   The link is reopened at once, then after `relinkDelays`.
/// - **No origin** (`noOrigin`: no live node holds the event, its origin died): the edge keeps
///   trying, and its clients stay, while the host may resume the event on another node. After
///   `orphanTimeout` without an origin the event is over for the edge's clients as on one node
///   when the host does not come back: `stream_ended`, then 1000.
/// - **Link up again** (a `snapshot`): the members get what changed while it was down, once for
///   all — `stream_state` if it differs, each missed chat message as `message_broadcast`, the
///   current `participant_list` and `participant_count` — then the edge announces leaves, joins
///   (every client, in join order) and the buffered commands, in that order.
///
/// Sans-IO like `LiveEvent`: `handle(_:now:)` in, `pollOutput()` out, `nextWakeUp` for ticks.
public struct EdgeEvent: Sendable {
    /// A client of this edge.
    struct Client: Sendable {
        var user: UserIdentity
        /// Its number on the link.
        var number: EdgeLinkMessage.EdgeClient
        /// The origin welcomed it: it is a member (`.all` reaches it).
        var admitted = false
        /// The origin was told of its join (on this link or an earlier one).
        var announced = false
        /// It asked for the mix (`?audio=mixed`).
        var wantsMix = false
        /// A media-only client (WHEP or `GET /listen/`), nil for a WebSocket.
        var mediaOnly: MediaOnly?
    }

    /// What a media-only client takes, as its join said.
    struct MediaOnly: Sendable, Hashable {
        /// Its answer took VP8: screen frames reach it while the screen is VP8.
        var video: Bool
        /// One track per speaker (`?audio=speakers`) instead of the mix.
        var speakers: Bool
        /// The HLS segmenter: the full mix, and no participant.
        var segmenter = false
    }

    /// The state of the link to the origin.
    enum LinkState: Sendable, Hashable {
        /// Opening (an `openLink` is out); the `snapshot` says it is up.
        case connecting
        case up
        /// Down; the next `openLink` goes out at this time.
        case waiting(until: Timestamp)
    }

    /// How the edge's part ended.
    enum Finish: Sendable, Hashable {
        /// The origin ended the event.
        case ended
        /// This node is shutting down.
        case shutdown
        /// No client was left for `idleLinger`.
        case idle
    }

    public let eventID: String
    public let configuration: EdgeConfiguration

    var clients: [ConnectionID: Client] = [:]
    var connectionByNumber: [EdgeLinkMessage.EdgeClient: ConnectionID] = [:]
    var nextNumber: EdgeLinkMessage.EdgeClient = 1
    /// Members by user id, to keep a speaker's own audio from it.
    var memberByUser: [String: ConnectionID] = [:]
    var link: LinkState = .connecting
    /// Failed attempts since the link was last up (indexes `relinkDelays`).
    var relinkAttempts = 0
    var buffer: EdgeCommandBuffer
    /// Announced clients that left while the link was down: their leave goes up on re-link.
    var leftWhileDown: [EdgeLinkMessage.EdgeClient] = []
    /// The origin's `stream_state` as of the last message down; nil before the first snapshot.
    var streamState: JSONValue?
    /// The entries of `chat_history`, oldest first, bounded by `chatHistoryLimit`.
    var chat: [JSONValue] = []
    /// Whose voice each source id is (from `cohost_joined` and `participant_list`): source ids
    /// stay with a user for the whole event.
    var sourceOwners: [UInt32: String] = [:]
    /// What each mixed member hears, as the origin said (`mixSubscriber`): the mix without this
    /// source, or the full mix (nil). Mixed members get no speaker's own stream.
    var mixOf: [ConnectionID: UInt32?] = [:] {
        // Kept with every change (rare), so no audio frame regroups them.
        didSet {
            mixedMembers = Set(mixOf.keys)
            everyoneButMixed = Self.allBut(mixedMembers)
            let sockets = mixOf.keys.filter { clients[$0]?.mediaOnly == nil }.sorted()
            mixRecipients = Dictionary(grouping: sockets, by: { mixOf[$0]! })
            mixSessionOutputs = Set(mixOf.filter { clients[$0.key]?.mediaOnly != nil }.values)
        }
    }
    /// The members in `mixOf`: they get no speaker's own stream.
    var mixedMembers: Set<ConnectionID> = []
    /// The audience of a speaker's stream whose speaker is not here: every member but the mixed.
    var everyoneButMixed: LiveEvent.Audience = .all
    /// The WebSocket members of each mix output (by the source it leaves out; nil: the full mix), ascending.
    var mixRecipients: [UInt32?: [ConnectionID]] = [:]
    /// The mix outputs some media-only client hears (`mixPacket` goes out for these).
    var mixSessionOutputs: Set<UInt32?> = []
    /// Media-only clients that take screen frames.
    var videoSessions: Set<ConnectionID> = []
    /// Per-speaker players (`?audio=speakers`); `speakerSessionRoutes` keeps each source's
    /// audience until they or the speakers change.
    var speakerSessions: Set<ConnectionID> = [] {
        didSet { speakerSessionRoutes.removeAll() }
    }
    var speakerSessionRoutes: [UInt32: LiveEvent.Audience] = [:]
    var screenPipeline: ScreenPipeline
    var keyframeGate: IntervalGate
    /// Since when no client is connected.
    var idleSince: Timestamp?
    /// Since when no live node is the event's origin (`noOrigin`); nil while there is one.
    var orphanedSince: Timestamp?
    var finished: Finish?
    var outputs = OutputQueue<Output>()

    /// The edge starts with its link opening (`openLink` is its first output); the first join
    /// follows at once.
    public init(eventID: String, now: Timestamp, configuration: EdgeConfiguration = .init()) {
        self.eventID = eventID
        self.configuration = configuration
        buffer = EdgeCommandBuffer(limit: configuration.commandBufferLimit, perClientLimit: configuration.perClientCommandLimit)
        screenPipeline = ScreenPipeline(cacheLimit: configuration.screenCacheLimit)
        keyframeGate = IntervalGate(interval: configuration.keyframeRequestInterval)
        idleSince = now
        emit(.openLink)
    }

    /// Everything that can happen to an edge's event.
    public enum Input: Sendable, Hashable {
        /// A client connected here with this identity (token checked by the transport).
        case join(ConnectionID, UserIdentity)
        /// A media-only client connected here: a WHEP player (`video`: its answer took VP8;
        /// `speakers`: one track per speaker) or a `GET /listen/` player (the origin's input of
        /// the same name).
        case mediaListenerJoined(ConnectionID, UserIdentity, video: Bool, speakers: Bool)
        /// The first `GET /hls/` of the event here started the edge's HLS segmenter under this id:
        /// it takes the full mix like the origin's (`segmenterSubscription`), counted nowhere.
        case segmenterSubscription(ConnectionID)
        /// A client's socket closed, for any reason.
        case disconnected(ConnectionID)
        /// The client asked for the event's mix (`?audio=mixed`); fed right after its join.
        case mixSubscription(ConnectionID)
        /// A validated text message of a client.
        case command(ConnectionID, LiveCommand)
        /// A media frame of a client (header parsed, Opus validated by the transport).
        case media(ConnectionID, MediaFrame)
        /// A message from the origin; `.snapshot` means the link is up.
        case fromOrigin(EdgeLinkMessage.Down)
        /// The link broke, or opening it failed.
        case linkDown
        /// Opening the link found no live node that is the event's origin (it died; the host may
        /// resume the event elsewhere). Counts as `linkDown` too.
        case noOrigin
        /// Time passed.
        case tick
        /// This node is going away: `server_shutdown`, 1001 for every client, the link closed.
        case shutdown
    }

    /// What the driver must do, in order.
    public enum Output: Sendable, Hashable {
        /// Encode once and send to the route's local recipients (`.all`: the members).
        case send(LiveEvent.Message, LiveEvent.Route)
        /// Write this media frame, one buffer for all its recipients: WebSockets (`sockets`),
        /// media-only players (`sessions`: a speaker's audio for per-speaker players, VP8 screen).
        case forward(MediaFrame, LiveEvent.Route)
        /// One packet of the origin's mix output (without `minus`; nil: the full mix), source id
        /// 0, for the media-only clients subscribed to that output.
        case mixPacket(MediaFrame, minus: UInt32?)
        /// The media-only client hears the mix without `minus` from now (nil: the full mix).
        case mixSubscriber(ConnectionID, minus: UInt32?)
        /// The media-only client no longer hears the mix.
        case mixUnsubscriber(ConnectionID)
        /// The speaker's audio stopped: per-speaker players free its track.
        case sessionsDropSource(UInt32)
        /// The connection is now a member: `.all` reaches it from here on.
        case admit(ConnectionID)
        /// Close the connection with this code (any error frame was sent just before); it is
        /// no member any more.
        case close(ConnectionID, CloseCode)
        /// Send this up the link (it is up when the edge says so).
        case uplink(EdgeLinkMessage.Up)
        /// Open the link to the origin (the first time, or again after `linkDown`).
        case openLink
        /// Close the link; nothing more goes up.
        case closeLink
        /// A media frame went nowhere (for the counters).
        case mediaDropped(MediaDropReason)
        /// The event ended without an origin to say so (`orphanTimeout`): record its end
        /// (`host_timeout`), as the origin would have.
        case recordOrphanedEnd
        /// The edge is done; the driver forgets it and feeds it nothing more.
        case finished
    }

    /// Why a media frame was not forwarded.
    public enum MediaDropReason: String, Sendable, Hashable {
        /// A client's frame while the link is down: stale by the time it could go up.
        case linkDown = "link_down"
        /// A screen frame from the origin outside screen mode.
        case inactivePipeline = "inactive_pipeline"
    }

    /// Feeds one input at time `now`.
    public mutating func handle(_ input: Input, now: Timestamp) {
        if let finished {
            return rejectAfterFinish(input, finished)
        }
        switch input {
        case .join(let connection, let user): join(connection, user: user, now: now)
        case .mediaListenerJoined(let connection, let user, let video, let speakers):
            join(connection, user: user, mediaOnly: MediaOnly(video: video, speakers: speakers), now: now)
        case .segmenterSubscription(let connection):
            join(connection, user: UserIdentity(userID: "", username: "", verified: false),
                 mediaOnly: MediaOnly(video: false, speakers: false, segmenter: true), now: now)
        case .disconnected(let connection): disconnected(connection, now: now)
        case .mixSubscription(let connection): subscribeToMix(connection)
        case .command(let connection, let command): clientCommand(command, from: connection)
        case .media(let connection, let frame): clientMedia(frame, from: connection)
        case .fromOrigin(let message): fromOrigin(message, now: now)
        case .linkDown: linkDown(now: now)
        case .noOrigin:
            if orphanedSince == nil { orphanedSince = now }
            linkDown(now: now)
        case .tick: tick(now: now)
        case .shutdown: shutdown()
        }
    }

    /// The next thing to do, or nil when everything has been handed out.
    public mutating func pollOutput() -> Output? { outputs.poll() }

    /// When the edge wants a `.tick`: the next attempt to open the link, or the end of the idle linger.
    public var nextWakeUp: Timestamp? {
        guard finished == nil else { return nil }
        var candidates: [Timestamp] = []
        if case .waiting(let until) = link { candidates.append(until) }
        if let idleSince { candidates.append(idleSince + configuration.idleLinger) }
        if let orphanedSince { candidates.append(orphanedSince + configuration.orphanTimeout) }
        return candidates.min()
    }

    /// Clients connected here (members and those the origin has not answered yet).
    public var clientCount: Int { clients.count }

    /// True while the link to the origin is up.
    public var isLinked: Bool { link == .up }

    mutating func emit(_ output: Output) {
        outputs.append(output)
    }

    /// A control message to local connections.
    mutating func send(_ message: LiveEvent.Message, to sockets: LiveEvent.Audience) {
        emit(.send(message, .control(sockets)))
    }

    /// Sends the error and closes with its close code.
    mutating func refuse(_ connection: ConnectionID, _ error: ProtocolError) {
        send(LiveEvent.Message(error), to: .one(connection))
        emit(.close(connection, error.code.closeCode ?? .normal))
    }

    private mutating func rejectAfterFinish(_ input: Input, _ finish: Finish) {
        let connection: ConnectionID
        switch input {
        case .join(let id, _), .mediaListenerJoined(let id, _, _, _), .segmenterSubscription(let id): connection = id
        default: return
        }
        switch finish {
        case .ended: refuse(connection, ProtocolError(.eventEnded, "This event has ended."))
        case .shutdown: refuse(connection, ProtocolError(.serverShuttingDown, "The server is shutting down."))
        // Raced with the idle end: the client tries again and reaches a new edge.
        case .idle: refuse(connection, ProtocolError(.serverBusy, "Try again."))
        }
    }

    mutating func tick(now: Timestamp) {
        if let orphanedSince, orphanedSince + configuration.orphanTimeout <= now {
            // As the origin ends an event whose host did not come back.
            send(LiveEvent.Message(.streamEnded, LiveServerMessage.streamEnded(eventID: eventID, message: "The host disconnected and did not come back")),
                 to: .all)
            emit(.recordOrphanedEnd)
            return ended(.normal)
        }
        if case .waiting(let until) = link, until <= now {
            link = .connecting
            emit(.openLink)
        }
        if let idleSince, idleSince + configuration.idleLinger <= now {
            emit(.closeLink)
            finish(.idle)
        }
    }

    mutating func shutdown() {
        send(LiveEvent.Message(.serverShutdown, LiveServerMessage.serverShutdown), to: .all)
        let leaving = clients.sorted { $0.value.number < $1.value.number }
        for (connection, _) in leaving {
            emit(.close(connection, .goingAway))
        }
        if link == .up {
            // The origin counts them out now rather than when the link's loss is noticed.
            for (_, client) in leaving where client.announced {
                emit(.uplink(.leave(client.number)))
            }
        }
        emit(.closeLink)
        finish(.shutdown)
    }

    mutating func finish(_ finish: Finish) {
        clients.removeAll()
        connectionByNumber.removeAll()
        memberByUser.removeAll()
        mixOf.removeAll()
        videoSessions.removeAll()
        speakerSessions.removeAll()
        _ = buffer.drain()
        leftWhileDown.removeAll()
        idleSince = nil
        orphanedSince = nil
        finished = finish
        emit(.finished)
    }
}

/// Tunables of an edge's event; the defaults follow PROTOCOL.md and the origin's.
public struct EdgeConfiguration: Sendable, Hashable {
    /// Most commands waiting for the link in all (`EdgeCommandBuffer`).
    public var commandBufferLimit: Int = 256
    /// Most commands waiting for the link from one client.
    public var perClientCommandLimit: Int = 16
    /// Chat messages replayed to a joiner (the origin's `chatHistoryLimit`).
    public var chatHistoryLimit: Int = 100
    /// Largest screen GOP cache replayed to a late joiner (PROTOCOL.md 2.4: 4 MiB).
    public var screenCacheLimit: Int = 4 * 1024 * 1024
    /// At most one keyframe request up the link per this interval.
    public var keyframeRequestInterval: Duration = .seconds(1)
    /// Delays before each attempt to open the link again after it went down; the last one
    /// repeats. The first is zero: a broken link is reopened at once (issue 16: within 1 s).
    public var relinkDelays: [Duration] = [.zero, .milliseconds(250), .milliseconds(500), .seconds(1)]
    /// How long the link stays open after the last client left, for a client that comes back.
    public var idleLinger: Duration = .seconds(5)
    /// How long the edge waits for a new origin once none is live: the host's grace period
    /// (counted from when the dead origin dropped out, so later than any resume could come).
    public var orphanTimeout: Duration = .seconds(30)

    public init() {}
}
