import Foundation
import SQLKit

extension SQLEventStore.Table {
    /// The sequenced changes of listening rooms: one row per change every member of the room
    /// sees, on whichever node they are connected to (PROTOCOL.md 8, issue 15).
    static let roomLog = "room_log"
}

extension SQLEventStore {
    /// Version 5: `room_log`, the order of each room's changes across nodes, and `rooms.log_seq`,
    /// the last sequence number the room handed out (kept on the room row so that pruning the
    /// log never lets a number be used twice).
    @Sendable
    static func createRoomLog(on db: any SQLDatabase) async throws {
        try await db.create(table: Table.roomLog)
            .column("room_id", type: .text, .notNull, .references(Table.rooms, "room_id", onDelete: .cascade))
            .column("seq", type: .bigint, .notNull)
            .column("entry_json", type: .text, .notNull)
            .column("at", type: .bigint, .notNull)
            .primaryKey("room_id", "seq")
            .run()
        try await db.alter(table: Table.rooms)
            .column("log_seq", type: .bigint, .notNull, .default(SQLLiteral.numeric("0")))
            .run()
    }
}

extension SQLEventStore {
    /// The PostgreSQL channel on which ``sequenceRoom(id:after:at:bound:chatLimit:_:)`` announces a
    /// room's new entries, payload `<room id> <last seq> <created_at>` (the room's position,
    /// ``RoomLogPosition``); sent on commit, in commit order.
    public static let roomLogChannel = "airwave_rooms"

    /// The first key of the advisory locks that serialise each room's turns (the second is a
    /// hash of the room id), apart from ``migrationLockKey`` and any other lock of the database.
    static let roomLockClass: Int32 = 0x726F_6F6D  // "room"

    /// Takes the room's turn: on PostgreSQL a transaction-scoped advisory lock on the room, so
    /// that the nodes sequencing one room do it one after the other; on SQLite the one write
    /// connection serialises every transaction already.
    static func lockRoom(_ roomID: String, on db: any SQLDatabase) async throws {
        guard db.dialect.name == "postgresql" else { return }
        try await db.raw("SELECT pg_advisory_xact_lock(\(literal: Int(roomLockClass)), hashtext(\(bind: roomID)))").run()
    }

    /// The room's position and its entries after `after`, or what it holds now if those do not
    /// follow `after` (see ``RoomLogTail/reload``).
    static func roomLogTail(_ roomID: String, after: RoomLogPosition, chatLimit: Int, on db: any SQLDatabase) async throws -> RoomLogTail {
        let row = try await db.select().columns("log_seq", "created_at").from(Table.rooms).where("room_id", .equal, roomID).first()
        let now = RoomLogPosition(seq: try row?.decode(column: "log_seq", as: Int64.self) ?? 0,
                                  createdAt: try row?.decode(column: "created_at", as: EpochMillis.self))
        // The same incarnation of the room (a reader that knew of no row takes the first one's).
        let sameRoom = after.seq >= 0 && (after.createdAt == nil || after.createdAt == now.createdAt)
        if sameRoom, now.seq == after.seq { return RoomLogTail(entries: [], position: now, reload: nil) }
        let rows = !sameRoom || now.seq < after.seq ? [] : try await db.select()
            .columns("seq", "entry_json", "at")
            .from(Table.roomLog)
            .where("room_id", .equal, roomID)
            .where("seq", .greaterThan, after.seq)
            .orderBy("seq")
            .all()
        let entries = try rows.map { row in
            RoomLogEntry(seq: try row.decode(column: "seq", as: Int64.self), entryJSON: try row.decode(column: "entry_json", as: String.self),
                         at: try row.decode(column: "at", as: EpochMillis.self))
        }
        // Entries are numbered without holes and pruned only from the oldest: they follow `after`
        // unless pruned past it. A reader with nothing yet (seq < 0), or one of an earlier
        // incarnation (the room was deleted and used again), starts from the room as stored.
        if sameRoom, now.seq > after.seq, entries.first?.seq == after.seq + 1, entries.last?.seq == now.seq {
            return RoomLogTail(entries: entries, position: now, reload: nil)
        }
        let room = try await roomRow(roomID, on: db)
        let chat = room == nil ? [] : try await roomChatRows(roomID, limit: chatLimit, on: db)
        return RoomLogTail(entries: [], position: now, reload: RoomReload(room: room, chat: chat))
    }

