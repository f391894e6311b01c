import Foundation
import SQLKit

extension SQLEventStore.Table {
    /// One row per listening room, with its current song and playback (its queue and votes are
    /// rows of their own; `state_json` held the whole state before schema version 4).
    static let rooms = "rooms"
    /// One row per chat message of a listening room.
    static let roomChat = "room_chat"
}

extension SQLEventStore: RoomStore {
    // MARK: - RoomStore

    /// Creates a room with a host; false if the id exists already (with or without a host).
    ///
    /// The id must be 1–64 characters (a database CHECK); a longer one makes this throw.
    public func createRoom(id: String, hostUserID: String?, at: EpochMillis) async throws -> Bool {
        try await transaction { db in
            guard try await !Self.roomExists(id, on: db) else { return false }
            try await Self.insertRoom(id, hostUserID: hostUserID, at: at, on: db)
            return true
        }
    }

    private static func roomExists(_ id: String, on db: any SQLDatabase) async throws -> Bool {
        try await db.select().column("room_id").from(Table.rooms).where("room_id", .equal, id).first() != nil
    }

    private static func insertRoom(_ id: String, hostUserID: String?, at: EpochMillis, on db: any SQLDatabase) async throws {
        try await db.insert(into: Table.rooms)
            .columns("room_id", "host_user_id", "created_at")
            .values(id, hostUserID, at)
            .run()
    }

    /// The room, or nil if it was never created or used.
    ///
    /// The state comes from the room's rows; a room whose state is still a `state_json` document
    /// (written before schema version 4 and not migrated, e.g. by hand) is read from that.
    public func room(id: String) async throws -> StoredRoom? {
        try await read { db in try await Self.roomRow(id, on: db) }
    }

    static func roomRow(_ id: String, on db: any SQLDatabase) async throws -> StoredRoom? {
        guard let row = try await db.select()
            .columns("room_id", "host_user_id", "created_at", "closed_at", "state_json", "current_song", "playback_json")
            .from(Table.rooms)
            .where("room_id", .equal, id)
            .first()
        else { return nil }
        let state: StoredRoomState
        if let json = try row.optional("state_json", as: String.self) {
            state = try decodeRoomState(json)
        } else {
            state = try await roomStateRows(id, currentSong: try row.optional("current_song", as: String.self),
                                            playbackJSON: try row.optional("playback_json", as: String.self), on: db)
        }
        return StoredRoom(
            roomID: try row.decode(column: "room_id", as: String.self),
            hostUserID: try row.optional("host_user_id", as: String.self),
            createdAt: try row.decode(column: "created_at", as: EpochMillis.self),
            state: state,
            closedAt: try row.optional("closed_at", as: EpochMillis.self)
        )
    }

    /// Creates a room with a host unless the id exists or the host owns `hostRoomLimit` rooms
    /// already; the count and the insert share one transaction, so concurrent requests of one
    /// user cannot pass the quota together.
    public func createRoom(id: String, hostUserID: String, at: EpochMillis, hostRoomLimit: Int) async throws -> RoomCreation {
        try await transaction { db in
            guard try await !Self.roomExists(id, on: db) else { return .exists }
            let owned = try await db.select()
                .column(SQLFunction("COUNT", args: SQLLiteral.all), as: "owned")
                .from(Table.rooms)
                .where("host_user_id", .equal, hostUserID)
                .first(decodingColumn: "owned", as: Int.self) ?? 0
            guard owned < hostRoomLimit else { return .quotaExceeded(owned: owned) }
            try await Self.insertRoom(id, hostUserID: hostUserID, at: at, on: db)
            return .created
        }
    }

    /// How many stored rooms have no host (rooms made by plain connections).
    public func guestRoomCount() async throws -> Int {
        try await read { db in
            try await db.select()
                .column(SQLFunction("COUNT", args: SQLLiteral.all), as: "rooms")
                .from(Table.rooms)
                .where(SQLColumn("host_user_id"), .is, SQLLiteral.null)
                .first(decodingColumn: "rooms", as: Int.self) ?? 0
        }
    }

    /// Deletes the room if it has no host and nothing worth keeping: no queued song, no current
    /// song or playback, no chat since it was last closed. Returns whether no row of it is left.
    public func deleteRoomIfUnused(id: String) async throws -> Bool {
        try await transaction { db in
            guard let row = try await db.select()
                .columns("host_user_id", "state_json", "current_song", "playback_json")
                .from(Table.rooms)
                .where("room_id", .equal, id)
                .first()
            else { return true }
            guard try row.optional("host_user_id", as: String.self) == nil,
                try row.optional("state_json", as: String.self) == nil,
                try row.optional("current_song", as: String.self) == nil,
                try row.optional("playback_json", as: String.self) == nil
            else { return false }
            let song = try await db.select().column("song_id").from(Table.roomSongs).where("room_id", .equal, id).limit(1).first()
            let chat = try await db.select().column("id").from(Table.roomChat).where("room_id", .equal, id)
                .where("cleared", .equal, false).limit(1).first()
            guard song == nil, chat == nil else { return false }
            try await db.delete(from: Table.roomChat).where("room_id", .equal, id).run()
            try await db.delete(from: Table.roomLog).where("room_id", .equal, id).run()
            try await db.delete(from: Table.rooms).where("room_id", .equal, id).run()
            return true
        }
    }

