import AirwaveCore
import AirwaveProtocol
import HummingbirdWebSocket
import NIOConcurrencyHelpers
import NIOCore
import NIOWebSocket

/// One client WebSocket as the relay sees it: writes go straight to the NIO channel on its
/// event loop (no per-message task or actor hop), through the connection's bounded queue
/// (PROTOCOL.md 6); closing goes through the WebSocket handler so the close handshake is done right.
final class ClientConnection: Sendable {
    let id: ConnectionID
    let channel: any Channel
    private let outbound: WebSocketOutboundWriter
    private let metrics: ServerMetrics
    private let closeRequested = NIOLockedValueBox(false)
    /// Touched only on `channel.eventLoop`.
    private let queue: NIOLoopBoundBox<OutboundQueue<WebSocketFrame>>

    init(id: ConnectionID, channel: any Channel, outbound: WebSocketOutboundWriter, metrics: ServerMetrics, queueLimit: Int) {
        self.id = id
        self.channel = channel
        self.outbound = outbound
        self.metrics = metrics
        queue = NIOLoopBoundBox.makeBoxSendingValue(OutboundQueue(limit: queueLimit), eventLoop: channel.eventLoop)
        channel.eventLoop.execute { [self] in
            try? channel.pipeline.syncOperations.addHandler(WritabilityHandler(connection: self), position: .first)
        }
    }

    /// Whether a close has been asked for (no further frames are meant for it).
    var isClosing: Bool { closeRequested.withLockedValue { $0 } }

    /// Sends one pre-encoded control frame (never dropped), from any thread.
    func send(_ frame: WebSocketFrame) {
        if channel.eventLoop.inEventLoop {
            enqueue(frame, class: .control, now: .now())
            channel.flush()
        } else {
            channel.eventLoop.execute { [self] in
                enqueue(frame, class: .control, now: .now())
                channel.flush()
            }
        }
    }

    /// Sends a JSON message.
    func send(_ message: JSONValue) {
        send(WebSocketFrame.text(message))
    }

    /// Writes now if the socket takes it and nothing waits, else queues by the rules of
    /// `OutboundQueue`. Call on the event loop; the caller flushes.
    func enqueue(_ frame: WebSocketFrame, class itemClass: OutboundQueue<WebSocketFrame>.Class, now: Timestamp) {
        channel.eventLoop.preconditionInEventLoop()
        if queue.value.isEmpty, channel.isWritable {
            channel.write(frame, promise: nil)
            return
        }
        let result = queue.value.push(frame, class: itemClass, size: frame.data.readableBytes, now: now)
        if result.droppedAudio > 0 { metrics.mediaDropped(reason: "slow_listener", count: result.droppedAudio) }
        if result.droppedScreen > 0 { metrics.mediaDropped(reason: "slow_listener", count: result.droppedScreen) }
        if queue.value.isTooSlow(now: now), !isClosing {
            metrics.error(code: ErrorCode.tooSlow.rawValue)
            // Ahead of the queue: the connection is being dropped, what waits no longer matters.
            channel.write(WebSocketFrame.text(ProtocolError(.tooSlow, "The connection could not keep up.").json), promise: nil)
            close(.tooSlow, reason: ErrorCode.tooSlow.rawValue)
        }
    }

    /// Writes what the queue holds while the socket takes it.
    fileprivate func drain() {
        var wrote = false
        while channel.isWritable, let (frame, _) = queue.value.pop() {
            channel.write(frame, promise: nil)
            wrote = true
        }
        if wrote { channel.flush() }
    }

    /// Starts the close handshake with `code`; the channel is closed outright if the peer
    /// does not answer within `timeout`. Only the first call counts.
    func close(_ code: CloseCode, reason: String? = nil, timeout: Duration = .seconds(5)) {
        let first = closeRequested.withLockedValue { requested in
            defer { requested = true }
            return !requested
        }
        guard first else { return }
        let outbound = self.outbound
        let channel = self.channel
        // Queued behind every frame already written, so the error frame always precedes the close.
        channel.eventLoop.execute {
            Task {
                try? await outbound.close(WebSocketErrorCode(codeNumber: Int(code.rawValue)), reason: reason)
            }
            channel.eventLoop.scheduleTask(in: .nanoseconds(Int64(timeout.milliseconds) * 1_000_000)) {
                channel.close(promise: nil)
            }
        }
    }

    /// Closes with `code` from the connection's own handler task, before it returns.
    func closeNow(_ code: CloseCode, reason: String?) async {
        closeRequested.withLockedValue { $0 = true }
        try? await outbound.close(WebSocketErrorCode(codeNumber: Int(code.rawValue)), reason: reason)
    }

    /// Sends the error as the only frame and closes with its close code.
    func refuse(_ error: ProtocolError) {
        send(error.json)
        close(error.code.closeCode ?? .normal, reason: error.code.rawValue)
    }
}

/// Drains a connection's queue when its socket can take more again.
private final class WritabilityHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    let connection: ClientConnection

    init(connection: ClientConnection) { self.connection = connection }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { connection.drain() }
        context.fireChannelWritabilityChanged()
    }
}

extension WebSocketFrame {
    /// A final text frame holding the JSON text of `message`.
    static func text(_ message: JSONValue) -> WebSocketFrame {
        var buffer = ByteBufferAllocator().buffer(capacity: 256)
        message.write(into: &buffer)
        return WebSocketFrame(fin: true, opcode: .text, data: buffer)
    }
}
