import AirwaveCore
import AirwaveProtocol
import NIOCore
import NIOWebSocket

/// The last handler of an upgraded connection: answers the WebSocket protocol itself (pings,
/// pongs, the close handshake, protocol errors) and hands text and binary messages to the
/// endpoint's `InboundReceiver` once the connection is admitted. It runs on the connection's
/// event loop and holds no task, so an idle listener costs only its channel and this object.
final class WebSocketSession: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = WebSocketFrame

    /// What to run when an admitted connection goes away.
    typealias Departure = @Sendable () -> Void

    private enum State {
        /// The endpoint is checking the request; messages wait here, in order. `left`: the
        /// connection went (or is closing) meanwhile, so the admission must run the departure.
        case admitting(pending: [WebSocketFrame], left: Bool)
        case open(any InboundReceiver, Departure)
        /// Refused or finished: only the close handshake is left.
        case closing
        case closed
    }

    private let connection: ClientConnection
    private let metrics: ServerMetrics
    private let pingInterval: TimeAmount
    private var state: State = .admitting(pending: [], left: false)
    private var pingTask: RepeatedTask?
    /// The payload of the last ping while it is unanswered.
    private var outstandingPing: ByteBuffer?
    /// Messages that may wait during admission before reading pauses.
    private static let pendingLimit = 16

    init(connection: ClientConnection, metrics: ServerMetrics, pingInterval: Duration) {
        self.connection = connection
        self.metrics = metrics
        self.pingInterval = TimeAmount(pingInterval)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        pingTask = context.eventLoop.scheduleRepeatedTask(initialDelay: pingInterval, delay: pingInterval) { _ in
            loopBound.value.pingTick()
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        pingTask?.cancel()
        pingTask = nil
    }

    /// The endpoint admitted the connection: `receiver` gets its messages, `departure` runs once it is gone.
    func admitted(_ receiver: any InboundReceiver, departure: @escaping Departure) {
        guard case .admitting(let pending, let left) = state else { return }
        guard !left else {
            state = .closed
            departure()
            return
        }
        state = .open(receiver, departure)
        // Reading resumes first, so that a rate-limit pause taken by the waiting messages stands.
        if pending.count >= Self.pendingLimit { connection.channel.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in } }
        for frame in pending { deliver(frame) }
    }

    /// The endpoint refused the connection (the error frame and the close are on their way)
    /// or stopped it before admitting.
    func refused() {
        guard case .admitting = state else { return }
        state = .closing
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // Whole messages and control frames only: `WebSocketFrameReader` checked framing,
        // sizes and UTF-8, and joined fragments.
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .connectionClose:
            receivedClose(frame.data)
        case _ where connection.isClosing:
            break  // after our close frame only the peer's close matters (RFC 6455 5.5.1)
        case .ping:
            connection.send(WebSocketWire.frame(opcode: WebSocketWire.pong, payload: frame.data))
        case .pong:
            // Only an echo of the last ping's payload shows the peer is reading (PROTOCOL.md 10).
            if let ping = outstandingPing, frame.data == ping { outstandingPing = nil }
        case .text, .binary:
            switch state {
            case .admitting(var pending, let left):
                pending.append(frame)
                state = .admitting(pending: pending, left: left)
                if pending.count == Self.pendingLimit {
                    context.channel.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in }
                }
            case .open:
                deliver(frame)
            case .closing, .closed:
                break
            }
        default:
            failConnection(.protocolError, reason: "unexpected frame")
        }
    }

    private func deliver(_ frame: WebSocketFrame) {
        guard case .open(let receiver, _) = state, !connection.isClosing else { return }
        // Read together with the message that broke the limit: dropped unparsed, like it.
        guard !readingPaused else {
            metrics.droppedWhileOverLimit()
            return
        }
        let now = Timestamp.now()
        let verdict: InboundVerdict
        if frame.opcode == .text {
            // Validated as it arrived (`WebSocketFrameParser`).
            verdict = receiver.text(String(buffer: frame.data), now: now)
        } else {
            verdict = receiver.binary(frame.data, now: now)
        }
        switch verdict {
        case .keepReading: break
        case .overLimit: pauseReading()
        case .stop:
            // The event or room is over and is closing its connections with its own code
            // (1000 after `stream_ended`, 1001 after `server_shutdown`); close only if it does not.
            leave()
            let connection = self.connection
            connection.channel.eventLoop.scheduleTask(in: .seconds(2)) { connection.close(.normal) }
        case .close(let code, let reason): finish(code, reason: reason)
        }
    }

    /// The peer's close: answers it (unless this side closed first) and closes the socket.
    private func receivedClose(_ payload: ByteBuffer) {
        leave()
        guard !connection.isClosing else {
            // This side closed first: the handshake is complete once our close frame is out.
            connection.closeAfterCloseFrame()
            return
        }
        var payload = payload
        let code = payload.readInteger(as: UInt16.self)
        let oneByte = code == nil && payload.readableBytes == 1
        let reasonValid = payload.readableBytes == 0 || (try? payload.readUTF8ValidatedString(length: payload.readableBytes)) != nil
        let answer: CloseCode
        if oneByte {
            answer = .protocolError
        } else if let code, !Self.isValidCloseCode(code) {
            answer = .protocolError
        } else if !reasonValid {
            answer = .invalidPayload
        } else {
            answer = .normal
        }
        connection.answerClose(answer)
    }

    /// Close codes a peer may send (RFC 6455 7.4).
    private static func isValidCloseCode(_ code: UInt16) -> Bool {
        switch code {
        case 1000...1003, 1007...1011, 3000...4999: true
        default: false
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        metrics.error(code: "socket_error")
        leave()
        context.close(promise: nil)
    }

    /// A protocol violation found by `WebSocketFrameReader` fails the connection with its code.
    /// Hummingbird allows half-closure, so a peer's FIN arrives as `inputClosed`, not as the
    /// channel going inactive: a WebSocket peer that stopped sending is gone.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let violation = event as? WebSocketViolation {
            failConnection(violation.code, reason: violation.reason)
            return
        }
        if let event = event as? ChannelEvent, event == .inputClosed {
            leave()
            context.close(promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        pingTask?.cancel()
        pingTask = nil
        leave()
        // An admission still running finds `left` and runs the departure itself.
        if case .admitting = state {} else { state = .closed }
        context.fireChannelInactive()
    }

    /// Closes after a protocol violation: no more messages are read, and the peer has a short
    /// grace to answer the close (its remaining input is discarded meanwhile).
    private func failConnection(_ code: CloseCode, reason: String) {
        metrics.error(code: "socket_error")
        leave()
        connection.close(code, reason: reason, timeout: Self.violationCloseGrace)
    }

    /// How long a peer that broke the protocol has to answer our close frame.
    static let violationCloseGrace: Duration = .seconds(2)

    /// Starts the close handshake and stops delivering messages.
    private func finish(_ code: CloseCode, reason: String?) {
        leave()
        connection.close(code, reason: reason)
    }

    /// How long a connection over its rate limit is not read from.
    static let overLimitPause: TimeAmount = .milliseconds(100)
    private var readingPaused = false

    /// A sender over its rate limit is not read from for a moment: what it sends meanwhile waits
    /// in its own socket (TCP pushes back on it) instead of costing this event loop, which other
    /// connections share, the work of parsing messages that would only be dropped. Messages
    /// already read in the same batch are dropped without being parsed.
    private func pauseReading() {
        guard !readingPaused, case .open = state else { return }
        readingPaused = true
        let channel = connection.channel
        channel.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in }
        let loopBound = NIOLoopBound(self, eventLoop: channel.eventLoop)
        channel.eventLoop.scheduleTask(in: Self.overLimitPause) {
            loopBound.value.readingPaused = false
            channel.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in }
        }
    }

    /// Tells the endpoint once that the connection is gone.
    private func leave() {
        switch state {
        case .admitting:
            // The admission's result will find this and run the departure itself.
            state = .admitting(pending: [], left: true)
        case .open(_, let departure):
            state = .closing
            departure()
        case .closing, .closed:
            break
        }
    }

    /// Every ping interval: a peer that did not answer the last ping is gone (PROTOCOL.md 6 and
    /// the documented deviation: dropped at the next ping), else ping again.
    private func pingTick() {
        guard !connection.isClosing else { return }
        if outstandingPing != nil {
            metrics.error(code: "ping_timeout")
            leave()
            connection.close(.goingAway, reason: "Ping timeout", timeout: .seconds(1))
            return
        }
        // A payload of its own per ping, so a pong sent blindly (or a stale one) does not count.
        var payload = ByteBufferAllocator().buffer(capacity: 8)
        payload.writeInteger(UInt64.random(in: 0...UInt64.max))
        outstandingPing = payload
        connection.send(WebSocketWire.frame(opcode: WebSocketWire.ping, payload: payload))
    }
}
