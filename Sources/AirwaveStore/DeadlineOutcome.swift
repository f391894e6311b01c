import NIOConcurrencyHelpers

/// The one result of an operation raced against its deadline: the first `finish` resumes the
/// caller, later ones are ignored.
final class DeadlineOutcome<T: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<T, any Error>?
        var result: Result<T, any Error>?
        var onFinish: (@Sendable () -> Void)?
    }

    private let state = NIOLockedValueBox(State())

    /// Hands over the caller's continuation; resumed at once if the outcome is already known
    /// (the caller was cancelled before the operation started).
    func start(_ continuation: CheckedContinuation<T, any Error>) {
        let settled: Result<T, any Error>? = state.withLockedValue { state in
            if let result = state.result { return result }
            state.continuation = continuation
            return nil
        }
        if let settled { continuation.resume(with: settled) }
    }

    /// Whether the outcome is known.
    var isSettled: Bool { state.withLockedValue { $0.result != nil } }

    /// Runs `action` once the outcome is known (at once if it is).
    func onFinish(_ action: @escaping @Sendable () -> Void) {
        let finished = state.withLockedValue { state in
            if state.result != nil { return true }
            state.onFinish = action
            return false
        }
        if finished { action() }
    }

    /// Settles the outcome; false if it was settled already.
    @discardableResult
    func finish(_ result: Result<T, any Error>) -> Bool {
        let settled = state.withLockedValue { state -> (continuation: CheckedContinuation<T, any Error>?, action: (@Sendable () -> Void)?)? in
            guard state.result == nil else { return nil }
            state.result = result
            defer {
                state.continuation = nil
                state.onFinish = nil
            }
            return (state.continuation, state.onFinish)
        }
        guard let settled else { return false }
        settled.continuation?.resume(with: result)
        settled.action?()
        return true
    }
}
