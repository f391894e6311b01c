import AirwaveProtocol
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket

/// The fields of a server text message the load generator cares about.
struct ControlMessage: Sendable {
    var type: String
    var eventID: String?
    var userID: String?
    var sourceID: Int?
    var code: String?
    var message: String?

    init?(_ buffer: ByteBuffer) {
        guard let bytes = buffer.getBytes(at: buffer.readerIndex, length: buffer.readableBytes),
              let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any],
              let type = object["type"] as? String else { return nil }
        self.type = type
        eventID = object["event_id"] as? String
        userID = object["user_id"] as? String
        sourceID = (object["source_id"] as? NSNumber)?.intValue
        code = object["code"] as? String
        message = object["message"] as? String
    }

    init(type: String) { self.type = type }
}

/// Send times of every frame the speakers sent, keyed by (speaker, sequence offset). Speaker k
/// numbers its frames from k << 24, so a received frame's sequence names its sender and slot.
///
/// A slot is written once, by the speaker's event loop, before the frame is written to its
/// socket; a listener reads it only after the frame came back through the server, so the
/// kernel's socket calls order the write before the read. Plain loads and stores suffice on
/// the 64-bit platforms this runs on.
final class SendTimeTable: @unchecked Sendable {
    static let sequenceShift: UInt32 = 24
    let speakers: Int
    let capacity: Int
    private let slots: UnsafeMutablePointer<UInt64>

    init(speakers: Int, capacity: Int) {
        precondition(capacity < 1 << 24)
        self.speakers = speakers
        self.capacity = capacity
        slots = .allocate(capacity: speakers * capacity)
        slots.initialize(repeating: 0, count: speakers * capacity)
    }
    deinit { slots.deallocate() }

    static func sequence(speaker: Int, index: Int) -> UInt32 { UInt32(speaker) << sequenceShift | UInt32(index) }

    func set(speaker: Int, index: Int, nanos: UInt64) { slots[speaker * capacity + index] = nanos }

    /// The send time of the frame with `sequence`, 0 when unknown.
    func sendTime(sequence: UInt32) -> UInt64 {
        let speaker = Int(sequence >> Self.sequenceShift), index = Int(sequence & 0xFF_FFFF)
        guard speaker < speakers, index < capacity else { return 0 }
        return slots[speaker * capacity + index]
    }
}

/// What all connections of one event loop share: their latency histograms. Touched only on
/// that loop.
final class LoopState: @unchecked Sendable {
    let loop: EventLoop
    var listenerLatency = LatencyHistogram()
    var speakerLatency = LatencyHistogram()
    var sessions: [Session] = []
    init(loop: EventLoop) { self.loop = loop }
}

/// One WebSocket connection of the load generator (a listener or a speaker) and its counters.
/// Everything mutable is touched only on `loopState.loop`.
final class Session: @unchecked Sendable {
    enum Role: Sendable { case listener, speaker(Int) }

    let role: Role
    let userID: String
    let loopState: LoopState
    let table: SendTimeTable
    let ready: EventLoopPromise<ControlMessage>
    private(set) var isReady = false
    var channel: Channel?
    var connectStarted: UInt64 = 0
    var connectNanos: UInt64 = 0
    var failure: String?

    // Counters.
    var framesReceived = 0
    var bytesReceived = 0
    var textReceived = 0
    var gaps = 0
    var reordered = 0
    var unmatched = 0
    var badFrames = 0
    var closeCode: Int?
    var closed = false
    private var lastSequence: [Int64]
    /// The server-assigned source id seen for each speaker index (first one wins), for checks.
    var sourceIDs: [UInt32?]
    var sourceMismatches = 0
    /// A listener of the event's mix (`?audio=mixed`): frames are counted and their sequence
    /// checked, but not matched to send times (the mix numbers its own packets).
    var countsOnly = false

    // Speakers: control messages and waiters.
    var history: [ControlMessage] = []
    private var waiters: [(match: (ControlMessage) -> Bool, promise: EventLoopPromise<ControlMessage>)] = []
    var autoAcceptInvite = false
    /// Error messages a speaker received after joining ("code: message" → count).
    var errorsReceived: [String: Int] = [:]

