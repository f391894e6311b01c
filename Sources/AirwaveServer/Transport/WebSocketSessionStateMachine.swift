import AirwaveProtocol
import NIOCore

/// The WebSocket protocol of one upgraded connection as pure state (Hummingbird's
/// `WebSocketStateMachine` is the model): admission and its waiting messages, the ping and the
/// payload its pong must echo, the read pauses and the close handshake. Each event returns the
/// actions to run, in order; time and the ping payload are inputs, so it runs without a channel.
/// `WebSocketSession` is the driver that feeds it channel events and executes its actions.
///
/// Contract in short: a message reaches the endpoint only once admitted, in arrival order, one
/// at a time (`deliver` is always the last action of a list, and the next one comes from
/// `messageHandled`), and never after a close frame either way; `depart` comes once and only
/// after an admission; exactly one close frame is sent; the channel closes once both close
/// frames crossed and ours is written, or at a deadline.
struct WebSocketSessionStateMachine {
    /// A whole text or binary message (fragments joined, UTF-8 checked by the reader).
    struct Message: Equatable {
        var isText: Bool
        var data: ByteBuffer
    }

    enum Timer: Hashable, CaseIterable {
        /// The next ping, or the verdict on the last one.
        case ping
        /// The end of an over-limit read pause.
        case resumeReading
        /// Our close frame went out; the channel closes if the handshake has not completed by then.
        case closeDeadline
        /// The endpoint stopped (`InboundVerdict.stop`) and closes its connections itself;
        /// close normally if it has not by then.
        case stopGrace
    }

    enum Action: Equatable {
        /// Hand the message to the endpoint, then report its verdict to `messageHandled`.
        case deliver(Message)
        /// Tell the endpoint the connection is gone (runs the admission's departure).
        case depart
        case writePong(ByteBuffer)
        /// A ping whose payload is these 8 bytes, big-endian.
        case sendPing(UInt64)
        /// Our close frame, the last frame written. `discardQueued`: the peer closed first, so
        /// what still waits in the send queue is moot and the answer goes out at once.
        case sendClose(CloseCode, reason: String?, discardQueued: Bool)
        case closeChannel
        case pauseReading
        case resumeReading
        /// (Re)arms the timer; `timerFired` reports it.
        case schedule(Timer, at: NIODeadline)
        /// `airwave_errors_total{code}`.
        case countError(String)
        /// A message read while its sender was over its rate limit, dropped unparsed.
        case countDroppedWhileOverLimit
    }

    /// The coarse state, for tests and logs.
    enum Phase: Equatable {
        /// The endpoint is checking the request; messages wait.
        case admitting
        /// Admitted and no close frame either way.
        case open
        /// A close frame was sent or received, or the endpoint is gone: only the handshake is left.
        case closing
        case closed
    }

    /// Where the endpoint stands.
    enum Endpoint: Equatable {
        /// Messages wait here, in order. `left`: the connection went (or is closing)
        /// meanwhile, so the admission result must run the departure at once.
        case admitting(pending: [Message], left: Bool)
        case open
        /// Departed, refused or never admitted: no more messages for it.
        case gone
    }

    /// The close handshake once either side sent a close frame.
    struct CloseHandshake: Equatable {
        enum Side: Equatable { case server, client }
        /// Who sent the first close frame.
        var closedFirst: Side
        /// The code of our close frame (the answer if the client closed first).
        var code: CloseCode
        /// Our close frame has been written to the socket.
        var frameWritten = false
        /// The client's close frame has arrived.
        var peerClosed: Bool
    }

    /// Why reading is paused, if it is.
    enum ReadPause: Equatable {
        case none
        /// `pendingLimit` messages wait for the admission.
        case admission
        /// The sender went over a rate limit (`overLimitPause`).
        case overLimit
    }

