/// Persistence for live audio events: their lifecycle, participants and chat.
///
/// Implementations must be safe to call from any task. ``SQLEventStore`` implements it on top of
/// any SQLKit database; ``SQLiteEventStore`` opens a SQLite file for it.
public protocol EventStore: Sendable {
    /// Creates or upgrades the schema (versioned migrations table; idempotent; runs at start).
    func migrate() async throws

    /// Writes the records in order, all in one transaction (all or nothing).
    ///
    /// When this returns, the records are committed. If any record fails (for example an
    /// `eventStarted` for an id that exists, or a participant or chat record for an unknown
    /// event) the whole batch is rolled back and the error is thrown.
    func write(_ records: [StoreRecord]) async throws

    /// The event, live or ended, with every participant session or with none (`participants`
    /// empty: for callers that page them with `participants(eventID:after:limit:)`); nil if the
    /// id never existed.
    func event(id: String, withParticipants: Bool) async throws -> StoredEvent?

    /// One page of an event's participant sessions in join order: at most `limit` (1 or more)
    /// sessions after the cursor `after` (nil: from the first).
    func participants(eventID: String, after: Int64?, limit: Int) async throws -> ParticipantPage

    /// Chat of an event, newest last: at most `limit` messages with id < `before`
    /// (or the newest ones if before is nil).
    ///
    /// To page backwards, pass the smallest id of the previous page as `before`.
    /// A `limit` of zero or less returns no messages.
    func chat(eventID: String, before: Int64?, limit: Int) async throws -> [StoredChatMessage]

    /// Marks every event that is still live as ended (reason given) — used at start after a
    /// crash; returns how many.
    ///
    /// The participant sessions of those events that are still open are closed at `at` too.
    func endInterruptedEvents(reason: String, at: EpochMillis) async throws -> Int

    /// Cheap query proving the store answers (for a readiness probe).
    func ping() async throws

    /// Closes connections and thread pools.
    ///
    /// Waits for the operation in progress, if any; later calls of the other methods throw
    /// ``EventStoreError/closed``. Calling it again does nothing.
    func shutdown() async throws
}

extension EventStore {
    /// The event with every participant session, live or ended; nil if the id never existed.
    public func event(id: String) async throws -> StoredEvent? {
        try await event(id: id, withParticipants: true)
    }

    /// The last `limit` chat messages of an event, oldest first (same as `chat(before: nil)`).
    public func recentChat(eventID: String, limit: Int) async throws -> [StoredChatMessage] {
        try await chat(eventID: eventID, before: nil, limit: limit)
    }
}
