import Logging
import NIOConcurrencyHelpers
import SQLKit

/// An ``EventStore`` on top of any SQLKit database, written with SQLKit's query builders only,
/// so that the same code runs on SQLite and PostgreSQL.
///
/// The store does not own the database: ``shutdown()`` stops the store from being used but
/// leaves closing the database to whoever opened it (as ``SQLiteEventStore`` does).
///
/// Transactions are run with plain `BEGIN` / `COMMIT` / `ROLLBACK` inside
/// `SQLDatabase.withSession(_:)`, so the database handed in must either be a single connection
/// or pin one connection for the duration of a session (as postgres-kit's pooled database
/// does). The store runs one transaction at a time (per store value and its copies), which also
/// keeps records in the order they were written. On a pool, each read runs in a session of its
/// own, in a read-only transaction (repeatable read on PostgreSQL), so that a read of several
/// statements sees one snapshot.
public struct SQLEventStore: EventStore {
    /// The database the store queries.
    public let database: any SQLDatabase
    /// Where the store reports migrations.
    public let logger: Logger
    /// Whether reads also wait for a running transaction (see ``init(database:logger:singleConnection:)``).
    public let singleConnection: Bool
    /// Tells a lost connection from a failed statement; nil: never retry.
    let isConnectionLost: (@Sendable (any Error) -> Bool)?
    /// Longest a call may take before it fails with ``EventStoreError/timedOut(seconds:)``; nil:
    /// no deadline (SQLite, whose one local file cannot stop answering).
    var operationDeadline: Duration?
    let gate = SerialGate()
    /// Operations raced against their deadline, still running (closing waits for them).
    let inFlight = InFlightOperations()
    /// How long closing waits for operations still running.
    static let drainPatience: Duration = .seconds(2)

    /// Creates a store on `database`; call ``migrate()`` before using it.
    ///
    /// - Parameters:
    ///   - database: The database to use; see the type's documentation about sessions.
    ///   - logger: Where the store reports migrations.
    ///   - singleConnection: `true` when `database` is one connection (as with SQLite): reads
    ///     then wait for a running transaction, so they never see its uncommitted rows. Pass
    ///     `false` for a connection pool, where reads may run beside a transaction.
    public init(database: any SQLDatabase, logger: Logger, singleConnection: Bool) {
        self.init(database: database, logger: logger, singleConnection: singleConnection, isConnectionLost: nil)
    }

    /// Creates a store that retries a call once when `isConnectionLost` says its error means the
    /// connection went away (a pooled connection the database closed while it was idle); never
    /// after a `COMMIT` was sent, whose outcome is then unknown.
    public init(
        database: any SQLDatabase, logger: Logger, singleConnection: Bool,
        isConnectionLost: (@Sendable (any Error) -> Bool)?
    ) {
        self.database = database
        self.logger = logger
        self.singleConnection = singleConnection
        self.isConnectionLost = isConnectionLost
    }

    // MARK: - EventStore

    /// Creates or upgrades the schema (versioned migrations table; idempotent; runs at start).
    ///
    /// Throws ``EventStoreError/schemaTooNew(found:supported:)`` when a newer program already
    /// migrated the database further than ``latestSchemaVersion``.
    public func migrate() async throws {
        try await runMigrations()
    }

    /// The highest schema version applied to the database. Call it after ``migrate()``;
    /// before the first migration it fails, since the versions table does not exist yet.
    public func schemaVersion() async throws -> Int {
        try await read { db in
            try await Self.currentSchemaVersion(on: db)
        }
    }

    /// Writes the records in order, all in one transaction (all or nothing).
    public func write(_ records: [StoreRecord]) async throws {
        guard !records.isEmpty else {
            try await gate.checkOpen()
            return
        }
        try await transaction { db in
            for record in records {
                try await Self.apply(record, on: db)
            }
        }
    }

