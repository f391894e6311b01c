import Foundation
import Logging
import NIOCore
import NIOPosix
import PostgresKit
import SQLKit

/// An ``EventStore`` (and ``RoomStore``) in a PostgreSQL database, shared by every node of a
/// cluster.
///
/// Owns a connection pool and the event loop group its connections run on; ``shutdown()``
/// closes both. The SQL itself lives in ``SQLEventStore``, which this type runs over the pool:
/// each transaction pins one pooled connection (`SQLDatabase.withSession`), reads run beside
/// transactions in a repeatable-read snapshot.
///
/// The pool connects lazily and reconnects by itself: while the database is unreachable every
/// call throws within ``connectionTimeout`` (the server answers `503 server_busy`); once it is
/// back, the next call opens a new connection. A call that finds its pooled connection closed
/// by a restart is retried once on a fresh one, unless its `COMMIT` had already been sent.
public final class PostgresEventStore: SQLBackedStore, @unchecked Sendable {
    // @unchecked: the async-kit pool is not marked Sendable but guards its state with a lock
    // and hops to its event loops itself; every stored property is immutable.

    /// How long a call waits for a connection (to open one, or for a free one) before failing.
    public static let connectionTimeout: TimeAmount = .seconds(5)
    /// Longest a whole call may take (waiting for a connection included) before it fails.
    public static let operationDeadline: Duration = .seconds(10)

    /// The generic store doing the queries.
    public let store: SQLEventStore
    /// How the pool connects; a notification listener connects the same way.
    let connectionConfiguration: PostgresConnection.Configuration
    private let pool: EventLoopGroupConnectionPool<PostgresConnectionSource>
    let eventLoopGroup: MultiThreadedEventLoopGroup

    private init(
        store: SQLEventStore,
        connectionConfiguration: PostgresConnection.Configuration,
        pool: EventLoopGroupConnectionPool<PostgresConnectionSource>,
        eventLoopGroup: MultiThreadedEventLoopGroup
    ) {
        self.store = store
        self.connectionConfiguration = connectionConfiguration
        self.pool = pool
        self.eventLoopGroup = eventLoopGroup
    }

    /// Creates a store on the database at `url`, `postgres://USER:PASS@HOST:PORT/DB`
    /// (`?tlsmode=disable|prefer|require` as postgres-kit reads it; `prefer` by default).
    ///
    /// Does not connect: the first call (normally ``migrate()``) does, and throws if the
    /// database is unreachable. Call ``migrate()`` next.
    ///
    /// - Parameters:
    ///   - url: The database URL.
    ///   - searchPath: The schemas the connections use (`SET search_path`); nil: the server's
    ///     default (`public`).
    ///   - logger: Where the store reports migrations and the pool its connection failures.
    ///   - maxConnections: The most connections the pool opens.
    ///   - connectionTimeout: How long a call may wait for a connection before it throws.
    ///   - operationDeadline: Longest a whole call may take before it throws ``EventStoreError/timedOut(seconds:)``.
    /// - Throws: ``EventStoreError/invalidDatabaseURL(_:)`` for a URL postgres-kit cannot read.
    public static func open(
        url: String,
        searchPath: [String]? = nil,
        logger: Logger,
        maxConnections: Int = 8,
        connectionTimeout: TimeAmount = PostgresEventStore.connectionTimeout,
        operationDeadline: Duration = PostgresEventStore.operationDeadline
    ) async throws -> PostgresEventStore {
        var configuration: SQLPostgresConfiguration
        do {
            configuration = try SQLPostgresConfiguration(url: url)
        } catch {
            throw EventStoreError.invalidDatabaseURL(redactingPassword(url))
        }
        configuration.searchPath = searchPath
        return try await open(
            configuration: configuration, logger: logger,
            maxConnections: maxConnections, connectionTimeout: connectionTimeout, operationDeadline: operationDeadline
        )
    }

    /// Creates a store from a postgres-kit configuration (e.g. with a `searchPath`, as the tests
    /// use for a schema of their own). See ``open(url:searchPath:logger:maxConnections:connectionTimeout:operationDeadline:)``.
    public static func open(
        configuration: SQLPostgresConfiguration,
        logger: Logger,
        maxConnections: Int = 8,
        connectionTimeout: TimeAmount = PostgresEventStore.connectionTimeout,
        operationDeadline: Duration = PostgresEventStore.operationDeadline
    ) async throws -> PostgresEventStore {
        precondition(maxConnections > 0, "the pool needs at least one connection")
        var configuration = configuration
        // Bounds the TCP connect (and TLS start-up) to an address that does not answer; the
        // pool's request timeout bounds the whole wait.
        configuration.coreConfiguration.options.connectTimeout = connectionTimeout
        // One loop: the store's traffic is small statements, and a single loop keeps every
        // pooled connection in one per-loop pool, so `maxConnections` is the real limit.
        let eventLoopGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let pool = EventLoopGroupConnectionPool(
            source: PostgresConnectionSource(sqlConfiguration: configuration),
            maxConnectionsPerEventLoop: maxConnections,
            requestTimeout: connectionTimeout,
            logger: logger,
            on: eventLoopGroup
        )
        let database = pool.database(logger: logger).sql()
        var store = SQLEventStore(
            database: database, logger: logger, singleConnection: false, isConnectionLost: isConnectionLost
        )
        store.operationDeadline = operationDeadline
        return PostgresEventStore(
            store: store,
            connectionConfiguration: configuration.coreConfiguration,
            pool: pool,
            eventLoopGroup: eventLoopGroup
        )
    }

    /// Whether `error` says the connection went away (the server restarted or terminated the
    /// backend) rather than that a statement failed: such a call can be retried on a new one.
    static func isConnectionLost(_ error: any Error) -> Bool {
        guard let error = error as? PSQLError else { return false }
        switch error.code {
        case .serverClosedConnection, .uncleanShutdown:
            return true
        case .server:
            // admin_shutdown (pg_terminate_backend, a fast shutdown), crash_shutdown,
            // cannot_connect_now (the server is still starting).
            let state = error.serverInfo?[.sqlState]
            return state == "57P01" || state == "57P02" || state == "57P03"
        default:
            return false
        }
    }

    /// `url` with its password replaced by `***`, for error messages and logs.
    public static func redactingPassword(_ url: String) -> String {
        guard var components = URLComponents(string: url), components.password != nil else { return url }
        components.password = "***"
        return components.string ?? url
    }

    // MARK: - Closing

    /// Waits for the transaction in progress, then closes the pool's connections and the event
    /// loop group. Later calls of the other methods throw ``EventStoreError/closed``; calling it
    /// again does nothing.
    public func shutdown() async throws {
        guard await store.closeGate() else { return }
        var firstError: (any Error)?
        do { try await pool.shutdownAsync() } catch { firstError = firstError ?? error }
        do { try await eventLoopGroup.shutdownGracefully() } catch { firstError = firstError ?? error }
        if let firstError { throw firstError }
    }
}
