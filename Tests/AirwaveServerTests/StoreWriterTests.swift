import AirwaveStore
import Foundation
import Logging
import NIOConcurrencyHelpers
import Testing

@testable import AirwaveServer

@Suite struct StoreWriterTests {
    /// Records go out in order; `flush()` returns only once everything before it is committed.
    @Test func flushWaitsForEverythingEnqueuedBefore() async throws {
        let store = try await SQLiteEventStore.openInMemory()
        try await store.migrate()
        let writer = StoreWriter(store: store, logger: Logger(label: "test"), metrics: ServerMetrics())
        let running = Task { await writer.run() }
        writer.enqueue([.eventStarted(eventID: "e1", hostUserID: "h", hostUsername: "H", mode: "audio", at: 1)])
        for i in 0..<50 {
            writer.enqueue([.chat(StoredChatMessage(eventID: "e1", userID: "u", username: "U", message: "m\(i)", sentAt: Int64(10 + i), verified: false))])
        }
        await writer.flush()
        let chat = try await store.chat(eventID: "e1", before: nil, limit: 100)
        #expect(chat.map(\.message) == (0..<50).map { "m\($0)" })
        writer.finish()
        await running.value
        try await store.shutdown()
    }

    /// A failing batch is logged and counted; later batches still commit and waiters still return.
    @Test func aFailedBatchDoesNotStopTheWriter() async throws {
        let store = try await SQLiteEventStore.openInMemory()
        try await store.migrate()
        let metrics = ServerMetrics()
        let writer = StoreWriter(store: store, logger: Logger(label: "test"), metrics: metrics)
        let running = Task { await writer.run() }
        // Chat for an event that does not exist violates the foreign key: the batch fails.
        writer.enqueue([.chat(StoredChatMessage(eventID: "missing", userID: "u", username: "U", message: "lost", sentAt: 1, verified: false))])
        await writer.flush()
        writer.enqueue([.eventStarted(eventID: "e2", hostUserID: "h", hostUsername: "H", mode: "audio", at: 1)])
        await writer.flush()
        #expect(try await store.event(id: "e2") != nil)
        // Refused twice while the store answers (one retry), then dropped.
        #expect(metrics.render().contains("airwave_store_errors_total 2"))
        writer.finish()
        await running.value
        try await store.shutdown()
    }

    /// While the store is unreachable nothing is dropped: a flush with a deadline says "not yet",
    /// and once the store answers every record is written, in order.
    @Test func recordsWaitForAnUnreachableStore() async throws {
        let store = OutageStore(try await SQLiteEventStore.openInMemory())
        try await store.migrate()
        let writer = StoreWriter(store: store, logger: Logger(label: "test"), metrics: ServerMetrics())
        let running = Task { await writer.run() }
        writer.enqueue([.eventStarted(eventID: "e1", hostUserID: "h", hostUsername: "H", mode: "audio", at: 1)])
        #expect(await writer.flush())
        store.down.withLockedValue { $0 = true }
        for i in 0..<3 { writer.enqueue([chat("e1", "while down \(i)", at: Int64(10 + i))]) }
        #expect(await writer.flush(within: .milliseconds(300)) == false)
        // Known to be unreachable now: the next flush with a deadline does not wait for it.
        let begin = ContinuousClock.now
        writer.enqueue([chat("e1", "while down 3", at: 13)])
        #expect(await writer.flush(within: .seconds(60)) == false)
        #expect(ContinuousClock.now - begin < .seconds(30))
        store.down.withLockedValue { $0 = false }
        #expect(await writer.flush())
        #expect(try await store.chat(eventID: "e1", before: nil, limit: 10).map(\.message) == (0..<4).map { "while down \($0)" })
        writer.finish()
        await running.value
        try await store.shutdown()
    }

    /// The queue is bounded: while the store is unreachable the oldest records beyond the bound go.
    @Test func theQueueIsBoundedWhileTheStoreIsUnreachable() async throws {
        let store = OutageStore(try await SQLiteEventStore.openInMemory())
        try await store.migrate()
        let metrics = ServerMetrics()
        let writer = StoreWriter(store: store, logger: Logger(label: "test"), metrics: metrics, pendingLimit: 3)
        let running = Task { await writer.run() }
        writer.enqueue([.eventStarted(eventID: "e1", hostUserID: "h", hostUsername: "H", mode: "audio", at: 1)])
        #expect(await writer.flush())
        store.down.withLockedValue { $0 = true }
        // The first is taken by the writer at once and kept; of the next ones only the newest 3 fit.
        writer.enqueue([chat("e1", "first", at: 10)])
        #expect(await writer.flush(within: .milliseconds(100)) == false)
        for i in 0..<5 { writer.enqueue([chat("e1", "m\(i)", at: Int64(20 + i))]) }
        store.down.withLockedValue { $0 = false }
        #expect(await writer.flush())
        #expect(try await store.chat(eventID: "e1", before: nil, limit: 10).map(\.message) == ["first", "m2", "m3", "m4"])
        writer.finish()
        await running.value
        try await store.shutdown()
    }

    private func chat(_ eventID: String, _ message: String, at: Int64) -> StoreRecord {
        .chat(StoredChatMessage(eventID: eventID, userID: "u", username: "U", message: message, sentAt: at, verified: false))
    }
}

/// A store that can be made unreachable: while `down`, writes and pings throw.
private final class OutageStore: EventStore {
    struct Unreachable: Error {}
    let inner: SQLiteEventStore
    let down = NIOLockedValueBox(false)

    init(_ inner: SQLiteEventStore) { self.inner = inner }

    private func check() throws { if down.withLockedValue({ $0 }) { throw Unreachable() } }
    func migrate() async throws { try await inner.migrate() }
    func write(_ records: [StoreRecord]) async throws {
        try check()
        try await inner.write(records)
    }
    func event(id: String, withParticipants: Bool) async throws -> StoredEvent? { try await inner.event(id: id, withParticipants: withParticipants) }
    func participants(eventID: String, after: Int64?, limit: Int) async throws -> ParticipantPage {
        try await inner.participants(eventID: eventID, after: after, limit: limit)
    }
    func chat(eventID: String, before: Int64?, limit: Int) async throws -> [StoredChatMessage] {
        try await inner.chat(eventID: eventID, before: before, limit: limit)
    }
    func endInterruptedEvents(reason: String, at: EpochMillis) async throws -> Int { try await inner.endInterruptedEvents(reason: reason, at: at) }
    func ping() async throws {
        try check()
        try await inner.ping()
    }
    func shutdown() async throws { try await inner.shutdown() }
}
