import NIOConcurrencyHelpers

/// The ordered inbox of a driver's task (`LiveEventDriver`, `EdgeEventDriver`): one stream of
/// messages, and a flag, set under the same lock `enqueue` takes, that refuses every input once
/// the driver knows it is over (its caller then answers or starts a new driver itself).
final class DriverInbox<Message: Sendable>: Sendable {
    let messages: AsyncStream<Message>
    private let continuation: AsyncStream<Message>.Continuation
    private let over = NIOLockedValueBox(false)

    init() {
        (messages, continuation) = AsyncStream.makeStream(of: Message.self)
    }

    /// Queues an input; false once the driver is over.
    @discardableResult
    func enqueue(_ message: Message) -> Bool {
        over.withLockedValue { over in
            guard !over else { return false }
            if case .enqueued = continuation.yield(message) { return true }
            return false
        }
    }

    /// Queues the driver's own message (a tick, the server going away) even after inputs close.
    func yield(_ message: Message) {
        continuation.yield(message)
    }

    /// True once `close` was called.
    var isOver: Bool { over.withLockedValue { $0 } }

    /// No input is accepted from now on.
    func close() {
        over.withLockedValue { $0 = true }
    }

    /// Ends the stream: the driver's loop ends after what is queued.
    func finish() {
        continuation.finish()
    }
}
