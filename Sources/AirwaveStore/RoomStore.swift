/// Persistence for listening rooms (jukebox sessions): their owner, live state and chat.
///
/// Implementations must be safe to call from any task. ``SQLEventStore`` and
/// ``SQLiteEventStore`` implement it beside ``EventStore``, in the same database; the schema
/// comes from ``EventStore/migrate()``.
public protocol RoomStore: Sendable {
    /// Creates a room with a host; false if the id exists already (with or without a host).
    func createRoom(id: String, hostUserID: String?, at: EpochMillis) async throws -> Bool

    /// Creates a room with a host unless the id exists, or the host owns `hostRoomLimit` rooms
    /// already (counted in the same transaction as the insert).
    func createRoom(id: String, hostUserID: String, at: EpochMillis, hostRoomLimit: Int) async throws -> RoomCreation

    /// How many stored rooms have no host (rooms made by plain connections).
    func guestRoomCount() async throws -> Int

    /// Deletes a room without a host that holds nothing: no queue, current song, playback or
    /// chat since its last close. Returns true when no row of the room is left.
    func deleteRoomIfUnused(id: String) async throws -> Bool

    /// Deletes up to `limit` rooms without a host with nothing stored since `inactiveBefore`,
    /// least recently active first, except those in `keeping`; returns how many.
    func deleteIdleGuestRooms(inactiveBefore: EpochMillis, keeping: Set<String>, limit: Int) async throws -> Int

    /// The room, or nil if it was never created or used.
    func room(id: String) async throws -> StoredRoom?

    /// Writes the records in order in one transaction. A `.state` or `.chat` for a room that
    /// does not exist creates it without a host (rooms made by a plain connection).
    ///
    /// All or nothing: when this returns the records are committed; if any fails the whole
    /// batch is rolled back and the error is thrown.
    func writeRooms(_ records: [RoomRecord]) async throws

    /// The last `limit` chat messages of the room since it was last closed, oldest first.
    ///
    /// A `limit` of zero or less returns no messages.
    func roomChat(roomID: String, limit: Int) async throws -> [StoredRoomChat]

    /// The room's log after position `after` (or the room as stored, when the log cannot bring a
    /// reader at `after` up to date), read without taking the room's turn; `chatLimit` bounds the
    /// chat of a reload.
    func roomLog(id: String, after: RoomLogPosition, chatLimit: Int) async throws -> RoomLogTail

    /// One turn of a room, all in one transaction: waits for the room's turn (other nodes'
    /// turns of the same room come before or after, never between), reads the log after
    /// `after`, lets `decide` say what to store, writes its records and appends its entries
    /// with the next sequence numbers, prunes the log to `bound`, and announces the new last
    /// number to other nodes on commit. `decide` may run again if the transaction is retried.
    func sequenceRoom<Decision: Sendable>(
        id: String, after: RoomLogPosition, at: EpochMillis, bound: RoomLogBound, chatLimit: Int,
        _ decide: @escaping @Sendable (RoomLogTail) throws -> (RoomLogAppend, Decision)
    ) async throws -> RoomTurn<Decision>
}

/// What ``RoomStore/createRoom(id:hostUserID:at:hostRoomLimit:)`` did.
public enum RoomCreation: Sendable, Equatable {
    case created
    /// The id is taken (with or without a host).
    case exists
    /// The host owns this many rooms, the limit or more.
    case quotaExceeded(owned: Int)
}
