import AirwaveWebRTC
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Settings of the WebRTC UDP port.
public struct WebRTCUDPConfiguration: Sendable {
    /// Address to bind, e.g. `0.0.0.0`.
    public var host: String
    /// UDP port for every session; 0 picks a free one.
    public var port: Int
    /// Most sessions at once; further ones are refused.
    public var maximumSessions: Int
    /// How often session timers (consent, DTLS retransmission, sender reports) are checked.
    public var timerInterval: TimeAmount
    /// Datagrams read per system call (recvmmsg).
    public var readBatchSize: Int
    /// Kernel send and receive buffer of the socket (the kernel may cap it at `wmem_max`).
    public var socketBufferSize: Int = 4 * 1024 * 1024
    /// Told how many datagrams were dropped since it was last told, by reason, at most once per
    /// timer pass (on the channel's event loop): what the server exports as a metric.
    public var onDroppedDatagrams: (@Sendable (WebRTCUDPDropReason, Int) -> Void)?

    public init(host: String = "0.0.0.0", port: Int = 0, maximumSessions: Int = 10_000,
                timerInterval: TimeAmount = .milliseconds(100), readBatchSize: Int = 32) {
        self.host = host
        self.port = port
        self.maximumSessions = maximumSessions
        self.timerInterval = timerInterval
        self.readBatchSize = readBatchSize
    }
}

/// Why the driver refused a request.
public enum WebRTCUDPError: Error, Equatable, Sendable {
    case tooManySessions
    case duplicateUfrag
}

/// Why the driver dropped an outgoing datagram (the `reason` label of
/// `airwave_webrtc_datagrams_dropped_total`).
public enum WebRTCUDPDropReason: String, CaseIterable, Sendable {
    /// The socket was not writable, even after handing the queued datagrams to the kernel.
    case socketFull = "socket_full"
}

/// Why the UDP socket could not be bound.
public enum WebRTCUDPStartError: Error, CustomStringConvertible {
    /// Another socket has the port (EADDRINUSE).
    case portInUse(host: String, port: Int)
    /// Any other failure, as NIO reported it.
    case cannotBind(host: String, port: Int, underlying: any Error)

    public var description: String {
        switch self {
        case let .portInUse(host, port): "UDP port \(port) on \(host) is already in use"
        case let .cannotBind(host, port, underlying): "UDP port \(port) on \(host) cannot be bound (\(underlying))"
        }
    }
}

/// The thin I/O layer under `WebRTCSession`: one UDP socket for all sessions. Datagrams are
/// routed by RFC 7983 kind: STUN with a USERNAME (a check) by the local ufrag in it, an answer
/// to a session's own check by its transaction ID, everything else (DTLS, SRTP) by the remote
/// address: the session that address consented to, else the first whose check it passed. So a
/// session whose peer forges checks from someone else's address cannot take that address's
/// datagrams from the session it really belongs to. Session events other than `send` go to `onEvent`; datagrams
/// are written without flushing and flushed once per read batch, timer pass or fan-out, so NIO
/// hands many of them to the kernel in one `sendmmsg`.
///
/// All session state lives on the channel's event loop; the public methods hop there.
public final class WebRTCUDPDriver: Sendable {
    public typealias EventHandler = @Sendable (_ ufrag: String, _ event: WebRTCSession.Event) -> Void

    public let channel: any Channel
    private let handler: WebRTCUDPHandler

    private init(channel: any Channel, handler: WebRTCUDPHandler) {
        self.channel = channel
        self.handler = handler
    }

