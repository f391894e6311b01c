import AirwaveCore
import AirwaveProtocol
import NIOCore
import Synchronization

/// One client WebSocket as the relay sees it: writes go straight to the NIO channel on its
/// event loop (no per-message task or actor hop), through the connection's bounded queue
/// (PROTOCOL.md 6). Closing asks the connection's `WebSocketSession` for the close handshake;
/// its close frame goes behind everything queued before it.
final class ClientConnection: Sendable {
    let id: ConnectionID
    let channel: any Channel
    private let closeRequested = Atomic<Bool>(false)
    /// The raw writer below NIO's WebSocket frame encoder; it owns the queue. Loop-bound.
    private let writer: NIOLoopBound<RawFrameWriter>
    /// The session that runs the close handshake, while it is in the pipeline.
    private let session: NIOLoopBoundBox<WebSocketSession?>

    /// Makes the connection and puts its writer first in the pipeline. Call on the channel's event loop.
    init(id: ConnectionID, channel: any Channel, metrics: ServerMetrics, queueLimit: Int) throws {
        self.id = id
        self.channel = channel
        // A fixed socket send buffer: the kernel would otherwise grow it to megabytes and hold
        // a stuck listener's backlog there, beyond the reach of the queue's drop rules.
        try channel.syncOptions?.setOption(.socketOption(.so_sndbuf), value: Self.socketSendBuffer)
        let handler = RawFrameWriter(metrics: metrics, queueLimit: queueLimit)
        writer = NIOLoopBound(handler, eventLoop: channel.eventLoop)
        session = NIOLoopBoundBox(nil, eventLoop: channel.eventLoop)
        handler.connection = self
        try channel.pipeline.syncOperations.addHandler(handler, position: .first)
    }

    /// Bytes the kernel may hold for this socket (beyond NIO's own 64 KiB high watermark).
    static let socketSendBuffer: SocketOptionValue = 64 * 1024

    /// Whether a close has been asked for (no further frames are meant for it).
    var isClosing: Bool { closeRequested.load(ordering: .relaxed) }

    /// Sends one control frame (never dropped), from any thread.
    func send(_ wire: ByteBuffer) {
        if channel.eventLoop.inEventLoop {
            deliver(wire, class: .control, now: .now())
        } else {
            channel.eventLoop.execute { [self] in
                deliver(wire, class: .control, now: .now())
            }
        }
    }

    /// Sends a JSON message.
    func send(_ message: JSONValue) {
        send(WebSocketWire.text(message))
    }

    /// Writes a wire frame now and flushes it if the socket takes it and nothing waits, else
    /// queues it by the rules of `OutboundQueue`. Call on the event loop.
    func deliver(_ wire: ByteBuffer, class itemClass: OutboundQueue<ByteBuffer>.Class, now: Timestamp) {
        if isClosing, itemClass != .control { return }
        writer.value.deliver(wire, class: itemClass, now: now)
    }

    /// How long the oldest frame waiting in the send queue has waited, zero when it is drained
    /// (`OutboundQueue.lag`). Call on the event loop.
    func queueLag(now: Timestamp) -> Duration {
        writer.value.lag(now: now)
    }

    /// Starts the close handshake with `code`; the channel is closed outright if the peer
    /// does not answer within `timeout`. Only the first call counts; call from any thread. On
    /// the event loop the close frame is written at once (behind every frame already sent),
    /// so a close frame of the peer read right after still finds it sent (Autobahn case 9).
    func close(_ code: CloseCode, reason: String? = nil, timeout: Duration = .seconds(5)) {
        guard !closeRequested.exchange(true, ordering: .relaxed) else { return }
        if channel.eventLoop.inEventLoop {
            requestClose(code, reason: reason, timeout: timeout)
        } else {
            // Queued behind every frame already sent, so an error frame always precedes the close.
            channel.eventLoop.execute { [self] in requestClose(code, reason: reason, timeout: timeout) }
        }
    }

    private func requestClose(_ code: CloseCode, reason: String?, timeout: Duration) {
        if let session = session.value {
            session.closeRequested(code, reason: reason, timeout: timeout)
            return
        }
        // No session (a bare connection): just the close frame, and the deadline.
        writer.value.sendClose(WebSocketWire.close(code: code.rawValue, reason: reason), discardQueued: false, promise: nil)
        let channel = self.channel
        channel.eventLoop.scheduleTask(in: TimeAmount(timeout)) { channel.close(promise: nil) }
    }

    /// Writes our close frame, the last frame of the connection; `promise` completes once it is
    /// written to the socket. `discardQueued`: what waits in the queue is dropped and the frame
    /// goes out at once (the peer closed first). For `WebSocketSession`; call on the event loop.
    func writeCloseFrame(_ wire: ByteBuffer, discardQueued: Bool, promise: EventLoopPromise<Void>?) {
        closeRequested.store(true, ordering: .relaxed)
        writer.value.sendClose(wire, discardQueued: discardQueued, promise: promise)
    }

