import AirwaveProtocol
import AirwaveStore
import Logging
import NIOConcurrencyHelpers

/// This server as one node of several on a shared PostgreSQL database (PROTOCOL.md 8): writes
/// its heartbeat, publishes its events' origin rows (the directory entries the other nodes
/// show), and follows the other nodes' notifications: directory changes and listening-room
/// changes. Everything shared lives in the database; this type only keeps it moving.
actor ClusterNode {
    /// Who this node is, as the other nodes see it.
    struct Identity: Sendable {
        let nodeID: String
        let url: String
        let startedAt: Timestamp
    }

    /// Notification channels.
    enum Channel {
        /// A node published its origin rows; the payload is its id.
        static let directory = "airwave_directory"
        /// A listening room stored changes; the payload is the room's (see `ListeningRoomRegistry`).
        static let rooms = "airwave_rooms"
    }

    let identity: Identity
    let settings: ClusterSettings
    private let store: any ClusterStore
    private let listener: PostgresNotificationListener
    private let directory: ActiveStreamsDirectory
    private let logger: Logger
    /// This node's live events and open connections, for its heartbeat row.
    private let counts: @Sendable () async -> (events: Int, connections: Int)
    /// Room notifications, handed to the listening rooms.
    let roomNotifications: AsyncStream<String>
    private let roomContinuation: AsyncStream<String>.Continuation
    /// Written by the directory's callback in the order of the changes (a lock, not a task per
    /// change: tasks could run an event's end before its last update and publish a ghost).
    private nonisolated let publication: NIOLockedValueBox<OriginPublication>
    private let (publishWakeUps, publishWake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    private let (reloadWakeUps, reloadWake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))

    init(identity: Identity, settings: ClusterSettings, store: any ClusterStore, listener: PostgresNotificationListener,
         directory: ActiveStreamsDirectory, logger: Logger, counts: @escaping @Sendable () async -> (events: Int, connections: Int)) {
        self.identity = identity
        self.settings = settings
        self.store = store
        self.listener = listener
        self.directory = directory
        self.logger = logger
        self.counts = counts
        publication = NIOLockedValueBox(OriginPublication(nodeID: identity.nodeID))
        (roomNotifications, roomContinuation) = AsyncStream.makeStream(of: String.self, bufferingPolicy: .bufferingNewest(4096))
    }

    /// Nodes whose heartbeat is older than this are gone.
    private func liveSince(_ now: Timestamp = .now()) -> EpochMillis {
        now.milliseconds - Int64(settings.nodeTimeout / .milliseconds(1))
    }

    /// The live nodes, this one included once its first heartbeat is written.
    func liveNodes() async throws -> [NodeRecord] {
        try await store.liveNodes(seenSince: liveSince())
    }

    /// The node a live event's host is connected to, if that node is live.
    func origin(of eventID: String) async throws -> NodeRecord? {
        try await store.origin(of: eventID, seenSince: liveSince())
    }

    /// The origin row of a live event (with its directory entry), nil when no live node holds it.
    func liveOriginRecord(of eventID: String) async throws -> OriginRecord? {
        try await store.liveOrigins(seenSince: liveSince()).first { $0.eventID == eventID }
    }

    /// The error for a host going live here while its event is live on another node: a host
    /// has one live event (PROTOCOL.md 2.1); until failover moves events, it goes back there.
    func hostElsewhere(_ hostUserID: String) async throws -> ProtocolError? {
        guard let origin = try await store.liveOrigin(hostUserID: hostUserID, seenSince: liveSince()),
              origin.nodeID != identity.nodeID,
              let node = try await store.origin(of: origin.eventID, seenSince: liveSince())
        else { return nil }
        return ProtocolError(.serverBusy, "Your event \(origin.eventID) is live on node \(node.nodeID); connect to \(node.url).",
                             details: ["reason": "other_node", "event_id": .string(origin.eventID),
                                       "origin_node": .string(node.nodeID), "origin_url": .string(node.url)])
    }

    /// The node an event ran or runs on (its recordings are there), nil for this node's own or
    /// an event no node published; `live` says whether that node beats.
    func holder(of eventID: String) async throws -> (nodeID: String, url: String?, live: Bool)? {
        guard let (nodeID, node) = try await store.originNode(of: eventID), nodeID != identity.nodeID else { return nil }
        return (nodeID, node?.url, (node?.lastSeen ?? 0) >= liveSince())
    }

    /// Live nodes other than this one: their events are spared when this node starts.
    func otherLiveNodeIDs() async throws -> Set<String> {
        Set(try await liveNodes().map(\.nodeID)).subtracting([identity.nodeID])
    }

    /// Writes the first heartbeat, so that the node is listed as soon as it serves.
    func register() async throws {
        try await heartbeat()
    }

    /// Runs until cancelled: heartbeat, publications, notifications.
    func run() async {
        await directory.publishLocalChanges { [publication, publishWake] eventID, summary in
            publication.withLockedValue { $0.changed(eventID, summary) }
            publishWake.yield()
        }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.listener.run() }
            group.addTask { await self.followNotifications() }
            group.addTask { await self.heartbeats() }
            group.addTask { await self.publications() }
            group.addTask { await self.reloads() }
            await group.next()
            group.cancelAll()
        }
        roomContinuation.finish()
    }

    /// Stops being a node: the heartbeat and origin rows go at once, so the others drop this
    /// node without waiting for the timeout.
    /// Waits at most ``leavePatience``: with the database down, shutdown must still end within
    /// PROTOCOL.md's 10 s (the others then drop this node when its heartbeat ages out).
    func leave() async {
        let (store, identity, logger) = (self.store, self.identity, self.logger)
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                do {
                    try await store.removeNode(identity.nodeID, at: Timestamp.now().milliseconds)
                    try await store.notify(channel: Channel.directory, payload: identity.nodeID)
                } catch {
                    logger.warning("could not remove this node from the cluster table", metadata: ["error": "\(String(reflecting: error))"])
                }
            }
            group.addTask { try? await Task.sleep(for: Self.leavePatience) }
            await group.next()
            group.cancelAll()
        }
    }

    /// Writes a new (or resumed) event's origin row at once, before its host hears `stream_link`:
    /// from then on every node finds the event, so a join anywhere with the id the host hands out
    /// never meets a node that does not know it yet. Waits at most ``claimPatience``; the regular
    /// publication writes the row anyway.
    nonisolated func claim(_ eventID: String, _ summary: LiveServerMessage.StreamSummary) async {
        let record = publication.withLockedValue { $0.record(eventID, summary) }
        let (store, identity, logger) = (self.store, self.identity, self.logger)
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                do {
                    try await store.publishOrigins([record], removed: [], nodeID: identity.nodeID, at: Timestamp.now().milliseconds)
                    try await store.notify(channel: Channel.directory, payload: identity.nodeID)
                } catch {
                    logger.warning("cannot write a new event's origin row; it follows with the next publication",
                                   metadata: ["event_id": "\(eventID)", "error": "\(String(reflecting: error))"])
                }
            }
            group.addTask { try? await Task.sleep(for: Self.claimPatience) }
            await group.next()
            group.cancelAll()
        }
    }

    /// How long a host going live waits for its event's origin row.
    static let claimPatience: Duration = .seconds(2)

    /// How long a stopping node tries to remove its rows.
    static let leavePatience: Duration = .seconds(2)

    private func heartbeat() async throws {
        let (events, connections) = await counts()
        try await store.heartbeat(NodeRecord(
            nodeID: identity.nodeID, url: identity.url, startedAt: identity.startedAt.milliseconds,
            lastSeen: Timestamp.now().milliseconds, events: events, connections: connections))
    }

    /// A heartbeat per interval; each also re-reads the directory, which drops the events of
    /// nodes that stopped beating.
    private func heartbeats() async {
        while !Task.isCancelled {
            do {
                try await heartbeat()
            } catch {
                logger.warning("cannot write this node's heartbeat", metadata: ["error": "\(String(reflecting: error))"])
            }
            reloadWake.yield()
            try? await Task.sleep(for: settings.heartbeatInterval)
        }
    }

    /// Writes pending origin rows, at most once per `publishInterval`, then tells the others.
    private func publications() async {
        for await _ in publishWakeUps {
            while !publication.withLockedValue({ $0.isEmpty }) && !Task.isCancelled {
                let (origins, removed) = publication.withLockedValue { $0.take() }
                do {
                    try await store.publishOrigins(origins, removed: removed, nodeID: identity.nodeID, at: Timestamp.now().milliseconds)
                    try await store.notify(channel: Channel.directory, payload: identity.nodeID)
                } catch {
                    publication.withLockedValue { $0.restore(origins: origins, removed: removed) }
                    logger.warning("cannot publish this node's events; retrying", metadata: ["error": "\(String(reflecting: error))"])
                }
                try? await Task.sleep(for: settings.publishInterval)
            }
        }
    }

    /// Re-reads the other nodes' events whenever one of them published (coalesced: one read
    /// at a time, one more if anything arrived meanwhile).
    private func reloads() async {
        for await _ in reloadWakeUps {
            do {
                let origins = try await store.liveOrigins(seenSince: liveSince())
                await directory.replaceRemote(origins.filter { $0.nodeID != identity.nodeID }.map(\.summary))
            } catch {
                logger.debug("cannot read the other nodes' events", metadata: ["error": "\(String(reflecting: error))"])
            }
        }
    }

    private func followNotifications() async {
        for await notification in listener.notifications {
            switch notification {
            case .message(Channel.directory, let nodeID):
                if nodeID != identity.nodeID { reloadWake.yield() }
            case .message(Channel.rooms, let payload):
                roomContinuation.yield(payload)
            case .message:
                break
            case .listening:
                // Notifications may have been missed while not listening: read everything again.
                reloadWake.yield()
                roomContinuation.yield(ClusterNode.everyRoom)
            }
        }
    }

    /// The room payload that means "re-read every room you follow" (after a reconnection).
    static let everyRoom = "*"
}
