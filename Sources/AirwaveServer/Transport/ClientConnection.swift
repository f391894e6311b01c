import AirwaveCore
import AirwaveProtocol
import NIOConcurrencyHelpers
import NIOCore

/// One client WebSocket as the relay sees it: writes go straight to the NIO channel on its
/// event loop (no per-message task or actor hop), through the connection's bounded queue
/// (PROTOCOL.md 6). Closing sends the close frame behind everything queued before it; the
/// connection's `WebSocketSession` completes the handshake.
final class ClientConnection: Sendable {
    let id: ConnectionID
    let channel: any Channel
    private let metrics: ServerMetrics
    private let closeRequested = NIOLockedValueBox(false)
    /// Touched only on `channel.eventLoop`.
    private let queue: NIOLoopBoundBox<OutboundQueue<ByteBuffer>>
    /// The raw writer below NIO's WebSocket frame encoder; set on the event loop.
    private let writer: NIOLoopBoundBox<RawFrameWriter?>
    /// Whether the close frame has been written: nothing may follow it (RFC 6455 5.5.1).
    private let closeFrameSent: NIOLoopBoundBox<Bool>

    init(id: ConnectionID, channel: any Channel, metrics: ServerMetrics, queueLimit: Int) {
        self.id = id
        self.channel = channel
        self.metrics = metrics
        queue = NIOLoopBoundBox.makeBoxSendingValue(OutboundQueue(limit: queueLimit), eventLoop: channel.eventLoop)
        writer = NIOLoopBoundBox.makeBoxSendingValue(nil, eventLoop: channel.eventLoop)
        closeFrameSent = NIOLoopBoundBox.makeBoxSendingValue(false, eventLoop: channel.eventLoop)
        // Every write of this connection happens on its loop after this (FIFO), so the writer is in place.
        channel.eventLoop.execute { [self] in
            // A fixed socket send buffer: the kernel would otherwise grow it to megabytes and hold
            // a stuck listener's backlog there, beyond the reach of the queue's drop rules.
            _ = try? channel.syncOptions?.setOption(.socketOption(.so_sndbuf), value: Self.socketSendBuffer)
            let handler = RawFrameWriter(connection: self)
            guard (try? channel.pipeline.syncOperations.addHandler(handler, position: .first)) != nil else { return }
            writer.value = handler
        }
    }

    /// Bytes the kernel may hold for this socket (beyond NIO's own 64 KiB high watermark).
    static let socketSendBuffer: SocketOptionValue = 64 * 1024

    /// Whether a close has been asked for (no further frames are meant for it).
    var isClosing: Bool { closeRequested.withLockedValue { $0 } }

    /// Sends one control frame (never dropped), from any thread.
    func send(_ wire: ByteBuffer) {
        if channel.eventLoop.inEventLoop {
            enqueue(wire, class: .control, now: .now())
            flushOnLoop()
        } else {
            channel.eventLoop.execute { [self] in
                enqueue(wire, class: .control, now: .now())
                flushOnLoop()
            }
        }
    }

    /// Sends a JSON message.
    func send(_ message: JSONValue) {
        send(WebSocketWire.text(message))
    }

    /// Writes a wire frame now if the socket takes it and nothing waits, else queues it by the
    /// rules of `OutboundQueue`. Call on the event loop; the caller flushes.
    func enqueue(_ wire: ByteBuffer, class itemClass: OutboundQueue<ByteBuffer>.Class, now: Timestamp) {
        channel.eventLoop.preconditionInEventLoop()
        guard let writer = writer.value, !closeFrameSent.value else { return }  // the channel is gone or closing
        if isClosing, itemClass != .control { return }
        if queue.value.isEmpty, channel.isWritable {
            writer.write(wire)
            return
        }
        let result = queue.value.push(wire, class: itemClass, size: wire.readableBytes, now: now)
        if result.droppedAudio > 0 { metrics.mediaDropped(reason: "slow_listener", count: result.droppedAudio) }
        if result.droppedScreen > 0 { metrics.mediaDropped(reason: "slow_listener", count: result.droppedScreen) }
        if queue.value.isTooSlow(now: now), !isClosing {
            metrics.error(code: ErrorCode.tooSlow.rawValue)
            // The connection is being dropped: what waits no longer matters, the error goes ahead.
            queue.value = OutboundQueue(limit: queue.value.limit, patience: queue.value.patience)
            writer.write(WebSocketWire.text(ProtocolError(.tooSlow, "The connection could not keep up.").json))
            close(.tooSlow, reason: ErrorCode.tooSlow.rawValue)
        }
    }