    /// The event, live or ended, with every participant session or none; nil if the id never existed.
    public func event(id: String, withParticipants: Bool) async throws -> StoredEvent? {
        try await read { db in
            guard let row = try await db.select()
                .columns("event_id", "host_user_id", "host_username", "mode", "started_at", "ended_at", "end_reason")
                .columns("screen_codec", "screen_width", "screen_height", "screen_description")
                .from(Table.events)
                .where("event_id", .equal, id)
                .first()
            else { return nil }
            let participants = withParticipants ? try await Self.participantRows(eventID: id, after: nil, limit: nil, on: db).map(\.1) : []
            return StoredEvent(
                eventID: try row.decode(column: "event_id", as: String.self),
                hostUserID: try row.decode(column: "host_user_id", as: String.self),
                hostUsername: try row.decode(column: "host_username", as: String.self),
                mode: try row.decode(column: "mode", as: String.self),
                screen: try Self.screen(of: row),
                startedAt: try row.decode(column: "started_at", as: EpochMillis.self),
                endedAt: try row.optional("ended_at", as: EpochMillis.self),
                endReason: try row.optional("end_reason", as: String.self),
                participants: participants
            )
        }
    }

    /// One page of an event's participant sessions in join order; the cursor is the session's row id.
    public func participants(eventID: String, after: Int64?, limit: Int) async throws -> ParticipantPage {
        precondition(limit > 0, "a page holds at least one session")
        return try await read { db in
            // One row more than the page tells whether another page follows.
            let rows = try await Self.participantRows(eventID: eventID, after: after, limit: limit + 1, on: db)
            let page = rows.prefix(limit)
            let total = try await db.select()
                .column(SQLFunction("COUNT", args: SQLLiteral.all), as: "total")
                .from(Table.participants)
                .where("event_id", .equal, eventID)
                .first()?
                .decode(column: "total", as: Int.self) ?? 0
            return ParticipantPage(participants: page.map(\.1), next: rows.count > limit ? page.last?.0 : nil, total: total)
        }
    }

    /// Participant sessions with their row ids, in join order.
    private static func participantRows(eventID: String, after: Int64?, limit: Int?, on db: any SQLDatabase) async throws -> [(Int64, StoredParticipant)] {
        var query = db.select()
            .columns("id", "user_id", "username", "role", "verified", "joined_at", "left_at", "source_id")
            .from(Table.participants)
            .where("event_id", .equal, eventID)
        if let after { query = query.where("id", .greaterThan, after) }
        query = query.orderBy("id", .ascending)
        if let limit { query = query.limit(limit) }
        return try await query.all().map { row in
            (
                try row.decode(column: "id", as: Int64.self),
                StoredParticipant(
                    userID: try row.decode(column: "user_id", as: String.self),
                    username: try row.decode(column: "username", as: String.self),
                    role: try row.role("role"),
                    verified: try row.decode(column: "verified", as: Bool.self),
                    joinedAt: try row.decode(column: "joined_at", as: EpochMillis.self),
                    leftAt: try row.optional("left_at", as: EpochMillis.self),
                    sourceID: try row.optional("source_id", as: Int64.self).map(UInt32.init(truncatingIfNeeded:))
                )
            )
        }
    }

    /// The screen codec fields of an events row; nil when none is set.
    private static func screen(of row: any SQLRow) throws -> StoredScreen? {
        let screen = StoredScreen(
            codec: try row.optional("screen_codec", as: String.self),
            width: try row.optional("screen_width", as: Int.self),
            height: try row.optional("screen_height", as: Int.self),
            description: try row.optional("screen_description", as: String.self)
        )
        return screen == StoredScreen() ? nil : screen
    }

    /// Chat of an event, newest last: at most `limit` messages with id < `before`
    /// (or the newest ones if before is nil).
    public func chat(eventID: String, before: Int64?, limit: Int) async throws -> [StoredChatMessage] {
        guard limit > 0 else {
            try await gate.checkOpen()
            return []
        }
        return try await read { db in
            var query = db.select()
                .columns("id", "event_id", "user_id", "username", "message", "sent_at", "verified")
                .from(Table.chat)
                .where("event_id", .equal, eventID)
            if let before {
                query = query.where("id", .lessThan, before)
            }
            let rows = try await query
                .orderBy("id", .descending)
                .limit(limit)
                .all()
            return try rows.reversed().map { row in
                StoredChatMessage(
                    id: try row.decode(column: "id", as: Int64.self),
                    eventID: try row.decode(column: "event_id", as: String.self),
                    userID: try row.decode(column: "user_id", as: String.self),
                    username: try row.decode(column: "username", as: String.self),
                    message: try row.decode(column: "message", as: String.self),
                    sentAt: try row.decode(column: "sent_at", as: EpochMillis.self),
                    verified: try row.decode(column: "verified", as: Bool.self)
                )
            }
        }
    }

