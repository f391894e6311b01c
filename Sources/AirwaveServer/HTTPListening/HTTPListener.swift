import AirwaveCore
import AirwaveProtocol
import NIOCore

/// One `GET /listen/{eventId}` response as its event sees it (PROTOCOL.md 9): a media-only
/// listener whose body is written straight to the NIO channel on its event loop, below
/// Hummingbird's HTTP encoder, so one pre-framed chunk (``HTTPChunk``) serves every listener
/// of an output, like a relayed WebSocket frame. Its bounded queue follows PROTOCOL.md 6.
///
/// Hummingbird writes the response head and, once ``done`` has succeeded, the last chunk
/// (`0\r\n\r\n`); everything between comes from the event's fan-out.
final class HTTPListener: Sendable {
    let id: ConnectionID
    let channel: any Channel
    /// Completes when the stream is over: succeeds once the end page is written, fails when the
    /// connection went away or was dropped for being too slow.
    let done: EventLoopFuture<Void>
    private let writer: NIOLoopBound<HTTPListenerWriter>

    /// Puts the listener's writer first in the pipeline. Call on the channel's event loop,
    /// before the response head is written.
    init(id: ConnectionID, channel: any Channel, metrics: ServerMetrics, queueLimit: Int, patience: Duration = .seconds(10)) throws {
        self.id = id
        self.channel = channel
        // As for a WebSocket: a fixed socket buffer keeps a stuck listener's backlog in the queue,
        // where the drop rules reach it, not in a kernel buffer grown to megabytes.
        try channel.syncOptions?.setOption(.socketOption(.so_sndbuf), value: Self.socketSendBuffer)
        let promise = channel.eventLoop.makePromise(of: Void.self)
        done = promise.futureResult
        let handler = HTTPListenerWriter(metrics: metrics, queueLimit: queueLimit, patience: patience, done: promise)
        writer = NIOLoopBound(handler, eventLoop: channel.eventLoop)
        try channel.pipeline.syncOperations.addHandler(handler, position: .first)
    }

    /// Writes a chunk now if the socket takes it and nothing waits, else queues it (pages are
    /// `.audio`: the oldest go first; the header pages `.control`). Call on the event loop.
    func deliver(_ chunk: ByteBuffer, class itemClass: OutboundQueue<ByteBuffer>.Class, now: Timestamp) {
        writer.value.deliver(chunk, class: itemClass, now: now)
    }

    /// Ends the stream with `last` (the end-of-stream page), behind everything queued; nothing
    /// is written after it. From any thread.
    func finish(_ last: ByteBuffer) {
        if channel.eventLoop.inEventLoop {
            writer.value.finish(last)
        } else {
            channel.eventLoop.execute { [self] in writer.value.finish(last) }
        }
    }

    /// The most an HTTP listener's queue holds: about 8 s of the 32 kbit/s mix. The stream is
    /// live, so a page later than that is of no use to a player; the server's `sendQueueLimit`
    /// applies when it is smaller.
    static let queueLimit = 32 * 1024
    /// The kernel's share: about 4 s of the mix (a WebSocket's is 64 KiB, for screen frames).
    static let socketSendBuffer: SocketOptionValue = 16 * 1024

    /// Drops the connection without an end (nothing to end it with). From any thread.
    func abort() {
        channel.close(promise: nil)
    }
}

