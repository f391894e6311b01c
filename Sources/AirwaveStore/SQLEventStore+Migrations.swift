import Foundation
import SQLKit

/// One step of the schema, applied once per database in its own transaction.
struct SQLSchemaMigration: Sendable {
    /// Strictly increasing, starting at 1; recorded in the versions table once applied.
    let version: Int
    /// A short description, recorded alongside the version.
    let name: String
    /// Makes the change; runs inside the migration's transaction.
    let apply: @Sendable (any SQLDatabase) async throws -> Void
}

extension SQLEventStore {
    /// The schema version this program creates and understands.
    public static var latestSchemaVersion: Int { migrations.last?.version ?? 0 }

    /// Every migration, oldest first. Append new ones; never edit or reorder applied ones.
    static let migrations: [SQLSchemaMigration] = [
        SQLSchemaMigration(version: 1, name: "events, participants and chat", apply: createInitialSchema),
        SQLSchemaMigration(version: 2, name: "listening rooms and their chat", apply: createRoomsSchema),
        SQLSchemaMigration(version: 3, name: "chat messages say whether the sender was verified", apply: addChatVerified),
        SQLSchemaMigration(version: 4, name: "listening-room state as rows", apply: storeRoomStateAsRows),
        SQLSchemaMigration(version: 5, name: "listening-room log shared by nodes", apply: createRoomLog),
        SQLSchemaMigration(version: 6, name: "cluster nodes and event origins", apply: createClusterSchema),
        SQLSchemaMigration(version: 7, name: "event origins handed over by a stopping node", apply: addOriginHandOver),
        SQLSchemaMigration(version: 8, name: "co-hosts' source ids and the screen's codec fields", apply: addResumeFidelity),
    ]

    /// Version 8: what a resumed event needs to look the same (PROTOCOL.md 8):
    /// `event_participants.source_id`, the user's source id in the event (PROTOCOL.md 2: it
    /// stays with the user), and the screen codec fields of the latest mode change on `events`
    /// (`screen_codec`, `screen_width`, `screen_height`, `screen_description`). Rows stored
    /// before it have none: their co-hosts get new source ids, their screen no fields.
    @Sendable
    static func addResumeFidelity(on db: any SQLDatabase) async throws {
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        try await db.alter(table: Table.participants).column("source_id", type: .bigint).run()
        try await db.alter(table: Table.events).column("screen_codec", type: .text).run()
        try await db.alter(table: Table.events).column("screen_width", type: .bigint).run()
        try await db.alter(table: Table.events).column("screen_height", type: .bigint).run()
        try await db.alter(table: Table.events).column("screen_description", type: .text).run()
    }

    /// Version 7: `event_origins.handed_over_at`, when a node that stopped left the event live for
    /// another node to resume (PROTOCOL.md 8); the host's grace period runs from then.
    @Sendable
    static func addOriginHandOver(on db: any SQLDatabase) async throws {
        try await db.alter(table: ClusterTable.origins)
            .column("handed_over_at", type: .bigint)
            .run()
    }

    /// Version 3: `chat_messages.verified`, whether the sender joined with a token (PROTOCOL.md
    /// 10). Messages stored before it are taken as unverified: nothing proved their ids.
    @Sendable
    static func addChatVerified(on db: any SQLDatabase) async throws {
        try await db.alter(table: Table.chat)
            .column("verified", type: .custom(SQLRaw("BOOLEAN NOT NULL DEFAULT FALSE")))
            .run()
    }

    /// Version 1: the events, event_participants and chat_messages tables and their indexes.
    @Sendable
    static func createInitialSchema(on db: any SQLDatabase) async throws {
        try await db.create(table: Table.events)
            .column("event_id", type: .text, .primaryKey(autoIncrement: false), .notNull)
            .column("host_user_id", type: .text, .notNull)
            .column("host_username", type: .text, .notNull)
            .column("mode", type: .text, .notNull)
            .column("started_at", type: .bigint, .notNull)
            .column("ended_at", type: .bigint)
            .column("end_reason", type: .text)
            .run()

        try await db.create(table: Table.participants)
            .column("id", type: .bigint, autoIncrementPrimaryKey(on: db))
            .column("event_id", type: .text, .notNull, .references(Table.events, "event_id", onDelete: .cascade))
            .column("connection_id", type: .bigint, .notNull)
            .column("user_id", type: .text, .notNull)
            .column("username", type: .text, .notNull)
            .column("role", type: .text, .notNull)
            .column("verified", type: .custom(SQLRaw("BOOLEAN")), .notNull)
            .column("joined_at", type: .bigint, .notNull)
            .column("left_at", type: .bigint)
            .run()
        // Serves both "all sessions of an event" (leftmost prefix) and the
        // (event_id, connection_id) look-up of participantLeft / roleChanged.
        try await db.create(index: "event_participants_event_connection_idx")
            .on(Table.participants)
            .column("event_id")
            .column("connection_id")
            .run()

        try await db.create(table: Table.chat)
            .column("id", type: .bigint, autoIncrementPrimaryKey(on: db))
            .column("event_id", type: .text, .notNull, .references(Table.events, "event_id", onDelete: .cascade))
            .column("user_id", type: .text, .notNull)
            .column("username", type: .text, .notNull)
            .column("message", type: .text, .notNull)
            .column("sent_at", type: .bigint, .notNull)
            .run()
        try await db.create(index: "chat_messages_event_id_id_idx")
            .on(Table.chat)
            .column("event_id")
            .column("id")
            .run()
    }