    /// Messages that may wait during admission before reading pauses.
    static let pendingLimit = 16
    /// How long a connection over its rate limit is not read from.
    static let overLimitPause: TimeAmount = .milliseconds(100)
    /// How long a peer that broke the protocol has to answer our close frame.
    static let violationCloseGrace: TimeAmount = .seconds(2)
    /// How long an unanswered ping's peer has to answer our close frame.
    static let pingTimeoutCloseGrace: TimeAmount = .seconds(1)
    /// How long the endpoint has, after `InboundVerdict.stop`, to close with its own code.
    static let stopGrace: TimeAmount = .seconds(2)
    /// The close deadline when nobody asked for another one.
    static let defaultCloseTimeout: TimeAmount = .seconds(5)

    let pingInterval: TimeAmount
    private(set) var endpoint: Endpoint = .admitting(pending: [], left: false)
    private(set) var handshake: CloseHandshake?
    /// The payloads of the pings sent since the peer last answered one (at most two: PROTOCOL.md
    /// 6 closes a connection that has not answered two pings).
    private(set) var outstandingPings: [UInt64] = []
    private(set) var readPause: ReadPause = .none
    private(set) var channelClosed = false
    /// A `deliver` is out and its verdict not yet reported.
    private(set) var delivering = false
    /// Admitted messages not yet delivered (the ones that waited for the admission).
    private var backlog: [Message] = []

    init(pingInterval: TimeAmount) {
        self.pingInterval = pingInterval
    }

    var phase: Phase {
        if channelClosed { return .closed }
        if handshake != nil { return .closing }
        switch endpoint {
        case .admitting: return .admitting
        case .open: return .open
        case .gone: return .closing
        }
    }

    // MARK: Events

    /// The session is on the channel: the ping clock starts.
    mutating func start(now: NIODeadline) -> [Action] {
        [.schedule(.ping, at: now + pingInterval)]
    }

    /// A whole text or binary message arrived.
    mutating func messageReceived(_ message: Message) -> [Action] {
        // After a close frame either way only the close handshake matters (RFC 6455 5.5.1).
        guard !channelClosed, handshake == nil else { return [] }
        switch endpoint {
        case .admitting(var pending, let left):
            guard !left else { return [] }
            pending.append(message)
            endpoint = .admitting(pending: pending, left: false)
            guard pending.count == Self.pendingLimit, readPause == .none else { return [] }
            readPause = .admission
            return [.pauseReading]
        case .open:
            // Read together with the message that broke the limit: dropped unparsed, like it.
            if readPause == .overLimit { return [.countDroppedWhileOverLimit] }
            if delivering || !backlog.isEmpty {
                backlog.append(message)
                return []
            }
            delivering = true
            return [.deliver(message)]
        case .gone:
            return []
        }
    }

    /// The endpoint's verdict on the message of the last `deliver`.
    mutating func messageHandled(_ verdict: InboundVerdict, now: NIODeadline) -> [Action] {
        delivering = false
        switch verdict {
        case .keepReading:
            return nextDelivery()
        case .overLimit:
            var actions: [Action] = []
            if case .open = endpoint, readPause == .none, handshake == nil, !channelClosed {
                // What the sender sends meanwhile waits in its own socket (TCP pushes back)
                // instead of costing this event loop, shared with other connections.
                readPause = .overLimit
                actions = [.pauseReading, .schedule(.resumeReading, at: now + Self.overLimitPause)]
            }
            return actions + nextDelivery()
        case .stop:
            // The event or room is over and closes its connections with its own code (1000
            // after `stream_ended`, 1001 after `server_shutdown`); close only if it does not.
            let actions = leave()
            guard handshake == nil, !channelClosed else { return actions }
            return actions + [.schedule(.stopGrace, at: now + Self.stopGrace)]
        case .close(let code, let reason):
            return leave() + closeLocally(code, reason: reason, timeout: Self.defaultCloseTimeout, now: now)
        }
    }