    /// Deletes up to `limit` rooms without a host that nothing was stored in since
    /// `inactiveBefore` (their last change, or their creation), least recently active first,
    /// with their queue, votes and chat; rooms in `keeping` (open in memory) stay. Returns how
    /// many were deleted.
    public func deleteIdleGuestRooms(inactiveBefore: EpochMillis, keeping: Set<String>, limit: Int) async throws -> Int {
        guard limit > 0 else { return 0 }
        return try await transaction { db in
            let lastActive = SQLFunction("COALESCE", args: SQLColumn("active_at"), SQLColumn("created_at"))
            let candidates = try await db.select()
                .column("room_id")
                .from(Table.rooms)
                .where(SQLColumn("host_user_id"), .is, SQLLiteral.null)
                .where(lastActive, .lessThan, SQLBind(inactiveBefore))
                .orderBy(lastActive)
                .limit(limit + keeping.count)
                .all(decodingColumn: "room_id", as: String.self)
            var deleted = 0
            for roomID in candidates where !keeping.contains(roomID) && deleted < limit {
                try await db.delete(from: Table.roomVotes).where("room_id", .equal, roomID).run()
                try await db.delete(from: Table.roomSongs).where("room_id", .equal, roomID).run()
                try await db.delete(from: Table.roomChat).where("room_id", .equal, roomID).run()
                try await db.delete(from: Table.roomLog).where("room_id", .equal, roomID).run()
                try await db.delete(from: Table.rooms).where("room_id", .equal, roomID).run()
                deleted += 1
            }
            return deleted
        }
    }

    /// Writes the records in order in one transaction (all or nothing).
    ///
    /// A `.state` or `.chat` for a room that does not exist creates it without a host, created
    /// at the record's time. Of several `.state` records of one room with no `.closed` of that
    /// room between them, only the last one's state is written (the earlier ones still create
    /// the room if needed, so its creation time is that of its first record); so are the
    /// per-change records of that room before the last `.state`. Other records cost a few
    /// statements each. States and playbacks are encoded before the transaction starts, so one
    /// that cannot be encoded (a NaN percentage) fails the batch without touching the database.
    public func writeRooms(_ records: [RoomRecord]) async throws {
        guard !records.isEmpty else {
            try await gate.checkOpen()
            return
        }
        let steps = try Self.roomWriteSteps(for: records)
        try await transaction { db in
            var knownRooms = Set<String>()
            for step in steps {
                try await Self.apply(step, on: db, knownRooms: &knownRooms)
            }
        }
    }

    /// The last `limit` chat messages of the room since it was last closed, oldest first.
    public func roomChat(roomID: String, limit: Int) async throws -> [StoredRoomChat] {
        guard limit > 0 else {
            try await gate.checkOpen()
            return []
        }
        return try await read { db in try await Self.roomChatRows(roomID, limit: limit, on: db) }
    }

    static func roomChatRows(_ roomID: String, limit: Int, on db: any SQLDatabase) async throws -> [StoredRoomChat] {
        let rows = try await db.select()
            .columns("id", "room_id", "user_id", "name", "message", "sent_at")
            .from(Table.roomChat)
            .where("room_id", .equal, roomID)
            .where("cleared", .equal, false)
            .orderBy("id", .descending)
            .limit(limit)
            .all()
        return try rows.reversed().map { row in
            StoredRoomChat(
                id: try row.decode(column: "id", as: Int64.self),
                roomID: try row.decode(column: "room_id", as: String.self),
                userID: try row.decode(column: "user_id", as: String.self),
                name: try row.decode(column: "name", as: String.self),
                message: try row.decode(column: "message", as: String.self),
                sentAt: try row.decode(column: "sent_at", as: EpochMillis.self)
            )
        }
    }

    // MARK: - Internals

    /// One statement group of a ``writeRooms(_:)`` batch, after coalescing.
    enum RoomWriteStep: Sendable {
        /// Create the room without a host if it does not exist (a superseded `.state`).
        case ensureRoom(roomID: String, at: EpochMillis)
        /// Create the room if needed, then write this whole state over its rows.
        case state(roomID: String, StoredRoomState, playbackJSON: String?, at: EpochMillis)
        /// Create the room if needed, then apply one change of its state.
        case change(RoomRecord, roomID: String, at: EpochMillis, playbackJSON: String?)
        /// Create the room if needed, then append the message.
        case chat(StoredRoomChat)
        /// Clear the room's state and chat and set its closing time.
        case closed(roomID: String, at: EpochMillis)
    }