/// Sits first in the pipeline (towards the socket) and owns an HTTP listener's send queue.
/// Hummingbird's own writes (the response head, the final empty chunk) pass through it; the
/// event's chunks wait until the head has gone by, then go out in order or wait in the queue
/// while the socket is full. Runs on the channel's event loop only.
final class HTTPListenerWriter: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    private let metrics: ServerMetrics
    private var context: ChannelHandlerContext?
    private var queue: OutboundQueue<ByteBuffer>
    private var writable = true
    /// Hummingbird's response head has been written: chunks may follow it.
    private var headWritten = false
    /// The end page, once ``finish(_:)`` was called and until it is written.
    private var last: ByteBuffer?
    private var finished = false
    private let done: EventLoopPromise<Void>
    private var completed = false

    init(metrics: ServerMetrics, queueLimit: Int, patience: Duration, done: EventLoopPromise<Void>) {
        self.metrics = metrics
        queue = OutboundQueue(limit: queueLimit, patience: patience)
        self.done = done
    }

    /// Bytes waiting in the queue (tests).
    var queuedBytes: Int { queue.bytes }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        writable = context.channel.isWritable
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        complete(.failure(ChannelError.ioOnClosedChannel))
    }

    func channelInactive(context: ChannelHandlerContext) {
        complete(.failure(ChannelError.ioOnClosedChannel))
        context.fireChannelInactive()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        context.write(data, promise: promise)
        if !headWritten {
            headWritten = true
            drain(context)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        writable = context.channel.isWritable
        if writable { drain(context) }
        context.fireChannelWritabilityChanged()
    }

    func deliver(_ chunk: ByteBuffer, class itemClass: OutboundQueue<ByteBuffer>.Class, now: Timestamp) {
        guard let context, !finished else { return }
        if headWritten, writable, queue.isEmpty {
            context.writeAndFlush(wrapOutboundOut(.byteBuffer(chunk)), promise: nil)
            return
        }
        let result = queue.push(chunk, class: itemClass, size: chunk.readableBytes, now: now)
        if result.droppedAudio > 0 { metrics.mediaDropped(reason: "slow_listener", count: result.droppedAudio) }
        if queue.isTooSlow(now: now) {
            // Nothing can be said to an HTTP client mid-body: the connection just ends.
            metrics.error(code: ErrorCode.tooSlow.rawValue)
            drop(context)
        }
    }

    func finish(_ chunk: ByteBuffer) {
        guard let context, !finished else { return }
        finished = true
        last = chunk
        writeLastIfReady(context)
        guard last != nil else { return }
        // The end waits behind the queue; a listener that still does not read is not waited for.
        let patience = TimeAmount(queue.patience)
        context.eventLoop.assumeIsolated().scheduleTask(in: patience) { [self] in
            if !completed, let context = self.context { drop(context) }
        }
    }

    private func drop(_ context: ChannelHandlerContext) {
        queue = OutboundQueue(limit: queue.limit, patience: queue.patience)
        last = nil
        finished = true
        complete(.failure(ChannelError.outputClosed))
        context.close(promise: nil)
    }

    /// Writes what the queue holds while the socket takes it, then the end page if it waits.
    private func drain(_ context: ChannelHandlerContext) {
        guard headWritten else { return }
        var wrote = false
        while context.channel.isWritable, let (chunk, _) = queue.pop() {
            context.write(wrapOutboundOut(.byteBuffer(chunk)), promise: nil)
            wrote = true
        }
        if wrote { context.flush() }
        writeLastIfReady(context)
    }

    private func writeLastIfReady(_ context: ChannelHandlerContext) {
        guard headWritten, queue.isEmpty, context.channel.isWritable, let chunk = last else { return }
        last = nil
        let promise = context.eventLoop.makePromise(of: Void.self)
        promise.futureResult.assumeIsolated().whenComplete { [self] result in complete(result) }
        context.writeAndFlush(wrapOutboundOut(.byteBuffer(chunk)), promise: promise)
    }

    private func complete(_ result: Result<Void, any Error>) {
        guard !completed else { return }
        completed = true
        done.completeWith(result)
    }
}

/// HTTP/1.1 chunked framing done once per page: `size\r\n`, the bytes, `\r\n`, in one buffer
/// that every listener's socket gets unchanged.
enum HTTPChunk {
    static func frame(_ bytes: [UInt8]) -> ByteBuffer {
        let size = String(bytes.count, radix: 16)
        var buffer = ByteBufferAllocator().buffer(capacity: size.utf8.count + bytes.count + 4)
        buffer.writeString(size)
        buffer.writeStaticString("\r\n")
        buffer.writeBytes(bytes)
        buffer.writeStaticString("\r\n")
        return buffer
    }
}
