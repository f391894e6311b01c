/// A node of a cluster as its heartbeat row says (PROTOCOL.md 8, `GET /api/cluster`).
public struct NodeRecord: Sendable, Hashable {
    public var nodeID: String
    /// The base URL the other nodes reach it at (`--node-url`).
    public var url: String
    public var startedAt: EpochMillis
    /// When its last heartbeat was written, by its own clock.
    public var lastSeen: EpochMillis
    /// Events it is the origin of.
    public var events: Int
    /// Its open client connections.
    public var connections: Int

    public init(nodeID: String, url: String, startedAt: EpochMillis, lastSeen: EpochMillis, events: Int, connections: Int) {
        self.nodeID = nodeID
        self.url = url
        self.startedAt = startedAt
        self.lastSeen = lastSeen
        self.events = events
        self.connections = connections
    }
}

/// One live event's directory entry and its origin (the node its host is connected to): the row
/// that says which node owns the event, and what `active_streams` shows of it on every node.
public struct OriginRecord: Sendable, Hashable {
    public var eventID: String
    /// The origin node.
    public var nodeID: String
    public var hostUserID: String
    public var hostUsername: String
    public var mode: String
    /// Participants without the host, as `total_participants` shows it.
    public var participantCount: Int
    public var startedAt: EpochMillis

    public init(eventID: String, nodeID: String, hostUserID: String, hostUsername: String, mode: String,
                participantCount: Int, startedAt: EpochMillis) {
        self.eventID = eventID
        self.nodeID = nodeID
        self.hostUserID = hostUserID
        self.hostUsername = hostUsername
        self.mode = mode
        self.participantCount = participantCount
        self.startedAt = startedAt
    }
}

/// How an event's origin node left it: its last heartbeat (nil once its row is gone) and, when
/// it stopped cleanly, when it handed the event over.
public struct OriginDeparture: Sendable, Hashable {
    public var lastSeen: EpochMillis?
    public var handedOverAt: EpochMillis?
    /// When its origin row was ended: the event is over (its origin ended it, or a node
    /// starting ended what a gone node left), whatever its `events` row says yet.
    public var endedAt: EpochMillis?

    public init(lastSeen: EpochMillis?, handedOverAt: EpochMillis?, endedAt: EpochMillis? = nil) {
        self.lastSeen = lastSeen
        self.handedOverAt = handedOverAt
        self.endedAt = endedAt
    }
}

/// What the nodes sharing one database keep there (PROTOCOL.md 8): their heartbeats, and the
/// origin row of every live event, which is also its directory entry. A node's rows count only
/// while its heartbeat is fresh: a node that stops writing drops out, and so do its events.
public protocol ClusterStore: Sendable {
    /// Writes the node's heartbeat row (inserted on the first call), and deletes the rows of
    /// nodes silent for a day by its clock, with their origin rows.
    func heartbeat(_ node: NodeRecord) async throws

    /// Nodes whose last heartbeat is at `seenSince` or later, by node id.
    func liveNodes(seenSince: EpochMillis) async throws -> [NodeRecord]

    /// Removes a node's heartbeat row and ends its events' origin rows (a clean shutdown), but
    /// not those of events still live: handed over, another node may resume them.
    func removeNode(_ nodeID: String, at: EpochMillis) async throws

    /// Writes origin rows (inserted or replaced), then ends those of `removed` owned by `nodeID`,
    /// in one transaction. An ended row stays: it says which node an event ran on.
    func publishOrigins(_ origins: [OriginRecord], removed: [String], nodeID: String, at: EpochMillis) async throws

    /// The origin rows of live events whose node's heartbeat is at `seenSince` or later.
    func liveOrigins(seenSince: EpochMillis) async throws -> [OriginRecord]

    /// The origin node of a live event, if its heartbeat is at `seenSince` or later.
    func origin(of eventID: String, seenSince: EpochMillis) async throws -> NodeRecord?

    /// The live event a host runs on a live node (its heartbeat at `seenSince` or later), if any.
    func liveOrigin(hostUserID: String, seenSince: EpochMillis) async throws -> OriginRecord?

    /// The host's event whose origin died or stopped (PROTOCOL.md 8 failover): not ended, its
    /// origin row on a node whose heartbeat is older than `seenSince` (or gone); with how that
    /// node left it.
    func interruptedOrigin(hostUserID: String, seenSince: EpochMillis) async throws -> (origin: OriginRecord, departure: OriginDeparture)?

    /// How the origin node of a live event left it (nil for an event without an origin row).
    func originDeparture(of eventID: String) async throws -> OriginDeparture?

    /// The node an event ran (or runs) on, live or ended, with that node's row if it has one
    /// (nil: gone for a day); nil if no node published the event (a single server's).
    func originNode(of eventID: String) async throws -> (nodeID: String, node: NodeRecord?)?

    /// Ends events left live by a node that is gone: every live event except those whose origin
    /// is one of `sparing` (live nodes other than the caller). Returns how many.
    func endInterruptedEvents(reason: String, at: EpochMillis, sparing: Set<String>) async throws -> Int

    /// Tells every node listening on `channel` (PostgreSQL `NOTIFY`; nothing on SQLite, whose
    /// one process has nobody to tell).
    func notify(channel: String, payload: String) async throws
}