    init(role: Role, userID: String, loopState: LoopState, table: SendTimeTable) {
        self.role = role
        self.userID = userID
        self.loopState = loopState
        self.table = table
        ready = loopState.loop.makePromise()
        lastSequence = Array(repeating: -1, count: table.speakers)
        sourceIDs = Array(repeating: nil, count: table.speakers)
    }

    var isSpeaker: Bool { if case .speaker = role { true } else { false } }

    // MARK: inbound

    func onBinary(_ data: ByteBuffer, now: UInt64) {
        var buffer = data
        guard let header = try? MediaFrameHeader.parse(&buffer) else { badFrames += 1; return }
        framesReceived += 1
        bytesReceived += data.readableBytes
        let speaker = Int(header.sequence >> SendTimeTable.sequenceShift)
        if speaker < lastSequence.count {
            let seq = Int64(header.sequence & 0xFF_FFFF)
            let last = lastSequence[speaker]
            if seq == last + 1 { lastSequence[speaker] = seq }
            else if seq > last { gaps += Int(seq - last - 1); lastSequence[speaker] = seq }
            else { reordered += 1 }
            if let known = sourceIDs[speaker] { if known != header.sourceID { sourceMismatches += 1 } }
            else { sourceIDs[speaker] = header.sourceID }
        }
        if countsOnly { return }
        let sent = table.sendTime(sequence: header.sequence)
        if sent == 0 || now < sent { unmatched += 1; return }
        let micros = (now - sent) / 1000
        if isSpeaker { loopState.speakerLatency.record(micros: micros) } else { loopState.listenerLatency.record(micros: micros) }
    }

    func onText(_ data: ByteBuffer, context: ChannelHandlerContext) {
        textReceived += 1
        // Listeners look only at their first messages; a speaker reads every control message.
        guard !isReady || isSpeaker else { return }
        guard let message = ControlMessage(data) else { return }
        if !isReady {
            switch message.type {
            case "stream_link", "stream_state":
                isReady = true
                connectNanos = monotonicNanos() - connectStarted
                ready.succeed(message)
            case "error":
                fail("error \(message.code ?? "?"): \(message.message ?? "")")
                return
            default: break
            }
        }
        if isSpeaker {
            if history.count < 1000 { history.append(message) }
            if message.type == "error" && isReady {
                let key = "\(message.code ?? "?"): \(message.message ?? "")"
                errorsReceived[key, default: 0] += 1
            }
            if message.type == "cohost_invite" && autoAcceptInvite {
                send(text: #"{"type":"accept_cohost"}"#, context: context)
            }
            var remaining: [(match: (ControlMessage) -> Bool, promise: EventLoopPromise<ControlMessage>)] = []
            for waiter in waiters {
                if waiter.match(message) { waiter.promise.succeed(message) } else { remaining.append(waiter) }
            }
            waiters = remaining
        }
    }

    func fail(_ reason: String) {
        if failure == nil { failure = reason }
        if !isReady { isReady = true; ready.fail(BenchError(reason)) }
        channel?.close(promise: nil)
    }

    func onClosed() {
        closed = true
        if !isReady { fail(closeCode.map { "closed with \($0) before joining" } ?? "connection closed before joining") }
        for waiter in waiters { waiter.promise.fail(BenchError("connection closed")) }
        waiters.removeAll()
    }

    // MARK: outbound (on the loop)

    func send(text: String, context: ChannelHandlerContext? = nil) {
        guard let channel else { return }
        let buffer = channel.allocator.buffer(string: text)
        channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .text, maskKey: .random(), data: buffer), promise: nil)
    }

    /// From any thread: sends a text message on the session's loop.
    func sendText(_ text: String) {
        loopState.loop.execute { self.send(text: text) }
    }

    /// From any thread: the first control message (already received or future) that `match`es.
    func waitFor(timeout: TimeAmount, _ match: @escaping @Sendable (ControlMessage) -> Bool) -> EventLoopFuture<ControlMessage> {
        let loop = loopState.loop
        return loop.flatSubmit {
            if let found = self.history.first(where: match) { return loop.makeSucceededFuture(found) }
            let promise = loop.makePromise(of: ControlMessage.self)
            self.waiters.append((match, promise))
            loop.scheduleTask(in: timeout) { promise.fail(BenchError("timed out waiting for a control message")) }
            return promise.futureResult
        }
    }
}

