import Foundation
import SQLKit
import Testing
import AirwaveStore
import AirwaveTestSupport

@Suite struct MigrationTests {
    @Test(arguments: Backend.allCases) func migratingTwiceIsHarmless(_ backend: Backend) async throws {
        try await withStore(backend) { store in
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

    @Test(arguments: Backend.allCases) func newerSchemaIsRefused(_ backend: Backend) async throws {
        try await withStore(backend) { store in
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

    @Test(arguments: Backend.allCases) func indexesExist(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let names = try await indexNames(on: store.store.database)
            #expect(names == [
                "chat_messages_event_id_id_idx", "event_origins_node_id_idx", "event_participants_event_connection_idx",
                "room_chat_room_id_id_idx",
            ])
            #expect(try await indexColumns("event_origins_node_id_idx", on: store.store.database) == ["node_id"])

            let chatIndexColumns = try await indexColumns("chat_messages_event_id_id_idx", on: store.store.database)
            #expect(chatIndexColumns == ["event_id", "id"])
        }
    }

    /// Nodes that start together on one PostgreSQL database migrate it once, one after the
    /// other (an advisory lock), instead of failing on each other's tables.
    @Test func nodesStartingTogetherMigrateOnce() async throws {
        try await withDatabase(.postgres) { database in
            var stores: [any SQLBackedStore] = []
            for _ in 0..<3 { stores.append(try await database.open()) }
            let opened = stores
            do {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for store in opened { group.addTask { try await store.migrate() } }
                    try await group.waitForAll()
                }
                let versions = try await opened[0].store.database.select()
                    .column("version").from("airwave_schema_versions").orderBy("version")
                    .all(decodingColumn: "version", as: Int.self)
                #expect(versions == Array(1...SQLEventStore.latestSchemaVersion))
                for store in opened { try await store.shutdown() }
            } catch {
                for store in opened { try? await store.shutdown() }
                throw error
            }
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
