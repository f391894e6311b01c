import Foundation
import SQLKit
import AirwaveTestSupport
import Testing
@testable import AirwaveStore

@Suite struct RoomMigrationTests {
    /// A database left by the previous program (schema version 1, events only) is upgraded in
    /// place at the next start, keeping its events, participants and chat.
    @Test(arguments: Backend.allCases) func versionOneDatabaseUpgradesToVersionTwoWithItsEventsIntact(_ backend: Backend) async throws {
        try await withDatabase(backend) { database in

            // What version 1 of the program did: the versions table plus migration 1 only.
            let old = try await database.open()
            do {
                let db = old.store.database
                try await applyMigrations(upTo: 1, on: db)
                #expect(try await old.schemaVersion() == 1)
                try await old.write([
                    started("e1"),
                    .participantJoined(
                        eventID: "e1", connectionID: 7, userID: "u", username: "U",
                        role: .host, verified: true, at: 1_100),
                    started("e2"),
                    .eventEnded(eventID: "e2", reason: "done", at: 3_000),
                ])
                // A chat row as version 1 wrote it (today's writer also sets later columns).
                try await db.insert(into: "chat_messages")
                    .columns("event_id", "user_id", "username", "message", "sent_at")
                    .values("e1", "u1", "User u1", "from version 1", Int64(2_000))
                    .run()
                #expect(try await tableColumns("rooms", on: db).isEmpty)
                try await old.shutdown()
            } catch {
                try? await old.shutdown()
                throw error
            }

            let new = try await database.open()
            do {
                try await new.migrate()
                #expect(try await new.schemaVersion() == SQLEventStore.latestSchemaVersion)
                #expect(SQLEventStore.latestSchemaVersion >= 4)
                let versions = try await new.store.database.select()
                    .columns("version", "name")
                    .from("airwave_schema_versions")
                    .orderBy("version")
                    .all()
                #expect(try versions.map { try $0.decode(column: "version", as: Int.self) } == Array(1...SQLEventStore.latestSchemaVersion))
                #expect(try versions.prefix(2).map { try $0.decode(column: "name", as: String.self) }
                    == ["events, participants and chat", "listening rooms and their chat"])

                let e1 = try #require(try await new.event(id: "e1"))
                #expect(e1.isLive && e1.hostUserID == "host-e1")
                #expect(e1.participants.map(\.userID) == ["u"])
                #expect(try await new.recentChat(eventID: "e1", limit: 10).map(\.message) == ["from version 1"])
                #expect(try await new.event(id: "e2")?.endReason == "done")

                // The new tables work, and migrating again changes nothing.
                #expect(try await new.createRoom(id: "r1", hostUserID: "alice", at: 5))
                try await new.writeRooms([
                    .state(roomID: "r1", StoredRoomState(currentSong: "s"), at: 6),
                    roomChatRecord("r1", "room chat", at: 7),
                ])
                try await new.migrate()
                #expect(try await new.schemaVersion() == SQLEventStore.latestSchemaVersion)
                #expect(try await new.room(id: "r1")?.state.currentSong == "s")
                #expect(try await new.roomChat(roomID: "r1", limit: 10).map(\.message) == ["room chat"])
                #expect(try await new.recentChat(eventID: "e1", limit: 10).map(\.message) == ["from version 1"])
                try await new.shutdown()
            } catch {
                try? await new.shutdown()
                throw error
            }
        }
    }

    @Test(arguments: Backend.allCases) func roomTablesHaveTheExpectedShape(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let db = store.store.database
            let roomColumns = try await tableColumns("rooms", on: db)
            #expect(roomColumns == ["room_id", "host_user_id", "created_at", "closed_at", "state_json", "current_song", "playback_json", "active_at", "log_seq"])
            #expect(try await tableColumns("room_log", on: db) == ["room_id", "seq", "entry_json", "at"])
            let chatColumns = try await tableColumns("room_chat", on: db)
            #expect(chatColumns == ["id", "room_id", "user_id", "name", "message", "sent_at", "cleared"])
            #expect(try await indexColumns("room_chat_room_id_id_idx", on: db) == ["room_id", "id"])

            // cleared defaults to false for rows inserted without it.
            try await db.insert(into: "rooms").columns("room_id", "created_at").values("r", Int64(1)).run()
            try await db.insert(into: "room_chat")
                .columns("room_id", "user_id", "name", "message", "sent_at")
                .values("r", "u", "N", "raw", Int64(2))
                .run()
            #expect(try await store.roomChat(roomID: "r", limit: 10).map(\.message) == ["raw"])
        }
    }

    /// The JSON in `state_json` is a stored format (schema version 2): rows written in it must
    /// stay readable, so its keys are pinned here (version 4 moves such rows to `room_songs`,
    /// `room_votes` and two columns, `RoomRowsTests`; a document found later is still read).
    @Test(arguments: Backend.allCases) func storedStateJSONFormatIsStable(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let db = store.store.database
            // A hand-written row in that format reads back; fields left out are nil.
            try await db.insert(into: "rooms")
                .columns("room_id", "created_at", "state_json")
                .values("hand", Int64(1), #"{"queue":[{"song_id":"x","voters":[],"time_added":9}],"playback":{"paused":true,"at":8}}"#)
                .run()
            #expect(try await store.room(id: "hand")?.state
                == StoredRoomState(queue: [StoredSong(songID: "x", voters: [], timeAdded: 9)],
                                   playback: StoredPlayback(paused: true, at: 8)))

            // Unreadable JSON is reported as such.
            try await db.insert(into: "rooms")
                .columns("room_id", "created_at", "state_json")
                .values("bad", Int64(1), "not json")
                .run()
            let error = await thrownError { _ = try await store.room(id: "bad") }
            #expect(error as? EventStoreError == .invalidStoredValue(column: "state_json", value: "not json"))
        }
    }
}
