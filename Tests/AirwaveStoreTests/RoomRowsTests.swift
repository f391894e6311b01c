import Foundation
import SQLKit
import AirwaveTestSupport
import Testing
@testable import AirwaveStore

/// Schema version 4: a room's state kept as rows and changed one record at a time (issue 13,
/// finding 5), the per-user room quota and the pruning of empty guest rooms (finding 8).
@Suite struct RoomRowsTests {
    @Test(arguments: Backend.allCases) func perChangeRecordsBuildTheStateAndSurviveARestart(_ backend: Backend) async throws {
        try await withDatabase(backend) { database in
            let first = try await database.open()
            try await first.migrate()
            try await first.writeRooms([
                .songQueued(roomID: "r", song("s1", ["user:a"], at: 10), at: 10),
                .songQueued(roomID: "r", song("s2", [], at: 11), at: 11),
                .voted(roomID: "r", songID: "s2", voter: "connection:7", at: 12),
                .voted(roomID: "r", songID: "s2", voter: "user:b", at: 13),
                .songQueued(roomID: "r", song("s3", ["user:c"], at: 14), at: 14),
                .songChanged(roomID: "r", songID: "s1", at: 15),
                .playback(roomID: "r", StoredPlayback(percentage: 12.5, paused: false, songProgress: 1_000, songLength: 2_000, at: 16), at: 16),
            ])
            let expected = StoredRoomState(
                queue: [song("s2", ["connection:7", "user:b"], at: 11), song("s3", ["user:c"], at: 14)], currentSong: "s1",
                playback: StoredPlayback(percentage: 12.5, paused: false, songProgress: 1_000, songLength: 2_000, at: 16))
            #expect(try await first.room(id: "r")?.state == expected)
            #expect(try await first.room(id: "r")?.createdAt == 10)
            try await first.shutdown()

            let second = try await database.open()
            do {
                try await second.migrate()
                #expect(try await second.room(id: "r")?.state == expected)
                // The changes are rows: nothing is kept as a whole document.
                let json = try await second.store.database.select().column("state_json").from("rooms").where("room_id", .equal, "r")
                    .first()
                #expect(try json?.decodeNil(column: "state_json") == true)
                let votes = try await second.store.database.raw("SELECT COUNT(*) AS n FROM room_votes WHERE room_id = 'r'")
                    .first(decodingColumn: "n", as: Int.self)
                #expect(votes == 3)

                // A song without id leaves nothing playing; closing removes every row of the state.
                try await second.writeRooms([.songChanged(roomID: "r", songID: nil, at: 20)])
                #expect(try await second.room(id: "r")?.state.currentSong == nil)
                try await second.writeRooms([.closed(roomID: "r", at: 21)])
                #expect(try await second.room(id: "r")?.state == StoredRoomState())
                let left = try await second.store.database.raw("SELECT (SELECT COUNT(*) FROM room_votes) + (SELECT COUNT(*) FROM room_songs) AS n")
                    .first(decodingColumn: "n", as: Int.self)
                #expect(left == 0)
                try await second.shutdown()
            } catch {
                try? await second.shutdown()
                throw error
            }
        }
    }