    /// Binds the UDP socket and starts the session timer. A bind that fails throws
    /// `WebRTCUDPStartError` (`portInUse` by the errno, not by the message's text).
    public static func start(configuration: WebRTCUDPConfiguration, group: any EventLoopGroup,
                             onEvent: @escaping EventHandler) async throws -> WebRTCUDPDriver {
        let handler = WebRTCUDPHandler(maximumSessions: configuration.maximumSessions, onEvent: onEvent,
                                       onDroppedDatagrams: configuration.onDroppedDatagrams)
        let channel: any Channel
        do {
            channel = try await bind(configuration, handler: handler, group: group)
        } catch let error as IOError where error.errnoCode == EADDRINUSE {
            throw WebRTCUDPStartError.portInUse(host: configuration.host, port: configuration.port)
        } catch {
            throw WebRTCUDPStartError.cannotBind(host: configuration.host, port: configuration.port, underlying: error)
        }
        let interval = configuration.timerInterval
        channel.eventLoop.execute {
            handler.timer = channel.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
                handler.runTimers()
            }
        }
        return WebRTCUDPDriver(channel: channel, handler: handler)
    }

    private static func bind(_ configuration: WebRTCUDPConfiguration, handler: WebRTCUDPHandler,
                             group: any EventLoopGroup) async throws -> any Channel {
        try await DatagramBootstrap(group: group)
            .channelOption(.datagramVectorReadMessageCount, value: configuration.readBatchSize)
            // One socket carries every session: a fan-out burst to thousands of listeners must fit.
            .channelOption(.socketOption(.so_sndbuf), value: configuration.socketBufferSize)
            .channelOption(.socketOption(.so_rcvbuf), value: configuration.socketBufferSize)
            // A fan-out is written whole and then flushed once: NIO's default 64 KiB water mark
            // would call the channel unwritable after about 600 listeners' packets.
            .channelOption(.writeBufferWaterMark, value: .init(low: configuration.socketBufferSize / 2,
                                                               high: configuration.socketBufferSize))
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 2048 * configuration.readBatchSize))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
            .bind(host: configuration.host, port: configuration.port)
            .get()
    }

    /// The bound port.
    public var port: Int { channel.localAddress?.port ?? 0 }

    /// Adds a session made on the event loop by `make` (WebRTCSession is not Sendable).
    public func addSession(_ make: @escaping @Sendable () throws -> WebRTCSession) async throws {
        let handler = self.handler
        try await channel.eventLoop.submit {
            try handler.add(try make())
        }.get()
    }

    /// Closes a session (close_notify to the peer) and forgets it.
    public func removeSession(ufrag: String) async throws {
        let handler = self.handler
        try await channel.eventLoop.submit { handler.remove(ufrag: ufrag) }.get()
    }

    /// Number of sessions.
    public func sessionCount() async throws -> Int {
        let handler = self.handler
        return try await channel.eventLoop.submit { handler.sessions.count }.get()
    }

    /// Sends one Opus packet to each listed listener session; one flush for all.
    public func sendAudio(to ufrags: [String], payload: [UInt8], sourceSSRC: UInt32, sequenceNumber: UInt16,
                          timestamp: UInt32) {
        let handler = self.handler
        channel.eventLoop.execute {
            let now = ContinuousClock.now
            for ufrag in ufrags {
                guard let session = handler.sessions[ufrag] else { continue }
                handler.dispatch(session.sendAudio(payload: payload, sourceSSRC: sourceSSRC, sequenceNumber: sequenceNumber,
                                                   timestamp: timestamp, now: now), ufrag: ufrag)
            }
            handler.flush()
        }
    }

    /// Sends one VP8 frame to each listed listener session; one flush for all.
    public func sendVideo(to ufrags: [String], frame: [UInt8], timestamp: UInt32) {
        let handler = self.handler
        channel.eventLoop.execute {
            let now = ContinuousClock.now
            for ufrag in ufrags {
                guard let session = handler.sessions[ufrag] else { continue }
                handler.dispatch(session.sendVideo(frame: frame, timestamp: timestamp, now: now), ufrag: ufrag)
            }
            handler.flush()
        }
    }

    /// Closes every session and the socket.
    public func shutdown() async throws {
        let handler = self.handler
        try await channel.eventLoop.submit {
            handler.timer?.cancel()
            for ufrag in Array(handler.sessions.keys) { handler.remove(ufrag: ufrag) }
        }.get()
        try await channel.close()
    }
}