    /// Version 2: the rooms and room_chat tables of listening rooms, and room_chat's index.
    ///
    /// A room's live state is one JSON text column (``StoredRoomState``; small, always read and
    /// written whole). Room ids are checked to be 1–64 characters, as the protocol requires of
    /// every id. Closing a room marks its chat rows `cleared` rather than deleting them.
    @Sendable
    static func createRoomsSchema(on db: any SQLDatabase) async throws {
        try await db.create(table: Table.rooms)
            .column(
                "room_id", type: .text, .primaryKey(autoIncrement: false), .notNull,
                .check(
                    SQLBetween(
                        operand: SQLFunction("length", args: SQLColumn("room_id")),
                        lowerBound: SQLLiteral.numeric("1"),
                        upperBound: SQLLiteral.numeric("64")
                    )
                )
            )
            .column("host_user_id", type: .text)
            .column("created_at", type: .bigint, .notNull)
            .column("closed_at", type: .bigint)
            .column("state_json", type: .text)
            .run()

        try await db.create(table: Table.roomChat)
            .column("id", type: .bigint, autoIncrementPrimaryKey(on: db))
            .column("room_id", type: .text, .notNull, .references(Table.rooms, "room_id", onDelete: .cascade))
            .column("user_id", type: .text, .notNull)
            .column("name", type: .text, .notNull)
            .column("message", type: .text, .notNull)
            .column("sent_at", type: .bigint, .notNull)
            .column("cleared", type: .custom(SQLRaw("BOOLEAN")), .notNull, .default(false))
            .run()
        try await db.create(index: "room_chat_room_id_id_idx")
            .on(Table.roomChat)
            .column("room_id")
            .column("id")
            .run()
    }

    /// An autoincrementing primary key constraint as the dialect spells it.
    ///
    /// SQLKit leaves SQLite's `INTEGER PRIMARY KEY` as a plain rowid alias, which may reuse the
    /// id of a deleted last row; adding `AUTOINCREMENT` there makes ids never reused, which chat
    /// paging by id relies on. Other dialects get SQLKit's own spelling (e.g. an identity column).
    static func autoIncrementPrimaryKey(on db: any SQLDatabase) -> [SQLColumnConstraintAlgorithm] {
        if db.dialect.name == "sqlite" {
            return [.primaryKey(autoIncrement: true), .custom(SQLRaw("AUTOINCREMENT"))]
        }
        return [.primaryKey(autoIncrement: true)]
    }

    /// Creates the versions table if missing, then applies every pending migration, each in
    /// its own transaction together with the row recording it.
    func runMigrations() async throws {
        try await transaction { db in
            try await Self.lockMigrations(on: db)
            try await db.create(table: Table.schemaVersions)
                .ifNotExists()
                .column("version", type: .bigint, .primaryKey(autoIncrement: false))
                .column("name", type: .text, .notNull)
                .column("applied_at", type: .bigint, .notNull)
                .run()
        }

        let latest = Self.latestSchemaVersion
        for migration in Self.migrations {
            let applied = try await transaction { db in
                try await Self.lockMigrations(on: db)
                let current = try await Self.currentSchemaVersion(on: db)
                if current > latest {
                    throw EventStoreError.schemaTooNew(found: current, supported: latest)
                }
                guard current < migration.version else { return false }
                try await migration.apply(db)
                try await db.insert(into: Table.schemaVersions)
                    .columns("version", "name", "applied_at")
                    .values(Int64(migration.version), migration.name, Self.nowMillis())
                    .run()
                return true
            }
            if applied {
                logger.info(
                    "applied event store migration",
                    metadata: ["version": "\(migration.version)", "name": "\(migration.name)"]
                )
            }
        }
    }

    /// On PostgreSQL, makes nodes that start together migrate one after the other: the lock is
    /// held until the transaction ends, and the version is read after taking it. (SQLite's
    /// `BEGIN` on one file already serialises writers once they write.)
    static func lockMigrations(on db: any SQLDatabase) async throws {
        guard db.dialect.name == "postgresql" else { return }
        // Any constant shared by every node; this one spells "airwave" in its low bytes.
        try await db.raw("SELECT pg_advisory_xact_lock(\(unsafeRaw: String(migrationLockKey)))").run()
    }

    /// The advisory lock key of ``lockMigrations(on:)``.
    static let migrationLockKey: Int64 = 0x61_69_72_77_61_76_65

    /// The highest applied migration version, 0 if none.
    static func currentSchemaVersion(on db: any SQLDatabase) async throws -> Int {
        let row = try await db.select()
            .column(SQLFunction("MAX", args: SQLColumn("version")), as: "version")
            .from(Table.schemaVersions)
            .first()
        guard let row else { return 0 }
        return Int(try row.optional("version", as: Int64.self) ?? 0)
    }

    static func nowMillis() -> EpochMillis {
        EpochMillis((Date().timeIntervalSince1970 * 1000).rounded())
    }
}
