/// A store that is a ``SQLEventStore`` on a database of its own (SQLite's one connection,
/// PostgreSQL's pool): every ``EventStore`` and ``RoomStore`` call goes to that store. A
/// conforming type only opens the database and says how to close it (`shutdown()`).
public protocol SQLBackedStore: EventStore, RoomStore, ClusterStore {
    /// The portable store over this database.
    var store: SQLEventStore { get }
}

extension SQLBackedStore {
    // MARK: - EventStore

    /// Creates or upgrades the schema (versioned migrations table; idempotent; runs at start).
    /// Throws when the database is unreachable.
    public func migrate() async throws {
        try await store.migrate()
    }

    /// The highest schema version applied to the database; call it after ``migrate()``.
    public func schemaVersion() async throws -> Int {
        try await store.schemaVersion()
    }

    /// Writes the records in order, all in one transaction (all or nothing).
    public func write(_ records: [StoreRecord]) async throws {
        try await store.write(records)
    }

    /// The event, with every participant session or none; nil if the id never existed.
    public func event(id: String, withParticipants: Bool) async throws -> StoredEvent? {
        try await store.event(id: id, withParticipants: withParticipants)
    }

    /// One page of an event's participant sessions in join order.
    public func participants(eventID: String, after: Int64?, limit: Int) async throws -> ParticipantPage {
        try await store.participants(eventID: eventID, after: after, limit: limit)
    }

    /// Chat of an event, newest last: at most `limit` messages with id < `before`
    /// (or the newest ones if before is nil).
    public func chat(eventID: String, before: Int64?, limit: Int) async throws -> [StoredChatMessage] {
        try await store.chat(eventID: eventID, before: before, limit: limit)
    }

    /// Marks every event that is still live as ended (reason given) — used at start after a
    /// crash; returns how many.
    public func endInterruptedEvents(reason: String, at: EpochMillis) async throws -> Int {
        try await store.endInterruptedEvents(reason: reason, at: at)
    }

    /// Cheap query proving the database answers (for `/readyz`).
    public func ping() async throws {
        try await store.ping()
    }

    // MARK: - RoomStore

    /// Creates a room with a host; false if the id exists already (with or without a host).
    public func createRoom(id: String, hostUserID: String?, at: EpochMillis) async throws -> Bool {
        try await store.createRoom(id: id, hostUserID: hostUserID, at: at)
    }

    /// Creates a room with a host unless the id exists or the host's quota is used up.
    public func createRoom(id: String, hostUserID: String, at: EpochMillis, hostRoomLimit: Int) async throws -> RoomCreation {
        try await store.createRoom(id: id, hostUserID: hostUserID, at: at, hostRoomLimit: hostRoomLimit)
    }

    /// How many stored rooms have no host.
    public func guestRoomCount() async throws -> Int {
        try await store.guestRoomCount()
    }

    /// Deletes a room without a host that holds nothing; true when no row of it is left.
    public func deleteRoomIfUnused(id: String) async throws -> Bool {
        try await store.deleteRoomIfUnused(id: id)
    }

    /// Deletes up to `limit` idle rooms without a host, except those in `keeping`; returns how many.
    public func deleteIdleGuestRooms(inactiveBefore: EpochMillis, keeping: Set<String>, limit: Int) async throws -> Int {
        try await store.deleteIdleGuestRooms(inactiveBefore: inactiveBefore, keeping: keeping, limit: limit)
    }

    /// The room, or nil if it was never created or used.
    public func room(id: String) async throws -> StoredRoom? {
        try await store.room(id: id)
    }

    /// Writes the records in order in one transaction (all or nothing); see
    /// ``SQLEventStore/writeRooms(_:)``.
    public func writeRooms(_ records: [RoomRecord]) async throws {
        try await store.writeRooms(records)
    }

    /// The last `limit` chat messages of the room since it was last closed, oldest first.
    public func roomChat(roomID: String, limit: Int) async throws -> [StoredRoomChat] {
        try await store.roomChat(roomID: roomID, limit: limit)
    }
}

extension SQLBackedStore {
    // MARK: - ClusterStore

    /// Writes the node's heartbeat row.
    public func heartbeat(_ node: NodeRecord) async throws {
        try await store.heartbeat(node)
    }

    /// Nodes whose last heartbeat is at `seenSince` or later.
    public func liveNodes(seenSince: EpochMillis) async throws -> [NodeRecord] {
        try await store.liveNodes(seenSince: seenSince)
    }

    /// Removes a node's heartbeat row and ends its origin rows.
    public func removeNode(_ nodeID: String, at: EpochMillis) async throws {
        try await store.removeNode(nodeID, at: at)
    }

    /// Writes origin rows and ends the node's rows of `removed`, in one transaction.
    public func publishOrigins(_ origins: [OriginRecord], removed: [String], nodeID: String, at: EpochMillis) async throws {
        try await store.publishOrigins(origins, removed: removed, nodeID: nodeID, at: at)
    }

    /// The live event a host runs on a live node, if any.
    public func liveOrigin(hostUserID: String, seenSince: EpochMillis) async throws -> OriginRecord? {
        try await store.liveOrigin(hostUserID: hostUserID, seenSince: seenSince)
    }

    /// The node an event ran or runs on, with its row if it has one.
    public func originNode(of eventID: String) async throws -> (nodeID: String, node: NodeRecord?)? {
        try await store.originNode(of: eventID)
    }

    /// The origin rows of events whose node is live.
    public func interruptedOrigin(hostUserID: String, seenSince: EpochMillis) async throws -> (origin: OriginRecord, departure: OriginDeparture)? {
        try await store.interruptedOrigin(hostUserID: hostUserID, seenSince: seenSince)
    }

    public func originDeparture(of eventID: String) async throws -> OriginDeparture? {
        try await store.originDeparture(of: eventID)
    }

    public func liveOrigins(seenSince: EpochMillis) async throws -> [OriginRecord] {
        try await store.liveOrigins(seenSince: seenSince)
    }

    /// The live origin node of an event.
    public func origin(of eventID: String, seenSince: EpochMillis) async throws -> NodeRecord? {
        try await store.origin(of: eventID, seenSince: seenSince)
    }

    /// Ends live events except those whose origin is in `sparing`.
    public func endInterruptedEvents(reason: String, at: EpochMillis, sparing: Set<String>) async throws -> Int {
        try await store.endInterruptedEvents(reason: reason, at: at, sparing: sparing)
    }

    /// `NOTIFY` on PostgreSQL; nothing on SQLite.
    public func notify(channel: String, payload: String) async throws {
        try await store.notify(channel: channel, payload: payload)
    }
}
