import Foundation
import SQLKit

extension SQLEventStore.Table {
    /// One row per song waiting in a listening room's queue.
    static let roomSongs = "room_songs"
    /// One row per vote for a queued song; `position` is its place in the song's vote order.
    static let roomVotes = "room_votes"
}

extension SQLEventStore {
    /// Version 4: a room's state as rows, so that one message costs the store one small
    /// statement instead of rewriting the whole state (issue 13, finding 5). Queued songs go to
    /// `room_songs`, votes to `room_votes`, the current song and playback to two columns of
    /// `rooms`; states stored as `rooms.state_json` are moved there (the column stays, empty).
    @Sendable
    static func storeRoomStateAsRows(on db: any SQLDatabase) async throws {
        try await db.create(table: Table.roomSongs)
            .column("room_id", type: .text, .notNull, .references(Table.rooms, "room_id", onDelete: .cascade))
            .column("song_id", type: .text, .notNull)
            .column("time_added", type: .bigint, .notNull)
            .primaryKey("room_id", "song_id")
            .run()
        // The key orders each song's votes and serves every look-up (by room, by room and song).
        // A voter key may repeat: guests are keyed by connection number, which restarts with the
        // process, and each of their votes counts (the engine keeps them apart in memory).
        try await db.create(table: Table.roomVotes)
            .column("room_id", type: .text, .notNull, .references(Table.rooms, "room_id", onDelete: .cascade))
            .column("song_id", type: .text, .notNull)
            .column("position", type: .bigint, .notNull)
            .column("voter", type: .text, .notNull)
            .primaryKey("room_id", "song_id", "position")
            .run()
        try await db.alter(table: Table.rooms).column("current_song", type: .text).run()
        try await db.alter(table: Table.rooms).column("playback_json", type: .text).run()
        // When something was last stored in the room (NULL: its creation); idle guest rooms go.
        try await db.alter(table: Table.rooms).column("active_at", type: .bigint).run()

        let rows = try await db.select()
            .columns("room_id", "state_json")
            .from(Table.rooms)
            .where(SQLColumn("state_json"), .isNot, SQLLiteral.null)
            .all()
        for row in rows {
            let roomID = try row.decode(column: "room_id", as: String.self)
            let state = try decodeRoomState(try row.decode(column: "state_json", as: String.self))
            try await replaceRoomState(roomID, json: try encodePlayback(state.playback), state: state, on: db)
        }
    }

    /// Writes a whole state over the room's rows (a `.state` record, and the migration).
    static func replaceRoomState(_ roomID: String, json playback: String?, state: StoredRoomState, on db: any SQLDatabase) async throws {
        try await db.delete(from: Table.roomVotes).where("room_id", .equal, roomID).run()
        try await db.delete(from: Table.roomSongs).where("room_id", .equal, roomID).run()
        for song in state.queue {
            try await insertSong(roomID, song, on: db)
        }
        try await db.update(Table.rooms)
            .set("current_song", to: state.currentSong)
            .set("playback_json", to: playback)
            .set("state_json", to: SQLLiteral.null)
            .where("room_id", .equal, roomID)
            .run()
    }

    /// A new queued song and its first voters. A song row left over from a change that was
    /// not stored in order is kept rather than failing the whole batch (every room's records).
    static func insertSong(_ roomID: String, _ song: StoredSong, on db: any SQLDatabase) async throws {
        try await db.insert(into: Table.roomSongs)
            .columns("room_id", "song_id", "time_added")
            .values(roomID, song.songID, song.timeAdded)
            .ignoringConflicts(with: ["room_id", "song_id"])
            .run()
        for voter in song.voters {
            try await insertVote(roomID, songID: song.songID, voter: voter, on: db)
        }
    }

    /// A vote after the song's earlier ones: its position is one more than theirs, found with the
    /// primary key (one index look-up), so a vote costs the same however many the room holds.
    static func insertVote(_ roomID: String, songID: String, voter: String, on db: any SQLDatabase) async throws {
        let next = SQLFunction("COALESCE", args: SQLBinaryExpression(SQLFunction("MAX", args: SQLColumn("position")), .add, SQLLiteral.numeric("1")),
                               SQLLiteral.numeric("0"))
        try await db.insert(into: Table.roomVotes)
            .columns("room_id", "song_id", "position", "voter")
            .select { $0
                .column(SQLBind(roomID)).column(SQLBind(songID)).column(next).column(SQLBind(voter))
                .from(Table.roomVotes)
                .where("room_id", .equal, roomID)
                .where("song_id", .equal, songID)
            }
            .run()
    }

    /// The song leaves the queue with its votes.
    static func deleteSong(_ roomID: String, songID: String, on db: any SQLDatabase) async throws {
        try await db.delete(from: Table.roomVotes).where("room_id", .equal, roomID).where("song_id", .equal, songID).run()
        try await db.delete(from: Table.roomSongs).where("room_id", .equal, roomID).where("song_id", .equal, songID).run()
    }

    /// The room's state from its rows; the queue in the room's order (votes descending, then
    /// `time_added`, then id), each song's voters in vote order.
    static func roomStateRows(_ roomID: String, currentSong: String?, playbackJSON: String?, on db: any SQLDatabase) async throws -> StoredRoomState {
        let songs = try await db.select()
            .columns("song_id", "time_added")
            .from(Table.roomSongs)
            .where("room_id", .equal, roomID)
            .all()
        let votes = try await db.select()
            .columns("song_id", "voter")
            .from(Table.roomVotes)
            .where("room_id", .equal, roomID)
            .orderBy("song_id")
            .orderBy("position")
            .all()
        var voters: [String: [String]] = [:]
        for vote in votes {
            voters[try vote.decode(column: "song_id", as: String.self), default: []].append(try vote.decode(column: "voter", as: String.self))
        }
        var queue = try songs.map { row in
            let songID = try row.decode(column: "song_id", as: String.self)
            return StoredSong(songID: songID, voters: voters[songID] ?? [], timeAdded: try row.decode(column: "time_added", as: EpochMillis.self))
        }
        queue.sort { a, b in
            if a.voters.count != b.voters.count { return a.voters.count > b.voters.count }
            if a.timeAdded != b.timeAdded { return a.timeAdded < b.timeAdded }
            return a.songID < b.songID
        }
        return StoredRoomState(queue: queue, currentSong: currentSong, playback: try playbackJSON.map(decodePlayback))
    }

    static func encodePlayback(_ playback: StoredPlayback?) throws -> String? {
        guard let playback else { return nil }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(playback), as: UTF8.self)
    }

    static func decodePlayback(_ json: String) throws -> StoredPlayback {
        do {
            return try JSONDecoder().decode(StoredPlayback.self, from: Data(json.utf8))
        } catch {
            throw EventStoreError.invalidStoredValue(column: "playback_json", value: json)
        }
    }
}