/// The channel handler that owns the sessions. Only touched on the channel's event loop.
final class WebRTCUDPHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    let maximumSessions: Int
    let onEvent: WebRTCUDPDriver.EventHandler
    let onDroppedDatagrams: (@Sendable (WebRTCUDPDropReason, Int) -> Void)?
    var sessions: [String: WebRTCSession] = [:]
    /// Verified remote addresses → session ufrag.
    var routes: [TransportAddress: String] = [:]
    /// Each session's entries in `routes`, so that forgetting a session costs its own routes only.
    private var routesBySession: [String: [TransportAddress]] = [:]
    /// Transaction IDs of the checks sessions sent → session ufrag: answers carry no USERNAME.
    private var checks: [[UInt8]: String] = [:]
    /// Each session's last few entries in `checks` (retransmissions reuse one).
    private var checksBySession: [String: [[UInt8]]] = [:]
    private static let checksKeptPerSession = 8
    var timer: RepeatedTask?
    private var context: ChannelHandlerContext?
    private var pendingFlush = false
    /// Datagrams not written because the socket was not writable: all, and since the last report.
    var droppedDatagrams = 0
    private var droppedUnreported: [WebRTCUDPDropReason: Int] = [:]
    /// Each session's last destination as a NIO address.
    private var destinations: [String: (transport: TransportAddress, socket: NIOCore.SocketAddress)] = [:]

    init(maximumSessions: Int, onEvent: @escaping WebRTCUDPDriver.EventHandler,
         onDroppedDatagrams: (@Sendable (WebRTCUDPDropReason, Int) -> Void)? = nil) {
        self.maximumSessions = maximumSessions
        self.onEvent = onEvent
        self.onDroppedDatagrams = onDroppedDatagrams
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func add(_ session: WebRTCSession) throws {
        guard sessions.count < maximumSessions else { throw WebRTCUDPError.tooManySessions }
        guard sessions[session.localUfrag] == nil else { throw WebRTCUDPError.duplicateUfrag }
        sessions[session.localUfrag] = session
    }

    func remove(ufrag: String) {
        guard let session = sessions.removeValue(forKey: ufrag) else { return }
        dispatch(session.close(), ufrag: ufrag)
        forgetRoutes(of: ufrag)
        flush()
    }

    private func forgetRoutes(of ufrag: String) {
        for address in routesBySession.removeValue(forKey: ufrag) ?? [] where routes[address] == ufrag {
            routes[address] = nil
        }
        for transaction in checksBySession.removeValue(forKey: ufrag) ?? [] where checks[transaction] == ufrag {
            checks[transaction] = nil
        }
        destinations[ufrag] = nil
    }

    /// Remembers the transaction of a Binding request a session sends, to route its answer.
    private func noteCheck(_ bytes: [UInt8], ufrag: String) {
        guard bytes.count >= 20, bytes[0] == 0x00, bytes[1] == 0x01 else { return }
        let transaction = Array(bytes[8..<20])
        guard checks[transaction] == nil else { return }
        checks[transaction] = ufrag
        var kept = checksBySession[ufrag, default: []]
        kept.append(transaction)
        if kept.count > Self.checksKeptPerSession {
            let oldest = kept.removeFirst()
            if checks[oldest] == ufrag { checks[oldest] = nil }
        }
        checksBySession[ufrag] = kept
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        guard let source = TransportAddress(envelope.remoteAddress) else { return }
        let datagram = Array(envelope.data.readableBytesView)
        var ufrag: String?
        if PacketKind(datagram: datagram) == .stun, let message = try? STUNMessage.parse(datagram) {
            if let username = message.attribute(.username) {
                ufrag = username.stringValue.flatMap(ICELiteAgent.localUfrag(fromUsername:)).map(String.init)
            } else if message.messageClass == .successResponse || message.messageClass == .errorResponse {
                ufrag = checks[message.transactionID]
            }
        } else {
            ufrag = routes[source]
        }
        guard let ufrag, let session = sessions[ufrag] else { return }
        let events = session.handle(datagram: datagram, from: source, now: .now)
        // A consented address belongs to its session even if another one's check claimed it first.
        if routes[source] != ufrag, routes[source] == nil ? session.accepts(source) : session.hasConsent(from: source) {
            routes[source] = ufrag
            routesBySession[ufrag, default: []].append(source)
        }
        dispatch(events, ufrag: ufrag)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flush()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // ICMP errors (a listener went away) surface here; the session's consent timer ends it.
    }

    func runTimers() {
        let now = ContinuousClock.now
        let ntp = Self.ntpNow()
        for (ufrag, session) in sessions {
            guard let due = session.nextTimer(now: now), due <= now else { continue }
            dispatch(session.handleTimer(now: now, ntpTime: ntp), ufrag: ufrag)
        }
        flush()
        reportDrops()
    }

    func recordDrop(_ reason: WebRTCUDPDropReason) {
        droppedDatagrams &+= 1
        droppedUnreported[reason, default: 0] += 1
    }

    /// Drops are reported in a batch per timer pass, not per datagram: they come in bursts.
    func reportDrops() {
        guard !droppedUnreported.isEmpty else { return }
        for (reason, count) in droppedUnreported { onDroppedDatagrams?(reason, count) }
        droppedUnreported.removeAll(keepingCapacity: true)
    }

    func dispatch(_ events: [WebRTCSession.Event], ufrag: String) {
        for event in events {
            switch event {
            case let .send(bytes, destination):
                noteCheck(bytes, ufrag: ufrag)
                write(bytes, to: destination, ufrag: ufrag)
            case .closed:
                sessions.removeValue(forKey: ufrag)
                forgetRoutes(of: ufrag)
                onEvent(ufrag, event)
            default:
                onEvent(ufrag, event)
            }
        }
    }

    private func write(_ bytes: [UInt8], to destination: TransportAddress, ufrag: String) {
        guard let context, let address = socketAddress(destination, ufrag: ufrag) else { return }
        // UDP has no backpressure to wait for: while the kernel buffer is full, media is dropped
        // here rather than queued without bound (listeners recover with NACK and keyframes).
        if !context.channel.isWritable, pendingFlush {
            // Hand what is queued to the kernel before giving up on this datagram.
            pendingFlush = false
            context.flush()
        }
        guard context.channel.isWritable else {
            recordDrop(.socketFull)
            return
        }
        let buffer = context.channel.allocator.buffer(bytes: bytes)
        context.write(wrapOutboundOut(AddressedEnvelope(remoteAddress: address, data: buffer)), promise: nil)
        pendingFlush = true
    }

    /// The NIO address of a session's destination, made once: building it parses text.
    private func socketAddress(_ destination: TransportAddress, ufrag: String) -> NIOCore.SocketAddress? {
        if let cached = destinations[ufrag], cached.transport == destination { return cached.socket }
        guard let socket = try? NIOCore.SocketAddress(destination) else { return nil }
        if sessions[ufrag] != nil { destinations[ufrag] = (destination, socket) }
        return socket
    }

    func flush() {
        guard pendingFlush, let context else { return }
        pendingFlush = false
        context.flush()
    }

    static func ntpNow() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return RTPSenderStatistics.ntpTime(unixSeconds: Int64(now.tv_sec), nanoseconds: Int64(now.tv_nsec))
    }
}
