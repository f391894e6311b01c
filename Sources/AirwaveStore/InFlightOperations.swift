import NIOConcurrencyHelpers

/// The store's operations still running, those their callers gave up on included (a cancelled
/// caller, a passed deadline: the work is cancelled but ends on its own, a `ROLLBACK` last).
/// Closing the store waits for them, bounded, before its pool and event loops go: a statement
/// left running would otherwise complete on a loop that is shut down (NIO's "Cannot schedule
/// tasks on an EventLoop that has already shut down", seen at a node's stop).
final class InFlightOperations: Sendable {
    private struct State {
        var next: UInt64 = 0
        var running: [UInt64: Task<Void, Never>] = [:]
        /// Ended before they were entered (the task ran to its end first).
        var endedEarly: Set<UInt64> = []
    }

    private let state = NIOLockedValueBox(State())

    /// Runs `work` as a task of its own, tracked until it ends.
    func start(_ work: @escaping @Sendable () async -> Void) -> Task<Void, Never> {
        let id = state.withLockedValue { state -> UInt64 in
            state.next += 1
            return state.next
        }
        let task = Task {
            await work()
            self.ended(id)
        }
        state.withLockedValue { state in
            if state.endedEarly.remove(id) == nil { state.running[id] = task }
        }
        return task
    }

    private func ended(_ id: UInt64) {
        state.withLockedValue { state in
            if state.running.removeValue(forKey: id) == nil { state.endedEarly.insert(id) }
        }
    }

    /// How many are running (tests).
    var count: Int { state.withLockedValue { $0.running.count } }

    /// Waits until every operation running now has ended, or `patience` has passed. (Awaiting a
    /// task's value ignores cancellation, so the two race in tasks of their own.)
    func drain(patience: Duration) async {
        let tasks = state.withLockedValue { Array($0.running.values) }
        guard !tasks.isEmpty else { return }
        let resumed = NIOLockedValueBox(false)
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let resume: @Sendable () -> Void = {
                if resumed.withLockedValue({ was in defer { was = true }; return !was }) { continuation.resume() }
            }
            let timer = Task {
                try? await Task.sleep(for: patience)
                resume()
            }
            Task {
                for task in tasks { await task.value }
                timer.cancel()
                resume()
            }
        }
    }
}