    /// The room's entries after `after`, without taking its turn (a node catching up after a
    /// notification, or before a batch that stores nothing).
    public func roomLog(id: String, after: RoomLogPosition, chatLimit: Int) async throws -> RoomLogTail {
        try await read { db in try await Self.roomLogTail(id, after: after, chatLimit: chatLimit, on: db) }
    }

    /// One turn of a room (issue 15): in one transaction, takes the room's turn, reads what the
    /// log holds after `after` and hands it to `decide`, which says what to store; then writes the
    /// records (as ``writeRooms(_:)``), appends the entries with the next sequence numbers, prunes
    /// the log to `bound` and, on PostgreSQL, notifies ``roomLogChannel``.
    ///
    /// `decide` may run more than once (a lost connection is retried), so it must not have
    /// effects of its own; what it returns besides the write comes back once committed. Returns
    /// the tail `decide` saw last and the sequence number of the first appended entry.
    public func sequenceRoom<Decision: Sendable>(
        id roomID: String, after: RoomLogPosition, at: EpochMillis, bound: RoomLogBound, chatLimit: Int,
        _ decide: @escaping @Sendable (RoomLogTail) throws -> (RoomLogAppend, Decision)
    ) async throws -> RoomTurn<Decision> {
        try await transaction { db in
            try await Self.lockRoom(roomID, on: db)
            let tail = try await Self.roomLogTail(roomID, after: after, chatLimit: chatLimit, on: db)
            let (append, decision) = try decide(tail)
            let firstSeq = tail.position.seq + 1
            guard !append.entries.isEmpty || !append.records.isEmpty else {
                return RoomTurn(tail: tail, firstSeq: firstSeq, position: tail.position, decision: decision)
            }
            var knownRooms = Set<String>()
            try await Self.ensureRoom(roomID, at: at, on: db, knownRooms: &knownRooms)
            for step in try Self.roomWriteSteps(for: append.records) {
                try await Self.apply(step, on: db, knownRooms: &knownRooms)
            }
            // The row may be new: its creation time names this incarnation of the room.
            var createdAt = tail.position.createdAt
            if createdAt == nil {
                createdAt = try await db.select().column("created_at").from(Table.rooms)
                    .where("room_id", .equal, roomID).first(decodingColumn: "created_at", as: EpochMillis.self)
            }
            guard !append.entries.isEmpty else {
                return RoomTurn(tail: tail, firstSeq: firstSeq, position: RoomLogPosition(seq: tail.position.seq, createdAt: createdAt),
                                decision: decision)
            }
            for (offset, entry) in append.entries.enumerated() {
                try await db.insert(into: Table.roomLog)
                    .columns("room_id", "seq", "entry_json", "at")
                    .values(roomID, firstSeq + Int64(offset), entry, at)
                    .run()
            }
            let lastSeq = tail.position.seq + Int64(append.entries.count)
            try await db.update(Table.rooms).set("log_seq", to: lastSeq).where("room_id", .equal, roomID).run()
            try await db.delete(from: Table.roomLog)
                .where("room_id", .equal, roomID)
                .where {
                    $0.where("seq", .lessThanOrEqual, lastSeq - Int64(bound.entries))
                        .orWhere("at", .lessThan, at - bound.age)
                }
                .run()
            if db.dialect.name == "postgresql" {
                let payload = "\(roomID) \(lastSeq) \(createdAt ?? 0)"
                try await db.raw("SELECT pg_notify(\(bind: Self.roomLogChannel), \(bind: payload))").run()
            }
            return RoomTurn(tail: tail, firstSeq: firstSeq, position: RoomLogPosition(seq: lastSeq, createdAt: createdAt), decision: decision)
        }
    }
}

extension SQLBackedStore {
    /// The room's log after `after` (see ``SQLEventStore/roomLog(id:after:chatLimit:)``).
    public func roomLog(id: String, after: RoomLogPosition, chatLimit: Int) async throws -> RoomLogTail {
        try await store.roomLog(id: id, after: after, chatLimit: chatLimit)
    }

    /// One turn of a room (see ``SQLEventStore/sequenceRoom(id:after:at:bound:chatLimit:_:)``).
    public func sequenceRoom<Decision: Sendable>(
        id: String, after: RoomLogPosition, at: EpochMillis, bound: RoomLogBound, chatLimit: Int,
        _ decide: @escaping @Sendable (RoomLogTail) throws -> (RoomLogAppend, Decision)
    ) async throws -> RoomTurn<Decision> {
        try await store.sequenceRoom(id: id, after: after, at: at, bound: bound, chatLimit: chatLimit, decide)
    }
}