    /// Turns a batch into steps: a `.state` followed (later in the batch, with no `.closed` of
    /// the same room in between) by another `.state` of its room only makes sure the room exists.
    static func roomWriteSteps(for records: [RoomRecord]) throws -> [RoomWriteStep] {
        var steps: [RoomWriteStep] = []
        steps.reserveCapacity(records.count)
        // Rooms whose state is written again later in the batch, with no close in between.
        var stateFollows = Set<String>()
        for record in records.reversed() {
            switch record {
            case let .state(roomID, state, at):
                if stateFollows.contains(roomID) {
                    steps.append(.ensureRoom(roomID: roomID, at: at))
                } else {
                    steps.append(.state(roomID: roomID, state, playbackJSON: try encodePlayback(state.playback), at: at))
                    stateFollows.insert(roomID)
                }
            case let .songQueued(roomID, _, at), let .voted(roomID, _, _, at), let .songChanged(roomID, _, at):
                // A whole state written later in the batch already holds this change.
                steps.append(stateFollows.contains(roomID) ? .ensureRoom(roomID: roomID, at: at)
                                                           : .change(record, roomID: roomID, at: at, playbackJSON: nil))
            case let .playback(roomID, playback, at):
                steps.append(stateFollows.contains(roomID) ? .ensureRoom(roomID: roomID, at: at)
                                                           : .change(record, roomID: roomID, at: at, playbackJSON: try encodePlayback(playback)))
            case let .chat(message):
                steps.append(.chat(message))
            case let .closed(roomID, at):
                steps.append(.closed(roomID: roomID, at: at))
                stateFollows.remove(roomID)
            }
        }
        steps.reverse()
        return steps
    }

    /// Applies one step inside a transaction. `knownRooms` holds the rooms this transaction
    /// already made sure exist (rooms are never deleted, so that stays true).
    static func apply(_ step: RoomWriteStep, on db: any SQLDatabase, knownRooms: inout Set<String>) async throws {
        switch step {
        case let .ensureRoom(roomID, at):
            try await ensureRoom(roomID, at: at, on: db, knownRooms: &knownRooms)

        case let .state(roomID, state, playbackJSON, at):
            try await ensureRoom(roomID, at: at, on: db, knownRooms: &knownRooms)
            try await replaceRoomState(roomID, json: playbackJSON, state: state, on: db)

        case let .change(record, roomID, at, playbackJSON):
            try await ensureRoom(roomID, at: at, on: db, knownRooms: &knownRooms)
            switch record {
            case let .songQueued(_, song, _):
                try await insertSong(roomID, song, on: db)
            case let .voted(_, songID, voter, _):
                try await insertVote(roomID, songID: songID, voter: voter, on: db)
            case let .songChanged(_, songID, _):
                if let songID { try await deleteSong(roomID, songID: songID, on: db) }
                try await db.update(Table.rooms).set("current_song", to: songID).where("room_id", .equal, roomID).run()
            case .playback:
                try await db.update(Table.rooms).set("playback_json", to: playbackJSON).where("room_id", .equal, roomID).run()
            case .state, .chat, .closed:
                preconditionFailure("not a change step")
            }

        case let .chat(message):
            try await ensureRoom(message.roomID, at: message.sentAt, on: db, knownRooms: &knownRooms)
            try await db.insert(into: Table.roomChat)
                .columns("room_id", "user_id", "name", "message", "sent_at", "cleared")
                .values(message.roomID, message.userID, message.name, message.message, message.sentAt, false)
                .run()

        case let .closed(roomID, at):
            try await db.delete(from: Table.roomVotes).where("room_id", .equal, roomID).run()
            try await db.delete(from: Table.roomSongs).where("room_id", .equal, roomID).run()
            try await db.update(Table.rooms)
                .set("state_json", to: SQLLiteral.null)
                .set("current_song", to: SQLLiteral.null)
                .set("playback_json", to: SQLLiteral.null)
                .set("closed_at", to: at)
                .where("room_id", .equal, roomID)
                .run()
            try await db.update(Table.roomChat)
                .set("cleared", to: true)
                .where("room_id", .equal, roomID)
                .where("cleared", .equal, false)
                .run()
        }
    }

    /// Inserts a room without a host unless it exists (or this transaction saw to it already),
    /// and sets its `active_at` to the record's time.
    ///
    /// Only a clash on `room_id` is ignored; any other failure (such as the id-length CHECK)
    /// is thrown and fails the batch.
    static func ensureRoom(
        _ roomID: String, at: EpochMillis, on db: any SQLDatabase, knownRooms: inout Set<String>
    ) async throws {
        guard !knownRooms.contains(roomID) else { return }
        // The same statement marks the room active now (idle guest rooms may be deleted).
        try await db.insert(into: Table.rooms)
            .columns("room_id", "created_at", "active_at")
            .values(roomID, at, at)
            .onConflict(with: "room_id") { $0.set("active_at", to: at) }
            .run()
        knownRooms.insert(roomID)
    }

    /// The JSON stored in `rooms.state_json`.
    static func encodeRoomState(_ state: StoredRoomState) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(state), as: UTF8.self)
    }

    /// Reads `rooms.state_json`; throws ``EventStoreError/invalidStoredValue(column:value:)``
    /// for JSON it cannot understand.
    static func decodeRoomState(_ json: String) throws -> StoredRoomState {
        do {
            return try JSONDecoder().decode(StoredRoomState.self, from: Data(json.utf8))
        } catch {
            throw EventStoreError.invalidStoredValue(column: "state_json", value: json)
        }
    }
}