/// The WebSocket side of a session: frames in, pongs and close replies out (masked, as a
/// client must).
final class BenchSocketHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    let session: Session
    private var sentClose = false
    init(session: Session) { self.session = session }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .binary:
            session.onBinary(frame.unmaskedData, now: monotonicNanos())
        case .text:
            session.onText(frame.unmaskedData, context: context)
        case .ping:
            let pong = WebSocketFrame(fin: true, opcode: .pong, maskKey: .random(), data: frame.unmaskedData)
            context.writeAndFlush(wrapOutboundOut(pong), promise: nil)
        case .connectionClose:
            var data = frame.unmaskedData
            if let code = data.readInteger(as: UInt16.self) { session.closeCode = Int(code) }
            if !sentClose {
                sentClose = true
                var reply = context.channel.allocator.buffer(capacity: 2)
                reply.writeInteger(UInt16(1000))
                let close = WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(), data: reply)
                let channel = context.channel
                context.writeAndFlush(wrapOutboundOut(close)).whenComplete { _ in channel.close(promise: nil) }
            } else {
                context.close(promise: nil)
            }
        default:
            break
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        session.onClosed()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        session.fail("\(error)")
        context.close(promise: nil)
    }
}

/// Sends the HTTP upgrade request once connected; an HTTP response that reaches it means the
/// server refused the upgrade. Removed from the pipeline when the upgrade completes.
final class UpgradeRequestHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    let path: String
    let port: Int
    let session: Session
    init(path: String, port: Int, session: Session) { self.path = path; self.port = port; self.session = session }

    func channelActive(context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: "127.0.0.1:\(port)")
        headers.add(name: "Content-Length", value: "0")
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: path, headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let head) = unwrapInboundIn(data) {
            session.fail("upgrade refused: HTTP \(head.status.code)")
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        session.onClosed()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        session.fail("\(error)")
        context.close(promise: nil)
    }
}

/// Opens one WebSocket connection to 127.0.0.1:`port``path` on the session's loop. The
/// session's `ready` promise completes with the first `stream_link`/`stream_state`, or fails
/// (refused, error frame, closed, or `timeout`).
func openSession(_ session: Session, port: Int, path: String, timeout: TimeAmount) {
    let loop = session.loopState.loop
    loop.execute {
        session.connectStarted = monotonicNanos()
        let timer = loop.scheduleTask(in: timeout) { session.fail("timed out after \(timeout.nanoseconds / 1_000_000) ms") }
        session.ready.futureResult.whenComplete { _ in timer.cancel() }
        let bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(timeout)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                let upgrader = NIOWebSocketClientUpgrader(maxFrameSize: 1 << 20, automaticErrorHandling: true) { channel, _ in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(BenchSocketHandler(session: session))
                    }
                }
                let config: NIOHTTPClientUpgradeSendableConfiguration = (
                    upgraders: [upgrader],
                    completionHandler: { context in
                        context.pipeline.removeHandler(name: "aw-upgrade-request", promise: nil)
                    }
                )
                return channel.pipeline.addHTTPClientHandlers(leftOverBytesStrategy: .forwardBytes, withClientUpgrade: config).flatMapThrowing {
                    try channel.pipeline.syncOperations.addHandler(
                        UpgradeRequestHandler(path: path, port: port, session: session), name: "aw-upgrade-request")
                }
            }
        bootstrap.connect(host: "127.0.0.1", port: port).whenComplete { result in
            switch result {
            case .success(let channel):
                session.channel = channel
                if session.failure != nil { channel.close(promise: nil) }
            case .failure(let error):
                session.fail("connect: \(error)")
            }
        }
    }
}