    /// Marks every event that is still live as ended (reason given) — used at start after a
    /// crash; returns how many.
    ///
    /// The participant sessions of those events that are still open are closed at `at` too.
    public func endInterruptedEvents(reason: String, at: EpochMillis) async throws -> Int {
        try await endInterruptedEvents(reason: reason, at: at, sparing: [])
    }

    /// Cheap query proving the store answers (for a readiness probe).
    public func ping() async throws {
        try await read { db in
            _ = try await db.raw("SELECT 1 AS ok").all()
        }
    }

    /// Waits for the operation in progress, then refuses every later call with
    /// ``EventStoreError/closed``. Does not close ``database``, which the caller owns.
    /// Calling it again does nothing.
    public func shutdown() async throws {
        _ = await closeGate()
    }

    // MARK: - Internals

    /// Closes the gate after the operation in progress; `false` if it was already closed.
    func closeGate() async -> Bool {
        do {
            try await gate.acquire()
        } catch {
            return false
        }
        await gate.closeWhileHolding()
        await inFlight.drain(patience: Self.drainPatience)
        return true
    }

    /// Runs `body` in one transaction on one session, one transaction at a time.
    func transaction<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        try await gate.run {
            try await withDeadline {
                try await retryingLostConnection {
                    try await database.withSession { db in
                        try await Self.runTransaction(begin: "BEGIN", on: db, body)
                    }
                }
            }
        }
    }

    /// Runs a read: behind the gate on a single connection; on a pool, beside transactions in a
    /// read-only transaction of its own session (one snapshot for all its statements).
    func read<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        if singleConnection {
            return try await gate.run { try await body(database) }
        }
        try await gate.checkOpen()
        let begin: SQLQueryString = database.dialect.name == "postgresql"
            ? "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY" : "BEGIN"
        return try await withDeadline {
            try await retryingLostConnection {
                try await database.withSession { db in
                    try await Self.runTransaction(begin: begin, on: db, body)
                }
            }
        }
    }

    /// Runs `operation`, failing with ``EventStoreError/timedOut(seconds:)`` once
    /// ``operationDeadline`` passes. A statement sent just as the server shut down may never be
    /// answered on its connection; the call (and the gate it holds) must not wait for it forever.
    /// The abandoned operation is cancelled and ends on its own; so is the call when its caller's
    /// task is cancelled (a shutdown that must not wait for the deadline).
    private func withDeadline<T: Sendable>(_ operation: @escaping @Sendable () async throws -> T) async throws -> T {
        guard let deadline = operationDeadline else { return try await operation() }
        let outcome = DeadlineOutcome<T>()
        let work = NIOLockedValueBox<Task<Void, Never>?>(nil)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                outcome.start(continuation)
                // Cancelled before it began: nothing to start.
                if outcome.isSettled { return }
                let running = inFlight.start {
                    do { outcome.finish(.success(try await operation())) } catch { outcome.finish(.failure(error)) }
                }
                work.withLockedValue { $0 = running }
                let timer = Task {
                    try await Task.sleep(for: deadline)
                    if outcome.finish(.failure(EventStoreError.timedOut(seconds: Int(deadline.components.seconds)))) { running.cancel() }
                }
                outcome.onFinish { timer.cancel() }
            }
        } onCancel: {
            if outcome.finish(.failure(CancellationError())) { work.withLockedValue { $0 }?.cancel() }
        }
    }

    /// A `COMMIT` that failed: whether it took effect is unknown, so the call is not retried.
    private struct CommitFailed: Error {
        let underlying: any Error
    }

    /// `BEGIN`, `body`, `COMMIT` on one session; `ROLLBACK` when something fails.
    private static func runTransaction<T: Sendable>(
        begin: SQLQueryString, on db: any SQLDatabase,
        _ body: @escaping @Sendable (any SQLDatabase) async throws -> T
    ) async throws -> T {
        try await db.raw(begin).run()
        let result: T
        do {
            result = try await body(db)
        } catch {
            await rollback(on: db)
            throw error
        }
        do {
            try await db.raw("COMMIT").run()
        } catch {
            // SQLite leaves the transaction open when COMMIT fails (e.g. busy).
            await rollback(on: db)
            throw CommitFailed(underlying: error)
        }
        return result
    }

    private static func rollback(on db: any SQLDatabase) async {
        do {
            try await db.raw("ROLLBACK").run()
        } catch let rollbackError {
            db.logger.error(
                "event store rollback failed",
                metadata: ["error": "\(String(reflecting: rollbackError))"]
            )
        }
    }

    /// Runs `operation`, and once more if it failed because its connection was lost before a
    /// `COMMIT` was sent (nothing of it was stored then).
    private func retryingLostConnection<T: Sendable>(_ operation: () async throws -> T) async throws -> T {
        do {
            return try await operation()
        } catch let error as CommitFailed {
            throw error.underlying
        } catch {
            guard let isConnectionLost, isConnectionLost(error) else { throw error }
            logger.warning("event store connection lost; retrying on a new one", metadata: ["error": "\(String(reflecting: error))"])
            do {
                return try await operation()
            } catch let error as CommitFailed {
                throw error.underlying
            }
        }
    }

    /// Applies one record inside a transaction.
    static func apply(_ record: StoreRecord, on db: any SQLDatabase) async throws {
        switch record {
        case let .eventStarted(eventID, hostUserID, hostUsername, mode, at):
            try await db.insert(into: Table.events)
                .columns("event_id", "host_user_id", "host_username", "mode", "started_at")
                .values(eventID, hostUserID, hostUsername, mode, at)
                .run()

        case let .eventEnded(eventID, reason, at):
            try await db.update(Table.participants)
                .set("left_at", to: at)
                .where("event_id", .equal, eventID)
                .where("left_at", .is, SQLLiteral.null)
                .run()
            try await db.update(Table.events)
                .set("ended_at", to: at)
                .set("end_reason", to: reason)
                .where("event_id", .equal, eventID)
                .where("ended_at", .is, SQLLiteral.null)
                .run()

        case let .modeChanged(eventID, mode, screen, _):
            try await db.update(Table.events)
                .set("mode", to: mode)
                .set("screen_codec", to: screen?.codec)
                .set("screen_width", to: screen?.width.map(Int64.init))
                .set("screen_height", to: screen?.height.map(Int64.init))
                .set("screen_description", to: screen?.description)
                .where("event_id", .equal, eventID)
                .run()

        case let .participantJoined(eventID, connectionID, userID, username, role, verified, sourceID, at):
            var columns = ["event_id", "connection_id", "user_id", "username", "role", "verified", "joined_at"]
            var values: [any Encodable & Sendable] = [eventID, connectionID.storedBits, userID, username, role.rawValue, verified, at]
            // Named only when set (most sessions have none), so the insert is the one of version 7 for them.
            if let sourceID {
                columns.append("source_id")
                values.append(Int64(sourceID))
            }
            try await db.insert(into: Table.participants).columns(columns).values(values).run()

        case let .participantLeft(eventID, connectionID, at):
            try await db.update(Table.participants)
                .set("left_at", to: at)
                .where("id", .equal, latestSession(eventID: eventID, connectionID: connectionID, openOnly: true))
                .run()

        case let .roleChanged(eventID, connectionID, role, sourceID, _):
            var update = db.update(Table.participants).set("role", to: role.rawValue)
            if let sourceID { update = update.set("source_id", to: Int64(sourceID)) }
            try await update
                .where("id", .equal, latestSession(eventID: eventID, connectionID: connectionID, openOnly: false))
                .run()

        case let .chat(message):
            try await db.insert(into: Table.chat)
                .columns("event_id", "user_id", "username", "message", "sent_at", "verified")
                .values(message.eventID, message.userID, message.username, message.message, message.sentAt, message.verified)
                .run()
        }
    }

    /// A subquery selecting the id of the most recent session of (eventID, connectionID),
    /// optionally only among sessions that have not left yet.
    static func latestSession(eventID: String, connectionID: UInt64, openOnly: Bool) -> some SQLExpression {
        SQLSubquery.select { query in
            var query = query
                .column("id")
                .from(Table.participants)
                .where("event_id", .equal, eventID)
                .where("connection_id", .equal, connectionID.storedBits)
            if openOnly {
                query = query.where("left_at", .is, SQLLiteral.null)
            }
            return query
                .orderBy("id", .descending)
                .limit(1)
        }
    }
}
