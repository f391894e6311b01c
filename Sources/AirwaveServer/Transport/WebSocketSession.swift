import AirwaveCore
import AirwaveProtocol
import NIOCore
import NIOWebSocket

/// The last handler of an upgraded connection: feeds the connection's events to its
/// `WebSocketSessionStateMachine` (pings, pongs, the close handshake, protocol errors,
/// admission) and executes the actions it returns, handing text and binary messages to the
/// endpoint's `InboundReceiver` once the connection is admitted. It runs on the connection's
/// event loop and holds no task, so an idle listener costs only its channel and this object.
final class WebSocketSession: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = WebSocketFrame

    /// What to run when an admitted connection goes away.
    typealias Departure = @Sendable () -> Void
    typealias Machine = WebSocketSessionStateMachine

    private let connection: ClientConnection
    private let metrics: ServerMetrics
    private(set) var machine: Machine
    private var receiver: (any InboundReceiver)?
    private var departure: Departure?
    private var context: ChannelHandlerContext?
    private var timers: [Machine.Timer: Scheduled<Void>] = [:]
    /// Actions not yet executed. An action may cause another event (a write that completes at
    /// once, a close that makes the channel inactive); its actions run after the current ones.
    private var pending: [Machine.Action] = []
    private var executing = false

    init(connection: ClientConnection, metrics: ServerMetrics, pingInterval: Duration) {
        self.connection = connection
        self.metrics = metrics
        machine = Machine(pingInterval: TimeAmount(pingInterval))
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        connection.attach(self)
        run(machine.start(now: context.eventLoop.now))
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        for timer in timers.values { timer.cancel() }
        timers = [:]
        self.context = nil
        connection.attach(nil)
    }

    /// The endpoint admitted the connection: `receiver` gets its messages, `departure` runs once it is gone.
    func admitted(_ receiver: any InboundReceiver, departure: @escaping Departure) {
        guard case .admitting = machine.endpoint else { return }
        self.receiver = receiver
        self.departure = departure
        run(machine.admitted())
    }

    /// The endpoint refused the connection (the error frame and the close are on their way)
    /// or stopped it before admitting.
    func refused() {
        run(machine.refused())
    }

    /// The endpoint asked for the close handshake (`ClientConnection.close`). On the event loop.
    func closeRequested(_ code: CloseCode, reason: String?, timeout: Duration) {
        guard let context else { return }
        run(machine.closeRequested(code, reason: reason, timeout: TimeAmount(timeout), now: context.eventLoop.now))
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // Whole messages and control frames only: `WebSocketFrameReader` checked framing,
        // sizes and UTF-8, and joined fragments.
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .connectionClose: run(machine.peerClosed(frame.data, now: context.eventLoop.now))
        case .ping: run(machine.pingReceived(frame.data))
        case .pong: run(machine.pongReceived(frame.data))
        case .text: run(machine.messageReceived(Machine.Message(isText: true, data: frame.data)))
        case .binary: run(machine.messageReceived(Machine.Message(isText: false, data: frame.data)))
        default:
            run(machine.violation(WebSocketViolation(code: .protocolError, reason: "unexpected frame"), now: context.eventLoop.now))
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        run(machine.errorCaught())
    }

    /// A protocol violation found by `WebSocketFrameReader` fails the connection with its code.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let violation = event as? WebSocketViolation {
            run(machine.violation(violation, now: context.eventLoop.now))
            return
        }
        if let event = event as? ChannelEvent, event == .inputClosed {
            run(machine.inputClosed())
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        run(machine.channelInactive())
        for timer in timers.values { timer.cancel() }
        timers = [:]
        context.fireChannelInactive()
    }

    /// Executes `actions` in order, after any still pending.
    private func run(_ actions: [Machine.Action]) {
        pending.append(contentsOf: actions)
        guard !executing else { return }
        executing = true
        defer { executing = false }
        var next = 0
        while next < pending.count {
            let action = pending[next]
            next += 1
            execute(action)
        }
        pending.removeAll(keepingCapacity: true)
    }

    private func execute(_ action: Machine.Action) {
        switch action {
        case .deliver(let message):
            // The verdict first: the endpoint may cause events of its own (a close) meanwhile.
            let verdict = deliver(message)
            run(machine.messageHandled(verdict, now: connection.channel.eventLoop.now))
        case .depart:
            let departure = self.departure
            self.departure = nil
            receiver = nil
            departure?()
        case .writePong(let payload):
            connection.send(WebSocketWire.frame(opcode: WebSocketWire.pong, payload: payload))
        case .sendPing(let value):
            var payload = ByteBufferAllocator().buffer(capacity: 8)
            payload.writeInteger(value)
            connection.send(WebSocketWire.frame(opcode: WebSocketWire.ping, payload: payload))
        case .sendClose(let code, let reason, let discardQueued):
            let loop = connection.channel.eventLoop
            let promise = loop.makePromise(of: Void.self)
            connection.writeCloseFrame(WebSocketWire.close(code: code.rawValue, reason: reason), discardQueued: discardQueued, promise: promise)
            let loopBound = NIOLoopBound(self, eventLoop: loop)
            promise.futureResult.whenComplete { _ in loopBound.value.closeFrameWritten() }
        case .closeChannel:
            context?.close(promise: nil)
        case .pauseReading:
            connection.channel.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in }
        case .resumeReading:
            connection.channel.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in }
        case .schedule(let timer, let deadline):
            // A channel that is gone needs no timer (`channelInactive` cancelled the others).
            guard let context, !machine.channelClosed else { return }
            timers[timer]?.cancel()
            let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
            timers[timer] = context.eventLoop.scheduleTask(deadline: deadline) { loopBound.value.fire(timer) }
        case .countError(let code):
            metrics.error(code: code)
        case .countDroppedWhileOverLimit:
            metrics.droppedWhileOverLimit()
        }
    }

    /// Hands a message to the endpoint and returns its verdict.
    private func deliver(_ message: Machine.Message) -> InboundVerdict {
        guard let receiver else { return .keepReading }
        let now = Timestamp.now()
        // Text was validated as it arrived (`WebSocketFrameParser`).
        return message.isText ? receiver.text(String(buffer: message.data), now: now) : receiver.binary(message.data, now: now)
    }

    private func closeFrameWritten() {
        run(machine.closeFrameWritten())
    }

    private func fire(_ timer: Machine.Timer) {
        timers[timer] = nil
        run(machine.timerFired(timer, now: connection.channel.eventLoop.now, pingPayload: UInt64.random(in: 0...UInt64.max)))
    }
}