    /// Flushes what `enqueue` wrote. Call on the event loop.
    func flushOnLoop() {
        if let writer = writer.value { writer.flush() } else { channel.flush() }
    }

    /// Writes what the queue holds while the socket takes it.
    fileprivate func drain() {
        guard let writer = writer.value else { return }
        var wrote = false
        while channel.isWritable, let (wire, _) = queue.value.pop() {
            writer.write(wire)
            wrote = true
        }
        if wrote { writer.flush() }
    }

    /// Starts the close handshake with `code`; the channel is closed outright if the peer
    /// does not answer within `timeout`. Only the first call counts; call from any thread.
    func close(_ code: CloseCode, reason: String? = nil, timeout: Duration = .seconds(5)) {
        let first = closeRequested.withLockedValue { requested in
            defer { requested = true }
            return !requested
        }
        guard first else { return }
        let channel = self.channel
        // Queued behind every frame already sent, so an error frame always precedes the close.
        channel.eventLoop.execute { [self] in
            enqueue(WebSocketWire.close(code: code.rawValue, reason: reason), class: .control, now: .now())
            closeFrameSent.value = true
            flushOnLoop()
            channel.eventLoop.scheduleTask(in: .nanoseconds(Int64(timeout.milliseconds) * 1_000_000)) {
                channel.close(promise: nil)
            }
        }
    }

    /// Answers the peer's close frame with `code` and closes the socket once the answer is
    /// written. Call on the event loop.
    func answerClose(_ code: CloseCode) {
        channel.eventLoop.preconditionInEventLoop()
        closeRequested.withLockedValue { $0 = true }
        guard let writer = writer.value, !closeFrameSent.value else {
            channel.close(promise: nil)
            return
        }
        closeFrameSent.value = true
        // Frames still queued are moot: the peer is leaving.
        queue.value = OutboundQueue(limit: queue.value.limit, patience: queue.value.patience)
        let channel = self.channel
        writer.write(WebSocketWire.close(code: code.rawValue, reason: nil), flushed: true).whenComplete { _ in
            channel.close(promise: nil)
        }
    }

    /// Sends the error as the only frame and closes with its close code.
    func refuse(_ error: ProtocolError) {
        send(error.json)
        close(error.code.closeCode ?? .normal, reason: error.code.rawValue)
    }
}

/// Sits first in the pipeline: writes pre-built WebSocket frames straight towards the socket
/// (below NIO's frame encoder, so one buffer serves every recipient) and drains the
/// connection's queue when the socket can take more again.
final class RawFrameWriter: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    typealias OutboundOut = ByteBuffer
    private let connection: ClientConnection
    private var context: ChannelHandlerContext?

    init(connection: ClientConnection) { self.connection = connection }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func write(_ wire: ByteBuffer) {
        context?.write(wrapOutboundOut(wire), promise: nil)
    }

    /// Writes (and flushes) `wire`; the future completes once it is written or failed.
    func write(_ wire: ByteBuffer, flushed: Bool) -> EventLoopFuture<Void> {
        guard let context else { return connection.channel.eventLoop.makeSucceededVoidFuture() }
        return flushed ? context.writeAndFlush(wrapOutboundOut(wire)) : context.write(wrapOutboundOut(wire))
    }

    /// Flushes from here to the socket: the handlers above hold nothing to flush, so the
    /// flush need not travel the whole pipeline.
    func flush() {
        context?.flush()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { connection.drain() }
        context.fireChannelWritabilityChanged()
    }
}

extension WebSocketWire {
    /// A final text frame holding the JSON text of `message`.
    static func text(_ message: JSONValue) -> ByteBuffer {
        var json = ByteBufferAllocator().buffer(capacity: 256)
        message.write(into: &json)
        return frame(opcode: text, payload: json)
    }
}
