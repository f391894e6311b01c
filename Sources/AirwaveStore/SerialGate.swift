/// First-come-first-served mutual exclusion for async code, which can be closed for good.
///
/// Used to keep one transaction at a time on a connection (and, for single-connection databases,
/// keep reads out of a running transaction), and to let shutdown wait for the operation in progress.
actor SerialGate {
    private var busy = false
    private var closed = false
    private var waiters: [CheckedContinuation<Void, any Error>] = []

    /// Waits for the gate; throws ``EventStoreError/closed`` once it is closed.
    func acquire() async throws {
        if closed { throw EventStoreError.closed }
        if !busy {
            busy = true
            return
        }
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            waiters.append(continuation)
        }
    }

    /// Throws ``EventStoreError/closed`` once the gate is closed.
    func checkOpen() throws {
        if closed { throw EventStoreError.closed }
    }

    /// Hands the gate to the next waiter, or frees it.
    func release() {
        if waiters.isEmpty {
            busy = false
        } else {
            waiters.removeFirst().resume()
        }
    }

    /// Closes the gate; must be called while holding it. Every waiter fails with
    /// ``EventStoreError/closed``, and so does every later ``acquire()``.
    func closeWhileHolding() {
        closed = true
        busy = false
        let pending = waiters
        waiters.removeAll()
        for waiter in pending {
            waiter.resume(throwing: EventStoreError.closed)
        }
    }

    /// Runs `body` while holding the gate.
    nonisolated func run<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        try await acquire()
        do {
            let result = try await body()
            await release()
            return result
        } catch {
            await release()
            throw error
        }
    }
}