    /// The session that runs this connection's close handshake (nil when it leaves the
    /// pipeline, which breaks the cycle). Call on the event loop.
    func attach(_ session: WebSocketSession?) {
        self.session.value = session
    }

    /// Sends the error as the only frame and closes with its close code.
    func refuse(_ error: ProtocolError) {
        send(error.json)
        close(error.code.closeCode ?? .normal, reason: error.code.rawValue)
    }
}

/// Sits first in the pipeline and owns the connection's send queue: writes pre-built WebSocket
/// frames straight towards the socket (below NIO's frame encoder, so one buffer serves every
/// recipient) and drains the queue when the socket can take more again. Nothing is written
/// after the close frame (RFC 6455 5.5.1). Everything here runs on the connection's event
/// loop, so a fan-out touches this object and the channel only.
final class RawFrameWriter: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    typealias OutboundOut = ByteBuffer
    /// Set right after init and cleared when the handler leaves the pipeline, which breaks the
    /// cycle with the connection. Not `weak`: a weak reference would move every retain of the
    /// connection (one per fan-out write) to the slow side-table path.
    fileprivate var connection: ClientConnection?
    private let metrics: ServerMetrics
    private var context: ChannelHandlerContext?
    private var queue: OutboundQueue<ByteBuffer>
    /// The channel's writability as last reported, kept here to spare a fan-out a look at the channel.
    private var writable = true
    /// Whether the close frame has been written or queued: nothing may follow it.
    private(set) var closeFrameSent = false
    /// Completes when the close frame waiting last in the queue is written.
    private var closeFramePromise: EventLoopPromise<Void>?

    init(metrics: ServerMetrics, queueLimit: Int) {
        self.metrics = metrics
        queue = OutboundQueue(limit: queueLimit)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        writable = context.channel.isWritable
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        connection = nil
        closeFramePromise?.fail(ChannelError.ioOnClosedChannel)
        closeFramePromise = nil
    }

    /// Bytes waiting in the queue (tests).
    var queuedBytes: Int { queue.bytes }

    /// The age of the oldest frame waiting in the queue, zero when it is drained.
    func lag(now: Timestamp) -> Duration { queue.lag(now: now) }

    /// Writes and flushes `wire` when the socket takes it and nothing waits, else queues it.
    func deliver(_ wire: ByteBuffer, class itemClass: OutboundQueue<ByteBuffer>.Class, now: Timestamp) {
        guard let context, !closeFrameSent else { return }  // the channel is gone or closing
        if writable, queue.isEmpty {
            context.writeAndFlush(wrapOutboundOut(wire), promise: nil)
            return
        }
        let result = queue.push(wire, class: itemClass, size: wire.readableBytes, now: now)
        if result.droppedAudio > 0 { metrics.mediaDropped(reason: "slow_listener", count: result.droppedAudio) }
        if result.droppedScreen > 0 { metrics.mediaDropped(reason: "slow_listener", count: result.droppedScreen) }
        if queue.isTooSlow(now: now), let connection, !connection.isClosing {
            metrics.error(code: ErrorCode.tooSlow.rawValue)
            // The connection is being dropped: what waits no longer matters, the error goes ahead.
            queue = OutboundQueue(limit: queue.limit, patience: queue.patience)
            context.writeAndFlush(wrapOutboundOut(WebSocketWire.text(ProtocolError(.tooSlow, "The connection could not keep up.").json)), promise: nil)
            connection.close(.tooSlow, reason: ErrorCode.tooSlow.rawValue)
        }
    }

    /// Writes our close frame, or queues it behind what waits; nothing is written after it.
    /// `discardQueued`: what waits is dropped and the frame written at once. `promise`
    /// completes once the frame is written (fails if it never is).
    func sendClose(_ wire: ByteBuffer, discardQueued: Bool, promise: EventLoopPromise<Void>?) {
        guard let context else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        guard !closeFrameSent else {
            promise?.fail(ChannelError.inappropriateOperationForState)
            return
        }
        closeFrameSent = true
        if discardQueued { queue = OutboundQueue(limit: queue.limit, patience: queue.patience) }
        if discardQueued || (writable && queue.isEmpty) {
            context.writeAndFlush(wrapOutboundOut(wire), promise: promise)
        } else {
            _ = queue.push(wire, class: .control, size: wire.readableBytes, now: .now())
            closeFramePromise = promise
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        writable = context.channel.isWritable
        if writable { drain(context) }
        context.fireChannelWritabilityChanged()
    }

    /// Writes what the queue holds while the socket takes it.
    private func drain(_ context: ChannelHandlerContext) {
        var wrote = false
        while context.channel.isWritable, let (wire, _) = queue.pop() {
            if closeFrameSent, queue.isEmpty {
                // Nothing is queued after the close frame, so the last item is it.
                let promise = closeFramePromise
                closeFramePromise = nil
                context.writeAndFlush(wrapOutboundOut(wire), promise: promise)
                return
            }
            context.write(wrapOutboundOut(wire), promise: nil)
            wrote = true
        }
        if wrote { context.flush() }
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