    /// The endpoint admitted the connection.
    mutating func admitted() -> [Action] {
        guard case .admitting(let pending, let left) = endpoint else { return [] }
        // Reading resumes first, so that a rate-limit pause taken by the waiting messages stands.
        var actions = resumeAfterAdmission()
        if left {
            endpoint = .gone
            return actions + [.depart]
        }
        endpoint = .open
        if handshake == nil, !channelClosed {
            backlog = pending
            actions += nextDelivery()
        }
        return actions
    }

    /// The endpoint refused the connection (its error frame and close are on their way) or
    /// stopped before admitting it: no departure is owed.
    mutating func refused() -> [Action] {
        guard case .admitting = endpoint else { return [] }
        endpoint = .gone
        // The client's answer to the coming close frame must still be read.
        return resumeAfterAdmission()
    }

    mutating func pingReceived(_ payload: ByteBuffer) -> [Action] {
        guard !channelClosed, handshake == nil else { return [] }
        return [.writePong(payload)]
    }

    /// Only an echo of an unanswered ping's payload shows the peer is reading (PROTOCOL.md 10);
    /// a late answer to the first of two pings counts too.
    mutating func pongReceived(_ payload: ByteBuffer) -> [Action] {
        guard handshake == nil, payload.readableBytes == 8,
            let echoed = payload.getInteger(at: payload.readerIndex, as: UInt64.self), outstandingPings.contains(echoed)
        else { return [] }
        outstandingPings.removeAll()
        return []
    }

    /// The client's close frame: answered (unless we closed first), then the socket closes
    /// once our close frame is written (RFC 6455 7.1.1: the server closes TCP first).
    mutating func peerClosed(_ payload: ByteBuffer, now: NIODeadline) -> [Action] {
        let actions = leave()
        guard !channelClosed else { return actions }
        guard var handshake else {
            let answer = Self.answer(toClose: payload)
            self.handshake = CloseHandshake(closedFirst: .client, code: answer, peerClosed: true)
            backlog = []
            return actions + [
                .sendClose(answer, reason: nil, discardQueued: true), .schedule(.closeDeadline, at: now + Self.defaultCloseTimeout),
            ]
        }
        guard !handshake.peerClosed else { return actions }
        handshake.peerClosed = true
        self.handshake = handshake
        return actions + (handshake.frameWritten ? [.closeChannel] : [])
    }

    /// The endpoint asked to close with `code` (`ClientConnection.close`). The departure still
    /// waits for the client's answer or the channel's end, as the endpoint knows already.
    mutating func closeRequested(_ code: CloseCode, reason: String?, timeout: TimeAmount, now: NIODeadline) -> [Action] {
        closeLocally(code, reason: reason, timeout: timeout, now: now)
    }

    /// Our close frame is written to the socket (or the write failed: the channel is going).
    mutating func closeFrameWritten() -> [Action] {
        guard var handshake, !handshake.frameWritten else { return [] }
        handshake.frameWritten = true
        self.handshake = handshake
        return handshake.peerClosed && !channelClosed ? [.closeChannel] : []
    }

    /// The reader found a protocol violation or a broken limit: close with its code; the peer
    /// has a short grace to answer (its remaining input is discarded meanwhile).
    mutating func violation(_ violation: WebSocketViolation, now: NIODeadline) -> [Action] {
        [.countError("socket_error")] + leave()
            + closeLocally(violation.code, reason: violation.reason, timeout: Self.violationCloseGrace, now: now)
    }

    /// The peer shut its side (Hummingbird allows half-closure, so its FIN arrives as
    /// `inputClosed`): a WebSocket peer that stopped sending is gone.
    mutating func inputClosed() -> [Action] {
        let actions = leave()
        return channelClosed ? actions : actions + [.closeChannel]
    }

    mutating func errorCaught() -> [Action] {
        let actions = [.countError("socket_error")] + leave()
        return channelClosed ? actions : actions + [.closeChannel]
    }

    /// The channel is gone. An admission still running finds `left` and departs itself.
    mutating func channelInactive() -> [Action] {
        let actions = leave()
        channelClosed = true
        backlog = []
        return actions
    }

