import Foundation
import Logging
import SQLKit
import Testing
@testable import AirwaveStore
import AirwaveTestSupport

let testLogger: Logger = {
    var logger = Logger(label: "airwave.store.tests")
    logger.logLevel = .warning
    return logger
}()

/// The databases every store test runs on.
enum Backend: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite
    case postgres

    var testDescription: String { rawValue }

    /// The server the PostgreSQL variants use, e.g. `postgres://postgres@127.0.0.1:55432/postgres`.
    static let postgresURLVariable = "AIRWAVE_TEST_POSTGRES_URL"

    /// Says once per run, on standard error, that the PostgreSQL variants are skipped (Swift
    /// Testing does not print every cancelled case of a parameterized test).
    static let noteSkippedOnce: Void = {
        FileHandle.standardError.write(Data("""
            note: AIRWAVE_TEST_POSTGRES_URL is not set: every PostgreSQL variant of the store tests \
            is skipped (cancelled); tools/test sets it.\n
            """.utf8))
    }()

    static var postgresURL: String? {
        guard let url = ProcessInfo.processInfo.environment[postgresURLVariable], !url.isEmpty else { return nil }
        return url
    }
}

/// One test's own database: a SQLite file in a new temporary folder, or a new PostgreSQL
/// schema (the store's connections get it as their `search_path`). ``open()`` may be called
/// several times, to test what survives a restart.
struct TestDatabase: Sendable {
    let backend: Backend
    /// The SQLite folder; the PostgreSQL variants use it for nothing but may.
    let dir: TemporaryDirectory
    /// The PostgreSQL schema, nil for SQLite.
    let schema: String?

    /// The SQLite file (SQLite only).
    var path: String { dir.path("airwave.sqlite") }

    /// Opens a store on the database, not migrated.
    func open() async throws -> any SQLBackedStore {
        switch backend {
        case .sqlite:
            return try await SQLiteEventStore.open(path: path, logger: testLogger)
        case .postgres:
            return try await PostgresEventStore.open(
                url: try #require(Backend.postgresURL), searchPath: [try #require(schema)], logger: testLogger, maxConnections: 2
            )
        }
    }
}

