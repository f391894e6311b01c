import AirwaveStore
import Foundation
import Logging
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
        #expect(metrics.render().contains("airwave_store_errors_total 1"))
        writer.finish()
        await running.value
        try await store.shutdown()
    }
}