    /// A timer armed by `schedule` fired. `pingPayload` is asked for only when a ping goes out.
    mutating func timerFired(_ timer: Timer, now: NIODeadline, pingPayload: @autoclosure () -> UInt64) -> [Action] {
        guard !channelClosed else { return [] }
        switch timer {
        case .ping:
            // After a close frame either way the close deadline watches the connection.
            guard handshake == nil else { return [] }
            if outstandingPings.count >= 2 {
                // Two pings unanswered (PROTOCOL.md 6): a peer that is only slow (its own loop
                // behind in a join storm) had a whole interval more to answer the first.
                return [.countError("ping_timeout")] + leave()
                    + closeLocally(.goingAway, reason: "Ping timeout", timeout: Self.pingTimeoutCloseGrace, now: now)
            }
            // A payload of its own per ping, so a pong sent blindly (or a stale one) does not count.
            let payload = pingPayload()
            outstandingPings.append(payload)
            return [.sendPing(payload), .schedule(.ping, at: now + pingInterval)]
        case .resumeReading:
            guard readPause == .overLimit else { return [] }
            readPause = .none
            return [.resumeReading]
        case .closeDeadline:
            return handshake == nil ? [] : [.closeChannel]
        case .stopGrace:
            return closeLocally(.normal, reason: nil, timeout: Self.defaultCloseTimeout, now: now)
        }
    }

    // MARK: Helpers

    /// The next admitted message to deliver, if the previous one is handled.
    private mutating func nextDelivery() -> [Action] {
        guard case .open = endpoint, handshake == nil, !channelClosed, !delivering, !backlog.isEmpty else { return [] }
        if readPause == .overLimit {
            // Read together with the message that broke the limit: dropped unparsed, like it.
            let dropped = backlog.count
            backlog = []
            return Array(repeating: .countDroppedWhileOverLimit, count: dropped)
        }
        delivering = true
        return [.deliver(backlog.removeFirst())]
    }

    private mutating func resumeAfterAdmission() -> [Action] {
        guard readPause == .admission else { return [] }
        readPause = .none
        return [.resumeReading]
    }

    /// Our close frame, first of the handshake; nothing if a close frame already went either way.
    private mutating func closeLocally(_ code: CloseCode, reason: String?, timeout: TimeAmount, now: NIODeadline) -> [Action] {
        guard handshake == nil, !channelClosed else { return [] }
        handshake = CloseHandshake(closedFirst: .server, code: code, peerClosed: false)
        backlog = []
        return [.sendClose(code, reason: reason, discardQueued: false), .schedule(.closeDeadline, at: now + timeout)]
    }

    /// Tells the endpoint once that the connection is gone.
    private mutating func leave() -> [Action] {
        switch endpoint {
        case .admitting:
            // The admission's result will find this and run the departure itself.
            endpoint = .admitting(pending: [], left: true)
            return []
        case .open:
            endpoint = .gone
            backlog = []
            return [.depart]
        case .gone:
            return []
        }
    }

    /// The code that answers a client's close frame (RFC 6455 5.5.1, 7.4): 1002 for a one-byte
    /// payload or a code a peer may not send, 1007 for a reason that is not UTF-8, else 1000.
    static func answer(toClose payload: ByteBuffer) -> CloseCode {
        var payload = payload
        guard payload.readableBytes != 1 else { return .protocolError }
        if let code = payload.readInteger(as: UInt16.self), !isValidCloseCode(code) { return .protocolError }
        let reasonValid = payload.readableBytes == 0 || (try? payload.readUTF8ValidatedString(length: payload.readableBytes)) != nil
        return reasonValid ? .normal : .invalidPayload
    }

    /// Close codes a peer may send (RFC 6455 7.4).
    static func isValidCloseCode(_ code: UInt16) -> Bool {
        switch code {
        case 1000...1003, 1007...1011, 3000...4999: true
        default: false
        }
    }
}
