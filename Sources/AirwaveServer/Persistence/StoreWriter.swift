import AirwaveStore
import Logging
import NIOConcurrencyHelpers

/// Writes records to the store in the order they were enqueued, in batches, off the relay
/// path: enqueueing never waits. `flush(within:)` waits until everything enqueued before it is
/// committed (chat uses it so that no broadcast message can be lost by a crash).
///
/// While the store is unreachable (PostgreSQL restarting) a batch is not dropped: it stays at
/// the head of the queue and is written once the store answers again, so what members saw while
/// it was down is stored then (as long as the process lives). A batch the store refuses while it
/// answers (a record that cannot be written) is retried once and then dropped, logged, so that
/// one bad record cannot stop every later one. The queue is bounded (``pendingLimit``).
final class StoreWriter: Sendable {
    private struct Waiter {
        let id: UInt64
        let continuation: CheckedContinuation<Bool, Never>
    }

    private struct State {
        var pending: [StoreRecord] = []
        var waiters: [Waiter] = []
        var nextWaiter: UInt64 = 0
        var finished = false
        /// The last write found the store unreachable (and nothing was written since).
        var unreachable = false
    }

    /// Most records waiting for the store; beyond it the oldest are dropped (logged, counted).
    let pendingLimit: Int
    /// Waits between attempts while the store is unreachable: doubling up to the last.
    static let backoff: [Duration] = [.milliseconds(100), .milliseconds(200), .milliseconds(500), .seconds(1), .seconds(2)]
    /// After `finish()`, how long an unreachable store is waited for before what is left is dropped.
    static let finishPatience: Duration = .seconds(5)

    private let store: any EventStore
    private let logger: Logger
    private let metrics: ServerMetrics
    private let state = NIOLockedValueBox(State())
    private let wakeUps: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation

    init(store: any EventStore, logger: Logger, metrics: ServerMetrics, pendingLimit: Int = 100_000) {
        self.store = store
        self.logger = logger
        self.metrics = metrics
        self.pendingLimit = pendingLimit
        (wakeUps, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Queues records; they are written in order by `run()`.
    func enqueue(_ records: [StoreRecord]) {
        guard !records.isEmpty else { return }
        let dropped = state.withLockedValue { state in
            state.pending.append(contentsOf: records)
            let over = max(0, state.pending.count - pendingLimit)
            state.pending.removeFirst(over)
            return over
        }
        if dropped > 0 {
            metrics.storeErrors.increment()
            logger.error("store unreachable for too long: dropped the oldest waiting records", metadata: ["records": "\(dropped)"])
        }
        wake.yield()
    }

    /// Returns true once every record enqueued before the call is committed, or false when
    /// `deadline` passed first (the records stay queued and are written later). With a deadline
    /// it returns false at once while the store is known to be unreachable: one wait per outage,
    /// not one per message.
    @discardableResult
    func flush(within deadline: Duration? = nil) async -> Bool {
        let id: UInt64? = state.withLockedValue { state in
            if deadline != nil && state.unreachable { return nil }
            state.nextWaiter += 1
            return state.nextWaiter
        }
        guard let id else { return false }
        let timer = deadline.map { deadline in
            Task {
                try await Task.sleep(for: deadline)
                self.resume(id, committed: false)
            }
        }
        defer { timer?.cancel() }
        return await withCheckedContinuation { continuation in
            state.withLockedValue { $0.waiters.append(Waiter(id: id, continuation: continuation)) }
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

    private func resume(_ id: UInt64, committed: Bool) {
        let waiter = state.withLockedValue { state -> Waiter? in
            guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
            return state.waiters.remove(at: index)
        }
        waiter?.continuation.resume(returning: committed)
    }

    private func drain() async {
        while true {
            // Waiters stay listed while their batch is written, so that a deadline can still
            // resume them (`resume(_:committed:)`); each is removed, and resumed, exactly once.
            let (batch, waiterIDs) = state.withLockedValue { state in
                defer { state.pending.removeAll(keepingCapacity: true) }
                return (state.pending, state.waiters.map(\.id))
            }
            if batch.isEmpty && waiterIDs.isEmpty { return }
            if !batch.isEmpty { await write(batch) }
            let done = state.withLockedValue { state in
                let ids = Set(waiterIDs)
                defer { state.waiters.removeAll { ids.contains($0.id) } }
                return state.waiters.filter { ids.contains($0.id) }
            }
            for waiter in done { waiter.continuation.resume(returning: true) }
        }
    }

    /// Writes one batch: until it is written while the store is unreachable; once more, then
    /// dropped, when the store answers but refuses it.
    private func write(_ batch: [StoreRecord]) async {
        var attempt = 0
        var refusedWhileReachable = 0
        var finishedAt: ContinuousClock.Instant?
        while true {
            do {
                try await store.write(batch)
                state.withLockedValue { $0.unreachable = false }
                metrics.storeWrites.increment(by: Int64(batch.count))
                if attempt > 0 { logger.notice("the store answers again: waiting records written", metadata: ["records": "\(batch.count)"]) }
                return
            } catch {
                metrics.storeErrors.increment()
                let reachable = (try? await store.ping()) != nil
                if reachable {
                    refusedWhileReachable += 1
                    guard refusedWhileReachable < 2 else {
                        logger.error("store write failed", metadata: ["records": "\(batch.count)", "error": "\(String(reflecting: error))"])
                        return
                    }
                    continue
                }
                state.withLockedValue { $0.unreachable = true }
                if attempt == 0 {
                    logger.warning("store unreachable: keeping records until it answers", metadata: ["records": "\(batch.count)", "error": "\(String(reflecting: error))"])
                }
                if state.withLockedValue({ $0.finished }) {
                    let since = finishedAt ?? .now
                    finishedAt = since
                    if ContinuousClock.now - since > Self.finishPatience {
                        logger.error("store unreachable at shutdown: records not written", metadata: ["records": "\(batch.count)"])
                        return
                    }
                }
                try? await Task.sleep(for: Self.backoff[min(attempt, Self.backoff.count - 1)])
                attempt += 1
            }
        }
    }
}