    /// Guests are keyed by connection number, which restarts with the process: a guest of a later
    /// run may vote with the same key as one of an earlier run, and both votes count. A change
    /// that does not fit the rows (a song stored already) does not fail the batch of every room.
    @Test(arguments: Backend.allCases) func repeatedGuestKeysCountAndAStaleSongDoesNotFailTheBatch(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            try await store.writeRooms([
                .songQueued(roomID: "r", song("s", ["connection:3"], at: 1), at: 1),
                .voted(roomID: "r", songID: "s", voter: "user:a", at: 2),
                .voted(roomID: "r", songID: "s", voter: "connection:3", at: 3),
                .songQueued(roomID: "r", song("s", [], at: 9), at: 4),
                roomChatRecord("other", "kept", at: 5),
            ])
            #expect(try await store.room(id: "r")?.state.queue == [song("s", ["connection:3", "user:a", "connection:3"], at: 1)])
            #expect(try await store.roomChat(roomID: "other", limit: 10).map(\.message) == ["kept"])
        }
    }

    @Test(arguments: Backend.allCases) func aWholeStateReplacesTheRows(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            try await store.writeRooms([
                .songQueued(roomID: "r", song("old", ["user:a"], at: 1), at: 1),
                .state(roomID: "r", StoredRoomState(queue: [song("new", ["user:b"], at: 2)], currentSong: "x"), at: 2),
                .voted(roomID: "r", songID: "new", voter: "user:c", at: 3),
            ])
            #expect(try await store.room(id: "r")?.state
                == StoredRoomState(queue: [song("new", ["user:b", "user:c"], at: 2)], currentSong: "x"))
        }
    }

    @Test(arguments: Backend.allCases) func aVersionThreeDatabaseHasItsStateDocumentsMovedToRows(_ backend: Backend) async throws {
        try await withDatabase(backend) { database in
            let old = try await database.open()
            do {
                let db = old.store.database
                try await applyMigrations(upTo: 3, on: db)
                // Exactly what version 2 wrote.
                try await db.insert(into: "rooms")
                    .columns("room_id", "host_user_id", "created_at", "state_json")
                    .values("r", "alice", Int64(1),
                            #"{"current_song":"c","playback":{"at":4,"paused":false,"percentage":50,"song_length":20,"song_progress":10},"queue":[{"song_id":"s/1","time_added":3,"voters":["a","connection:2"]},{"song_id":"s2","time_added":5,"voters":[]}]}"#)
                    .run()
                try await db.insert(into: "rooms").columns("room_id", "created_at").values("empty", Int64(2)).run()
                try await old.shutdown()
            } catch {
                try? await old.shutdown()
                throw error
            }

            let new = try await database.open()
            do {
                try await new.migrate()
                #expect(try await new.schemaVersion() == SQLEventStore.latestSchemaVersion)
                let expected = StoredRoomState(
                    queue: [song("s/1", ["a", "connection:2"], at: 3), song("s2", [], at: 5)], currentSong: "c",
                    playback: StoredPlayback(percentage: 50, paused: false, songProgress: 10, songLength: 20, at: 4))
                #expect(try await new.room(id: "r")?.state == expected)
                #expect(try await new.room(id: "r")?.hostUserID == "alice")
                #expect(try await new.room(id: "empty")?.state == StoredRoomState())
                let json = try await new.store.database.select().column("state_json").from("rooms").where("room_id", .equal, "r").first()
                #expect(try json?.decodeNil(column: "state_json") == true)
                // The moved state takes changes like any other.
                try await new.writeRooms([.voted(roomID: "r", songID: "s2", voter: "user:z", at: 9)])
                #expect(try await new.room(id: "r")?.state.queue.map(\.voters.count) == [2, 1])
                try await new.shutdown()
            } catch {
                try? await new.shutdown()
                throw error
            }
        }
    }

    @Test(arguments: Backend.allCases) func aUserOwnsAtMostTheQuotaOfRooms(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            #expect(try await store.createRoom(id: "a1", hostUserID: "alice", at: 1, hostRoomLimit: 2) == .created)
            #expect(try await store.createRoom(id: "a1", hostUserID: "alice", at: 2, hostRoomLimit: 2) == .exists)
            #expect(try await store.createRoom(id: "a2", hostUserID: "alice", at: 3, hostRoomLimit: 2) == .created)
            #expect(try await store.createRoom(id: "a3", hostUserID: "alice", at: 4, hostRoomLimit: 2) == .quotaExceeded(owned: 2))
            #expect(try await store.createRoom(id: "b1", hostUserID: "bob", at: 5, hostRoomLimit: 2) == .created)
            #expect(try await store.room(id: "a3") == nil)
            // Concurrent requests of one user cannot pass the quota together.
            let results = try await withThrowingTaskGroup(of: RoomCreation.self) { group in
                for i in 0..<10 {
                    group.addTask { try await store.createRoom(id: "c\(i)", hostUserID: "carol", at: 10, hostRoomLimit: 3) }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(results.filter { $0 == .created }.count == 3)
        }
    }

    @Test(arguments: Backend.allCases) func guestRoomsIdleSinceTheCutoffAreDeletedLeastRecentlyActiveFirst(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            #expect(try await store.createRoom(id: "hosted", hostUserID: "alice", at: 1))
            try await store.writeRooms([
                .songQueued(roomID: "old", song("s", ["user:a"], at: 10), at: 10),
                roomChatRecord("older", "hi", at: 5),
                .songQueued(roomID: "open", song("s", [], at: 6), at: 6),
                .songQueued(roomID: "recent", song("s", [], at: 100), at: 100),
                // A change renews a room: "renewed" was made long ago but changed lately.
                .songQueued(roomID: "renewed", song("s", [], at: 2), at: 2),
            ])
            try await store.writeRooms([.voted(roomID: "renewed", songID: "s", voter: "user:b", at: 90)])
            #expect(try await store.guestRoomCount() == 5)
            // One at most: the least recently active that is not open.
            #expect(try await store.deleteIdleGuestRooms(inactiveBefore: 50, keeping: ["open"], limit: 1) == 1)
            #expect(try await store.room(id: "older") == nil)
            #expect(try await store.roomChat(roomID: "older", limit: 10).isEmpty)
            #expect(try await store.deleteIdleGuestRooms(inactiveBefore: 50, keeping: ["open"], limit: 10) == 1)
            #expect(try await store.room(id: "old") == nil)
            #expect(try await store.room(id: "open") != nil)
            #expect(try await store.room(id: "recent") != nil)
            #expect(try await store.room(id: "renewed")?.state.queue.first?.voters == ["user:b"])
            #expect(try await store.room(id: "hosted") != nil)
            #expect(try await store.guestRoomCount() == 3)
            let orphans = try await store.store.database.raw(
                "SELECT (SELECT COUNT(*) FROM room_votes WHERE room_id = 'old') + (SELECT COUNT(*) FROM room_songs WHERE room_id = 'old') AS n"
            ).first(decodingColumn: "n", as: Int.self)
            #expect(orphans == 0)
        }
    }

    @Test(arguments: Backend.allCases) func emptyGuestRoomsAreDeletedAndOthersKept(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            #expect(try await store.createRoom(id: "hosted", hostUserID: "alice", at: 1))
            try await store.writeRooms([
                .songChanged(roomID: "nothing", songID: nil, at: 2),
                .songQueued(roomID: "queued", song("s", [], at: 3), at: 3),
                roomChatRecord("chatty", "hi", at: 4),
                roomChatRecord("closed", "bye", at: 5),
                .closed(roomID: "closed", at: 6),
            ])
            #expect(try await store.guestRoomCount() == 4)
            #expect(try await store.deleteRoomIfUnused(id: "hosted") == false)
            #expect(try await store.deleteRoomIfUnused(id: "nothing") == true)
            #expect(try await store.deleteRoomIfUnused(id: "queued") == false)
            #expect(try await store.deleteRoomIfUnused(id: "chatty") == false)
            #expect(try await store.deleteRoomIfUnused(id: "closed") == true)
            #expect(try await store.deleteRoomIfUnused(id: "never") == true)
            #expect(try await store.room(id: "nothing") == nil)
            #expect(try await store.room(id: "hosted") != nil)
            #expect(try await store.guestRoomCount() == 2)
        }
    }
}
