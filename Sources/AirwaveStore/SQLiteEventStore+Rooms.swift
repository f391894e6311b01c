extension SQLiteEventStore: RoomStore {
    // MARK: - RoomStore

    /// Creates a room with a host; false if the id exists already (with or without a host).
    public func createRoom(id: String, hostUserID: String?, at: EpochMillis) async throws -> Bool {
        try await store.createRoom(id: id, hostUserID: hostUserID, at: at)
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
