import Foundation
import Logging
import SQLiteKit
import SQLKit

/// An ``EventStore`` in a SQLite file.
///
/// Owns one SQLite connection, plus the thread pool its blocking calls run on and the event loop
/// group its futures use; ``shutdown()`` closes all three. The SQL itself lives in
/// ``SQLEventStore``, which this type configures for a single connection.
///
/// The file is opened in WAL mode with `synchronous=NORMAL`: once ``write(_:)`` returns, its
/// records survive the process being killed (a power loss may lose the last commits).
public final class SQLiteEventStore: SQLBackedStore {
    /// How long a statement waits for a lock held by another connection before failing.
    public static let busyTimeoutMillis = 5_000

    /// The generic store doing the queries.
    public let store: SQLEventStore
    /// The database file, or `nil` for an in-memory database.
    public let path: String?
    private let connection: SQLiteConnection
    private let threadPool: NIOThreadPool
    private let eventLoopGroup: MultiThreadedEventLoopGroup

    private init(
        store: SQLEventStore,
        path: String?,
        connection: SQLiteConnection,
        threadPool: NIOThreadPool,
        eventLoopGroup: MultiThreadedEventLoopGroup
    ) {
        self.store = store
        self.path = path
        self.connection = connection
        self.threadPool = threadPool
        self.eventLoopGroup = eventLoopGroup
    }

    /// Opens (creating if needed) the database file at `path`, creating its parent folder if
    /// missing, and sets it up (WAL journal, `synchronous=NORMAL`, foreign keys on, busy
    /// timeout). Call ``migrate()`` next.
    public static func open(path: String, logger: Logger) async throws -> SQLiteEventStore {
        let parent = URL(fileURLWithPath: path).deletingLastPathComponent()
        try FileManager.default.createDirectory(at: parent, withIntermediateDirectories: true)
        return try await open(storage: .file(path: path), path: path, logger: logger)
    }

    /// Opens a fresh in-memory database (gone at ``shutdown()``), for tests.
    public static func openInMemory(
        logger: Logger = Logger(label: "airwave.store")
    ) async throws -> SQLiteEventStore {
        try await open(storage: .memory, path: nil, logger: logger)
    }

    private static func open(
        storage: SQLiteConnection.Storage,
        path: String?,
        logger: Logger
    ) async throws -> SQLiteEventStore {
        let threadPool = NIOThreadPool(numberOfThreads: 1)
        threadPool.start()
        let eventLoopGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var connection: SQLiteConnection?
        do {
            let opened = try await SQLiteConnection.open(
                storage: storage,
                threadPool: threadPool,
                logger: logger,
                on: eventLoopGroup.next()
            )
            connection = opened
            let database = opened.sql()
            try await configure(database, isFile: path != nil, logger: logger)
            return SQLiteEventStore(
                store: SQLEventStore(database: database, logger: logger, singleConnection: true),
                path: path,
                connection: opened,
                threadPool: threadPool,
                eventLoopGroup: eventLoopGroup
            )
        } catch {
            try? await connection?.close()
            try? await threadPool.shutdownGracefully()
            try? await eventLoopGroup.shutdownGracefully()
            throw error
        }
    }

    /// Sets the connection's pragmas.
    private static func configure(_ database: any SQLDatabase, isFile: Bool, logger: Logger) async throws {
        let mode = try await database.raw("PRAGMA journal_mode=WAL")
            .first(decodingColumn: "journal_mode", as: String.self)
        if isFile, mode?.lowercased() != "wal" {
            logger.warning("SQLite did not switch to WAL", metadata: ["journal_mode": "\(mode ?? "nil")"])
        }
        try await database.raw("PRAGMA synchronous=NORMAL").run()
        try await database.raw("PRAGMA foreign_keys=ON").run()
        try await database.raw("PRAGMA busy_timeout=\(unsafeRaw: String(busyTimeoutMillis))").run()
    }

    // MARK: - Closing

    /// Waits for the operation in progress, then closes the connection, the thread pool and
    /// the event loop group. Later calls of the other methods throw ``EventStoreError/closed``;
    /// calling it again does nothing.
    public func shutdown() async throws {
        guard await store.closeGate() else { return }
        var firstError: (any Error)?
        do { try await connection.close() } catch { firstError = firstError ?? error }
        do { try await threadPool.shutdownGracefully() } catch { firstError = firstError ?? error }
        do { try await eventLoopGroup.shutdownGracefully() } catch { firstError = firstError ?? error }
        if let firstError { throw firstError }
    }
}
