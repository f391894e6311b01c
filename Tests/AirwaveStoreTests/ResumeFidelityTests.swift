import SQLKit
import Testing
@testable import AirwaveStore

/// What another node reads back to resume an event whose origin died (PROTOCOL.md 8): each
/// co-host's source id (schema version 8, `event_participants.source_id`) and the screen's
/// codec fields of the latest mode change (`events.screen_*`).
@Suite struct ResumeFidelityTests {
    /// A source id is the user's for the whole event (PROTOCOL.md 2): written when the session
    /// becomes a co-host or joins as one, kept when it steps down, on every later session.
    @Test(arguments: Backend.allCases) func sourceIDsRoundTrip(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            try await store.write([
                started("e1"),
                .participantJoined(eventID: "e1", connectionID: 2, userID: "uma", username: "Uma", role: .listener, verified: true, at: 1_100),
                .participantJoined(eventID: "e1", connectionID: 3, userID: "cal", username: "Cal", role: .listener, verified: true, at: 1_200),
                .participantJoined(eventID: "e1", connectionID: 4, userID: "ida", username: "Ida", role: .listener, verified: false, at: 1_300),
                // Cal is promoted first (source 2), Uma second (source 3).
                .roleChanged(eventID: "e1", connectionID: 3, role: .cohost, sourceID: 2, at: 1_400),
                .roleChanged(eventID: "e1", connectionID: 2, role: .cohost, sourceID: 3, at: 1_500),
                // Cal steps down: the record carries no id, the stored one stays.
                .roleChanged(eventID: "e1", connectionID: 3, role: .listener, at: 1_600),
                // Uma drops and comes back as a co-host on a new connection, with her id.
                .participantLeft(eventID: "e1", connectionID: 2, at: 1_700),
                .participantJoined(eventID: "e1", connectionID: 5, userID: "uma", username: "Uma", role: .cohost, verified: true,
                                   sourceID: 3, at: 1_800),
            ])
            let event = try #require(try await store.event(id: "e1"))
            #expect(event.participants.map(\.userID) == ["uma", "cal", "ida", "uma"])
            #expect(event.participants.map(\.sourceID) == [3, 2, nil, 3])
            #expect(event.participants.map(\.role) == [.cohost, .listener, .listener, .cohost])
            // The pages of `GET /api/streams/{id}` carry them too.
            let page = try await store.participants(eventID: "e1", after: nil, limit: 2)
            #expect(page.participants.map(\.sourceID) == [3, 2])
            #expect(event.participants[3] == StoredParticipant(userID: "uma", username: "Uma", role: .cohost, verified: true,
                                                               joinedAt: 1_800, sourceID: 3))
        }
    }

    /// The screen's codec fields go with the mode change that set them; back to audio, they are
    /// gone; a share announced without fields stores none.
    @Test(arguments: Backend.allCases) func screenFieldsRoundTrip(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let full = StoredScreen(codec: "vp8", width: 1280, height: 720, description: String(repeating: "AAECAw==", count: 2048))
            try await store.write([started("e1", mode: "audio"), .modeChanged(eventID: "e1", mode: "screen", screen: full, at: 2_000)])
            var event = try #require(try await store.event(id: "e1", withParticipants: false))
            #expect(event.mode == "screen" && event.screen == full)

            try await store.write([.modeChanged(eventID: "e1", mode: "audio", at: 3_000)])
            event = try #require(try await store.event(id: "e1"))
            #expect(event.mode == "audio" && event.screen == nil)

            let codecOnly = StoredScreen(codec: "vp8")
            try await store.write([.modeChanged(eventID: "e1", mode: "screen", screen: codecOnly, at: 4_000)])
            #expect(try await store.event(id: "e1")?.screen == codecOnly)
            // A new share replaces every field, the ones it leaves out too.
            try await store.write([.modeChanged(eventID: "e1", mode: "screen", screen: StoredScreen(width: 640, height: 360), at: 5_000)])
            #expect(try await store.event(id: "e1")?.screen == StoredScreen(width: 640, height: 360))
            try await store.write([.modeChanged(eventID: "e1", mode: "screen", screen: StoredScreen(), at: 6_000)])
            event = try #require(try await store.event(id: "e1"))
            #expect(event.mode == "screen" && event.screen == nil)
        }
    }

    /// A database of schema version 7 (the previous program) is upgraded in place: its live
    /// event and sessions read back without source ids or screen fields, and take them from then on.
    @Test(arguments: Backend.allCases) func versionSevenDatabaseUpgrades(_ backend: Backend) async throws {
        try await withDatabase(backend) { database in
            try await withOpened(database, migrate: false) { old in
                let db = old.store.database
                try await applyMigrations(upTo: 7, on: db)
                #expect(try await old.schemaVersion() == 7)
                // Rows as version 7 wrote them.
                try await db.insert(into: "events")
                    .columns("event_id", "host_user_id", "host_username", "mode", "started_at")
                    .values("e1", "h1", "Hana", "screen", Int64(1_000))
                    .run()
                try await db.insert(into: "event_participants")
                    .columns("event_id", "connection_id", "user_id", "username", "role", "verified", "joined_at")
                    .values("e1", Int64(2), "uma", "Uma", "cohost", true, Int64(1_100))
                    .run()
                #expect(try await tableColumns("event_participants", on: db).contains("source_id") == false)
            }
            try await withOpened(database) { new in
                let db = new.store.database
                #expect(try await new.schemaVersion() == SQLEventStore.latestSchemaVersion && SQLEventStore.latestSchemaVersion >= 8)
                #expect(try await tableColumns("event_participants", on: db).last == "source_id")
                #expect(try await tableColumns("events", on: db).suffix(4) == ["screen_codec", "screen_width", "screen_height", "screen_description"])
                let name = try await db.select().column("name").from("airwave_schema_versions").where("version", .equal, 8)
                    .first(decodingColumn: "name", as: String.self)
                #expect(name == "co-hosts' source ids and the screen's codec fields")

                var event = try #require(try await new.event(id: "e1"))
                #expect(event.isLive && event.mode == "screen" && event.screen == nil)
                #expect(event.participants.map(\.sourceID) == [nil])

                try await new.write([
                    .roleChanged(eventID: "e1", connectionID: 2, role: .cohost, sourceID: 2, at: 1_200),
                    .modeChanged(eventID: "e1", mode: "screen", screen: StoredScreen(codec: "vp8", width: 320, height: 180), at: 1_300),
                ])
                event = try #require(try await new.event(id: "e1"))
                #expect(event.participants.map(\.sourceID) == [2])
                #expect(event.screen == StoredScreen(codec: "vp8", width: 320, height: 180))
                try await new.migrate()
                #expect(try await new.event(id: "e1") == event)
            }
        }
    }
}
