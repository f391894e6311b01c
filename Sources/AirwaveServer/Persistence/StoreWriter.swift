import AirwaveStore
import Logging
import NIOConcurrencyHelpers

/// Writes records to the store in the order they were enqueued, in batches, off the relay
/// path: enqueueing never waits. `flush()` waits until everything enqueued before it is
/// committed (chat uses it so that no broadcast message can be lost by a crash).
final class StoreWriter: Sendable {
    private struct State {
        var pending: [StoreRecord] = []
        var waiters: [CheckedContinuation<Void, Never>] = []
        var finished = false
    }

    private let store: any EventStore
    private let logger: Logger
    private let metrics: ServerMetrics
    private let state = NIOLockedValueBox(State())
    private let wakeUps: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation

    init(store: any EventStore, logger: Logger, metrics: ServerMetrics) {
        self.store = store
        self.logger = logger
        self.metrics = metrics
        (wakeUps, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Queues records; they are written in order by `run()`.
    func enqueue(_ records: [StoreRecord]) {
        guard !records.isEmpty else { return }
        state.withLockedValue { $0.pending.append(contentsOf: records) }
        wake.yield()
    }

    /// Returns once every record enqueued before the call is committed (or failed and logged).
    func flush() async {
        await withCheckedContinuation { continuation in
            state.withLockedValue { $0.waiters.append(continuation) }
            wake.yield()
        }
    }

    /// Writes batches until `finish()` and the queue is empty.
    func run() async {
        for await _ in wakeUps {
            await drain()
            if state.withLockedValue({ $0.finished && $0.pending.isEmpty }) { break }
        }
        await drain()
    }

    /// Stops `run()` after the queue is written.
    func finish() {
        state.withLockedValue { $0.finished = true }
        wake.yield()
        wake.finish()
    }

    private func drain() async {
        while true {
            let (batch, waiters) = state.withLockedValue { state in
                defer {
                    state.pending.removeAll(keepingCapacity: true)
                    state.waiters.removeAll()
                }
                return (state.pending, state.waiters)
            }
            if batch.isEmpty && waiters.isEmpty { return }
            if !batch.isEmpty {
                do {
                    try await store.write(batch)
                    metrics.storeWrites.increment(by: Int64(batch.count))
                } catch {
                    metrics.storeErrors.increment()
                    logger.error("store write failed", metadata: ["records": "\(batch.count)", "error": "\(error)"])
                }
            }
            for waiter in waiters { waiter.resume() }
        }
    }
}
