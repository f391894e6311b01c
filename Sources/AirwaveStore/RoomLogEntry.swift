/// One entry of a listening room's log: a change every member sees, in the room's one order
/// across nodes (issue 15). The store keeps the entry's text as given.
public struct RoomLogEntry: Sendable, Equatable {
    /// The entry's place in the room: 1, 2, 3, … without holes, never reused while the room exists.
    public var seq: Int64
    /// The entry as its writer encoded it (the server's `RoomEvent` JSON).
    public var entryJSON: String
    /// When it was stored.
    public var at: EpochMillis

    public init(seq: Int64, entryJSON: String, at: EpochMillis) {
        self.seq = seq
        self.entryJSON = entryJSON
        self.at = at
    }
}

/// Where a reader of a room's log is: the last entry it applied, in which incarnation of the room.
public struct RoomLogPosition: Sendable, Equatable {
    /// The number of the last entry (0: none yet; below 0: the reader knows nothing yet).
    public var seq: Int64
    /// When the room's row was made (`rooms.created_at`). A room deleted and used again is a new
    /// incarnation whose numbers start again at 1; nil: no row (known to the reader, or yet).
    public var createdAt: EpochMillis?

    public init(seq: Int64, createdAt: EpochMillis?) {
        self.seq = seq
        self.createdAt = createdAt
    }

    /// A reader that knows nothing of the room: it is given the room as stored.
    public static let unknown = RoomLogPosition(seq: -1, createdAt: nil)
}

/// What a room's log holds after a position the reader knows.
public struct RoomLogTail: Sendable, Equatable {
    /// The entries after it, oldest first, ending at `position.seq`; empty when `reload` is set.
    public var entries: [RoomLogEntry]
    /// Where the log is now.
    public var position: RoomLogPosition
    /// Set when the entries cannot bring the reader up to date: the reader knew nothing, the log
    /// was pruned past the number it knows, or the room was deleted and used again (another
    /// incarnation). The reader starts again from the room as stored now.
    public var reload: RoomReload?

    public init(entries: [RoomLogEntry], position: RoomLogPosition, reload: RoomReload?) {
        self.entries = entries
        self.position = position
        self.reload = reload
    }
}

/// A room as stored at `RoomLogTail.lastSeq`: its row (nil if it is gone) and its recent chat.
public struct RoomReload: Sendable, Equatable {
    public var room: StoredRoom?
    public var chat: [StoredRoomChat]

    public init(room: StoredRoom?, chat: [StoredRoomChat]) {
        self.room = room
        self.chat = chat
    }
}

/// How much of each room's log is kept: entries are pruned once `entries` newer ones exist or
/// once older than `age` milliseconds, in the transaction that appends. A node further behind
/// than that reloads the room instead of replaying it.
public struct RoomLogBound: Sendable, Equatable {
    public var entries: Int
    public var age: EpochMillis

    public init(entries: Int, age: EpochMillis) {
        self.entries = entries
        self.age = age
    }
}

/// What one turn of a room stores: its state records and its log entries, in order.
public struct RoomLogAppend: Sendable, Equatable {
    public var records: [RoomRecord]
    public var entries: [String]

    public init(records: [RoomRecord] = [], entries: [String] = []) {
        self.records = records
        self.entries = entries
    }
}

/// A committed turn of a room.
public struct RoomTurn<Decision: Sendable>: Sendable {
    /// What the log held when the turn's decision was made (the last try's).
    public var tail: RoomLogTail
    /// The sequence number of the turn's first entry (`tail.position.seq + 1`).
    public var firstSeq: Int64
    /// Where the log is after the turn (its last entry, and the room's row, new or not).
    public var position: RoomLogPosition
    /// What the turn's `decide` returned besides the write.
    public var decision: Decision
}
