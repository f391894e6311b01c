import Foundation
import SQLKit
import Testing
import AirwaveStore
import AirwaveTestSupport

@Suite struct MigrationTests {
    @Test func migratingTwiceIsHarmless() async throws {
        try await withStore { store, _ in
            #expect(try await store.schemaVersion() == SQLEventStore.latestSchemaVersion)
            try await store.write([started("e1"), chatRecord("e1", "before")])

            try await store.migrate()
            try await store.migrate()

            #expect(try await store.schemaVersion() == SQLEventStore.latestSchemaVersion)
            let versionRows = try await store.store.database.select()
                .column("version")
                .from("airwave_schema_versions")
                .all(decodingColumn: "version", as: Int.self)
            #expect(versionRows == Array(1...SQLEventStore.latestSchemaVersion))
            #expect(try await store.event(id: "e1")?.eventID == "e1")
            #expect(try await store.recentChat(eventID: "e1", limit: 10).map(\.message) == ["before"])
        }
    }

    @Test func newerSchemaIsRefused() async throws {
        try await withStore { store, _ in
            let future = Int64(SQLEventStore.latestSchemaVersion + 1)
            try await store.store.database.insert(into: "airwave_schema_versions")
                .columns("version", "name", "applied_at")
                .values(future, "from the future", Int64(0))
                .run()
            let error = await thrownError { try await store.migrate() }
            #expect(
                error as? EventStoreError
                    == .schemaTooNew(found: Int(future), supported: SQLEventStore.latestSchemaVersion)
            )
        }
    }

    @Test func indexesExist() async throws {
        try await withStore { store, _ in
            let names = try await store.store.database.raw(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_%' ORDER BY name"
            ).all(decodingColumn: "name", as: String.self)
            #expect(names == [
                "chat_messages_event_id_id_idx", "event_participants_event_connection_idx", "room_chat_room_id_id_idx",
            ])

            let chatIndexColumns = try await store.store.database.raw(
                "SELECT name FROM pragma_index_info('chat_messages_event_id_id_idx') ORDER BY seqno"
            ).all(decodingColumn: "name", as: String.self)
            #expect(chatIndexColumns == ["event_id", "id"])
        }
    }

    @Test func openSetsPragmasAndCreatesParentFolder() async throws {
        let dir = try TemporaryDirectory(prefix: "airwave-store")
        defer { dir.remove() }
        let path = dir.path("nested/deeper/airwave.sqlite")
        let store = try await SQLiteEventStore.open(path: path, logger: testLogger)
        let db = store.store.database
        let journal = try await db.raw("PRAGMA journal_mode").first(decodingColumn: "journal_mode", as: String.self)
        let synchronous = try await db.raw("PRAGMA synchronous").first(decodingColumn: "synchronous", as: Int.self)
        let foreignKeys = try await db.raw("PRAGMA foreign_keys").first(decodingColumn: "foreign_keys", as: Int.self)
        let busyTimeout = try await db.raw("PRAGMA busy_timeout").first(decodingColumn: "timeout", as: Int.self)
        try await store.migrate()
        try await store.write([started("e1")])
        #expect(FileManager.default.fileExists(atPath: path))
        #expect(FileManager.default.fileExists(atPath: path + "-wal"))
        try await store.shutdown()

        #expect(journal == "wal")
        #expect(synchronous == 1)  // NORMAL
        #expect(foreignKeys == 1)
        #expect(busyTimeout == SQLiteEventStore.busyTimeoutMillis)
    }
}
