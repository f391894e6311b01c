extension PostgresEventStore: RoomStore {
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