/// Bounds how many PostgreSQL tests run at once (Swift Testing runs them all in parallel; the
/// server allows 100 connections).
private actor PostgresTestSlots {
    static let shared = PostgresTestSlots(count: 8)
    private var free: Int
    private var waiters: [CheckedContinuation<Void, Never>] = []

    init(count: Int) { free = count }

    func acquire() async {
        if free > 0 {
            free -= 1
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    func release() {
        if waiters.isEmpty {
            free += 1
        } else {
            waiters.removeFirst().resume()
        }
    }
}

/// Runs one statement on the PostgreSQL server outside any test schema.
func postgresAdmin(_ sql: SQLQueryString) async throws {
    let admin = try await PostgresEventStore.open(url: try #require(Backend.postgresURL), logger: testLogger, maxConnections: 1)
    do {
        try await admin.store.database.raw(sql).run()
        try await admin.shutdown()
    } catch {
        try? await admin.shutdown()
        throw error
    }
}

/// Makes a fresh database of `backend` for the test, runs `body`, then removes it. The
/// PostgreSQL variant is skipped (cancelled, with the reason) when
/// `AIRWAVE_TEST_POSTGRES_URL` is not set.
func withDatabase<T>(_ backend: Backend, _ body: (TestDatabase) async throws -> T) async throws -> T {
    let dir = try TemporaryDirectory(prefix: "airwave-store")
    defer { dir.remove() }
    switch backend {
    case .sqlite:
        return try await body(TestDatabase(backend: .sqlite, dir: dir, schema: nil))
    case .postgres:
        guard Backend.postgresURL != nil else {
            Backend.noteSkippedOnce
            try Test.cancel("PostgreSQL variant skipped: set \(Backend.postgresURLVariable) (tools/test sets it)")
        }
        await PostgresTestSlots.shared.acquire()
        let schema = "airwave_test_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        do {
            try await postgresAdmin("CREATE SCHEMA \(ident: schema)")
            let result = try await body(TestDatabase(backend: .postgres, dir: dir, schema: schema))
            try await postgresAdmin("DROP SCHEMA \(ident: schema) CASCADE")
            await PostgresTestSlots.shared.release()
            return result
        } catch {
            try? await postgresAdmin("DROP SCHEMA \(ident: schema) CASCADE")
            await PostgresTestSlots.shared.release()
            throw error
        }
    }
}

/// Opens a migrated store on a fresh database of `backend`, runs `body`, then shuts the store
/// down and removes the database.
func withStore<T>(_ backend: Backend, _ body: (any SQLBackedStore) async throws -> T) async throws -> T {
    try await withDatabase(backend) { database in
        let store = try await database.open()
        do {
            try await store.migrate()
            let result = try await body(store)
            try await store.shutdown()
            return result
        } catch {
            try? await store.shutdown()
            throw error
        }
    }
}

/// Opens a store on `database`, runs `body`, then shuts the store down (also when `body` throws).
func withOpened<T>(_ database: TestDatabase, migrate: Bool = true, _ body: (any SQLBackedStore) async throws -> T) async throws -> T {
    let store = try await database.open()
    do {
        if migrate { try await store.migrate() }
        let result = try await body(store)
        try await store.shutdown()
        return result
    } catch {
        try? await store.shutdown()
        throw error
    }
}

func started(_ id: String, at: EpochMillis = 1_000, mode: String = "open") -> StoreRecord {
    .eventStarted(eventID: id, hostUserID: "host-\(id)", hostUsername: "Host \(id)", mode: mode, at: at)
}

func chatRecord(_ eventID: String, _ text: String, user: String = "u1", at: EpochMillis = 2_000) -> StoreRecord {
    .chat(StoredChatMessage(eventID: eventID, userID: user, username: "User \(user)", message: text, sentAt: at, verified: false))
}

/// Runs `body` and returns the error it threw, or nil.
func thrownError(_ body: () async throws -> Void) async -> (any Error)? {
    do {
        try await body()
        return nil
    } catch {
        return error
    }
}

// MARK: - Schema introspection, as each dialect spells it

/// The indexes the migrations created (not those of primary keys), by name.
func indexNames(on db: any SQLDatabase) async throws -> [String] {
    let query: SQLQueryString = db.dialect.name == "sqlite"
        ? "SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_%' ORDER BY name"
        : """
          SELECT i.relname::text AS name FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
          JOIN pg_namespace n ON n.oid = i.relnamespace
          WHERE n.nspname = current_schema() AND NOT x.indisprimary ORDER BY name
          """
    return try await db.raw(query).all(decodingColumn: "name", as: String.self)
}

/// The columns of an index, in index order.
func indexColumns(_ index: String, on db: any SQLDatabase) async throws -> [String] {
    let query: SQLQueryString = db.dialect.name == "sqlite"
        ? "SELECT name FROM pragma_index_info(\(bind: index)) ORDER BY seqno"
        : """
          SELECT a.attname::text AS name FROM pg_index x
          JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_namespace n ON n.oid = i.relnamespace
          JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = ANY (x.indkey)
          WHERE i.relname = \(bind: index) AND n.nspname = current_schema()
          ORDER BY array_position(x.indkey::int2[], a.attnum)
          """
    return try await db.raw(query).all(decodingColumn: "name", as: String.self)
}

/// The columns of a table, in table order; empty if there is no such table.
func tableColumns(_ table: String, on db: any SQLDatabase) async throws -> [String] {
    let query: SQLQueryString = db.dialect.name == "sqlite"
        ? "SELECT name FROM pragma_table_info(\(bind: table)) ORDER BY cid"
        : """
          SELECT column_name::text AS name FROM information_schema.columns
          WHERE table_schema = current_schema() AND table_name = \(bind: table) ORDER BY ordinal_position
          """
    return try await db.raw(query).all(decodingColumn: "name", as: String.self)
}

/// A database as an earlier program left it: the versions table and the migrations up to
/// `version`, each recorded as applied (what `migrate()` of that program did).
func applyMigrations(upTo version: Int, on db: any SQLDatabase) async throws {
    try await db.create(table: "airwave_schema_versions")
        .column("version", type: .bigint, .primaryKey(autoIncrement: false))
        .column("name", type: .text, .notNull)
        .column("applied_at", type: .bigint, .notNull)
        .run()
    for migration in SQLEventStore.migrations where migration.version <= version {
        try await migration.apply(db)
        try await db.insert(into: "airwave_schema_versions").columns("version", "name", "applied_at")
            .values(Int64(migration.version), migration.name, Int64(0)).run()
    }
}
