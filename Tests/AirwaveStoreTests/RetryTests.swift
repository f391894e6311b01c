import Foundation
import Logging
import NIOCore
import SQLKit
import Testing
@testable import AirwaveStore

/// ``SQLEventStore``'s one retry after a lost connection, made deterministic: a database that
/// passes statements to a real SQLite store but fails chosen ones as if the connection died.
@Suite struct RetryTests {
    /// The store warns at each retry; these tests retry on purpose.
    static let quietLogger: Logger = {
        var logger = Logger(label: "airwave.store.tests.retry")
        logger.logLevel = .error
        return logger
    }()

    /// The error the flaky database throws in place of a statement.
    struct LostConnection: Error {}

    /// Fails the first statement whose SQL starts with each prefix (once per prefix and count).
    final class FlakyDatabase: SQLDatabase, @unchecked Sendable {
        // @unchecked: `pending` is only touched under `lock`.
        let inner: any SQLDatabase
        private let lock = NSLock()
        private var pending: [String]
        private(set) var failed = 0

        init(inner: any SQLDatabase, failing prefixes: [String]) {
            self.inner = inner
            self.pending = prefixes
        }

        var logger: Logger { inner.logger }
        var eventLoop: any EventLoop { inner.eventLoop }
        var version: (any SQLDatabaseReportedVersion)? { inner.version }
        var dialect: any SQLDialect { inner.dialect }

        func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> Void) -> EventLoopFuture<Void> {
            let sql = serialize(query).sql
            let fail = lock.withLock {
                guard let index = pending.firstIndex(where: { sql.hasPrefix($0) }) else { return false }
                pending.remove(at: index)
                failed += 1
                return true
            }
            return fail ? eventLoop.makeFailedFuture(LostConnection()) : inner.execute(sql: query, onRow)
        }
    }

    /// Runs `body` with a store over a flaky database that fails the given statements.
    private func withFlakyStore(
        failing prefixes: [String],
        _ body: (SQLEventStore, FlakyDatabase) async throws -> Void
    ) async throws {
        try await withStore(.sqlite) { base in
            let flaky = FlakyDatabase(inner: base.store.database, failing: prefixes)
            // Not a single connection: the mode of a pool, whose reads are transactions too.
            let store = SQLEventStore(database: flaky, logger: Self.quietLogger, singleConnection: false,
                                      isConnectionLost: { $0 is LostConnection })
            try await body(store, flaky)
        }
    }

    @Test func aTransactionWhoseConnectionIsLostBeforeCommitRunsAgainOnce() async throws {
        // Lost at BEGIN, then (on the retry's own first attempt passing) nothing else fails.
        try await withFlakyStore(failing: ["BEGIN"]) { store, flaky in
            try await store.write([started("e1"), chatRecord("e1", "once")])
            #expect(flaky.failed == 1)
            #expect(try await store.recentChat(eventID: "e1", limit: 10).map(\.message) == ["once"])
        }
        // Lost in the middle of the body: the first attempt is rolled back, the second stores
        // every record exactly once.
        try await withFlakyStore(failing: ["INSERT INTO \"chat_messages\""]) { store, flaky in
            try await store.write([started("e1"), chatRecord("e1", "once")])
            #expect(flaky.failed == 1)
            #expect(try await store.event(id: "e1") != nil)
            #expect(try await store.recentChat(eventID: "e1", limit: 10).map(\.message) == ["once"])
        }
    }

    @Test func aLostCommitIsNotRetried() async throws {
        try await withFlakyStore(failing: ["COMMIT"]) { store, flaky in
            let error = await thrownError { try await store.write([started("e1")]) }
            #expect(error is LostConnection)
            #expect(flaky.failed == 1)
        }
    }

    @Test func aSecondLossInARowIsThrown() async throws {
        try await withFlakyStore(failing: ["BEGIN", "BEGIN"]) { store, flaky in
            #expect(await thrownError { try await store.ping() } is LostConnection)
            #expect(flaky.failed == 2)
            // The next call has a connection again.
            try await store.ping()
        }
    }

    @Test func aReadWhoseConnectionIsLostRunsAgain() async throws {
        try await withFlakyStore(failing: ["SELECT"]) { store, flaky in
            try await store.write([started("e1")])
            #expect(try await store.event(id: "e1")?.eventID == "e1")
            #expect(flaky.failed == 1)
        }
    }

    @Test func aStoreWithoutTheCheckNeverRetries() async throws {
        try await withStore(.sqlite) { base in
            let flaky = FlakyDatabase(inner: base.store.database, failing: ["BEGIN"])
            let store = SQLEventStore(database: flaky, logger: Self.quietLogger, singleConnection: true)
            #expect(await thrownError { try await store.write([started("e1")]) } is LostConnection)
            #expect(flaky.failed == 1)
        }
    }
}
