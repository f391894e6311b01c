import AirwaveWebRTC
import CAirwaveUDP
import NIOConcurrencyHelpers
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
    /// Sockets on the port (`SO_REUSEPORT`), each on its own event loop of the group with the
    /// sessions placed there; nil: one per event loop of the group.
    public var sockets: Int?
    /// Where DTLS handshake steps run (the public-key operations of a join), so that a join
    /// storm does not hold up media, consent checks or anything else on the sockets' loops;
    /// nil: on the socket's loop. See `WebRTCUDPDriver.makeHandshakeGroup`.
    public var handshakeGroup: (any EventLoopGroup)?
    /// Kernel send and receive buffer of each socket (the kernel may cap it at `wmem_max`).
    public var socketBufferSize: Int = 4 * 1024 * 1024
    /// Fan-outs that may wait for one socket's event loop; more are dropped (`FanOutBacklog`).
    /// 25 is 500 ms of the mix alone (50 packets a second), less with speakers and a screen.
    public var fanOutBacklog = 25
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
    /// The kernel did not take it: the socket's send buffer was full (or it refused the
    /// destination).
    case socketFull = "socket_full"
    /// Its fan-out found the socket's event loop `fanOutBacklog` fan-outs behind.
    case behind
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

/// The thin I/O layer under `WebRTCSession`: one UDP port for all sessions, bound by one socket
/// per event loop (`SO_REUSEPORT`), so that sessions use every core. Each socket's handler (a
/// shard) owns the sessions placed on its loop, the least loaded when a session is added.
///
/// The kernel picks a socket for a datagram by its addresses, not by session, so a datagram may
/// reach another shard than its session's: the shared `WebRTCUDPRoutes` name the session (STUN
/// with a USERNAME by the local ufrag in it, an answer to a session's own check by its
/// transaction ID, everything else by the remote address: the session that address consented
/// to, else the first whose check it passed, so a session whose peer forges checks from someone
/// else's address cannot take that address's datagrams) and its shard, and a datagram of
/// another shard is handed to that shard's loop, in one hop per read batch. Session events other
/// than `send` go to `onEvent` (on the session's loop); datagrams go past NIO into the shard's
/// `DatagramBatch`, handed to the kernel by one `sendmmsg` per 64 and per read batch, timer pass
/// or fan-out. A fan-out to many sessions is split by shard, one task per loop, and at most
/// `fanOutBacklog` of them wait for a loop (`FanOutBacklog`).
///
/// Session state lives on its shard's event loop; the public methods hop there.
public final class WebRTCUDPDriver: Sendable {
    public typealias EventHandler = @Sendable (_ ufrag: String, _ event: WebRTCSession.Event) -> Void

    /// One channel per socket, each on its own event loop.
    public let channels: [any Channel]
    let shards: [WebRTCUDPHandler]
    private let routes: NIOLockedValueBox<WebRTCUDPRoutes>

    private init(channels: [any Channel], shards: [WebRTCUDPHandler], routes: NIOLockedValueBox<WebRTCUDPRoutes>) {
        self.channels = channels
        self.shards = shards
        self.routes = routes
    }

    /// Binds the sockets and starts the session timers. A bind that fails throws
    /// `WebRTCUDPStartError` (`portInUse` by the errno, not by the message's text).
    public static func start(configuration: WebRTCUDPConfiguration, group: any EventLoopGroup,
                             onEvent: @escaping EventHandler) async throws -> WebRTCUDPDriver {
        var loops: [any EventLoop] = []
        var seen = Set<ObjectIdentifier>()
        for loop in group.makeIterator() where seen.insert(ObjectIdentifier(loop)).inserted { loops.append(loop) }
        if loops.isEmpty { loops = [group.next()] }
        let count = max(1, configuration.sockets ?? loops.count)
        let routes = NIOLockedValueBox(WebRTCUDPRoutes(shards: count))
        let shards = (0..<count).map { index in
            WebRTCUDPHandler(index: index, eventLoop: loops[index % loops.count], routes: routes,
                             maximumSessions: configuration.maximumSessions, onEvent: onEvent,
                             onDroppedDatagrams: configuration.onDroppedDatagrams,
                             handshakeGroup: configuration.handshakeGroup, fanOutBacklog: configuration.fanOutBacklog)
        }
        // Set before any socket exists: read-only from then on, cleared at shutdown.
        for shard in shards { shard.shards = shards }
        var channels: [any Channel] = []
        var port = configuration.port
        do {
            for shard in shards {
                let channel = try await bind(configuration, port: port, handler: shard, reusePort: count > 1)
                channels.append(channel)
                port = channel.localAddress?.port ?? port  // port 0: the others join the one picked
            }
        } catch let error as IOError where error.errnoCode == EADDRINUSE {
            for channel in channels { try? await channel.close() }
            throw WebRTCUDPStartError.portInUse(host: configuration.host, port: configuration.port)
        } catch {
            for channel in channels { try? await channel.close() }
            throw WebRTCUDPStartError.cannotBind(host: configuration.host, port: configuration.port, underlying: error)
        }
        let interval = configuration.timerInterval
        for shard in shards {
            shard.eventLoop.execute {
                shard.timer = shard.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
                    shard.runTimers()
                }
            }
        }
        return WebRTCUDPDriver(channels: channels, shards: shards, routes: routes)
    }

    /// Binds one socket of the port. The driver makes the socket itself and hands it to NIO
    /// for reading, so that the shard can also write to it directly (`DatagramBatch`).
    private static func bind(_ configuration: WebRTCUDPConfiguration, port: Int, handler: WebRTCUDPHandler,
                             reusePort: Bool) async throws -> any Channel {
        // Only sockets that all set SO_REUSEPORT share a port: one bound without it (another
        // program) still makes the bind fail with EADDRINUSE.
        let descriptor = airwave_udp_bind(configuration.host, Int32(port), reusePort ? 1 : 0,
                                          Int32(clamping: configuration.socketBufferSize))
        guard descriptor >= 0 else { throw IOError(errnoCode: errno, reason: "bind") }
        // NIO owns the descriptor from here on, and closes it with the channel.
        return try await DatagramBootstrap(group: handler.eventLoop)
            .channelOption(.datagramVectorReadMessageCount, value: configuration.readBatchSize)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 2048 * configuration.readBatchSize))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    handler.batch = DatagramBatch(descriptor: descriptor)
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
            .withBoundSocket(descriptor)
            .get()
    }

    /// A group for `WebRTCUDPConfiguration.handshakeGroup`: `threads` threads at a lower
    /// scheduling priority (nice +10 on Linux), so that the kernel runs media, consent checks and
    /// the WebSocket loops first when a join storm has more handshakes than the cores can do.
    /// The caller shuts it down after the driver.
    public static func makeHandshakeGroup(threads: Int) -> MultiThreadedEventLoopGroup {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, threads))
        #if os(Linux)
        for loop in group.makeIterator() {
            // On Linux the niceness is per thread, and 0 names the calling one.
            loop.execute { _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 10) }
        }
        #endif
        return group
    }

    /// The bound port.
    public var port: Int { channels.first?.localAddress?.port ?? 0 }

    /// Adds a session made by `make` on the event loop of the least loaded shard
    /// (WebRTCSession is not Sendable).
    public func addSession(_ make: @escaping @Sendable () throws -> WebRTCSession) async throws {
        let shard = shards[routes.withLockedValue { $0.leastLoadedShard }]
        try await shard.eventLoop.submit {
            try shard.add(try make())
        }.get()
    }

    /// Closes a session (close_notify to the peer) and forgets it.
    public func removeSession(ufrag: String) async throws {
        guard let index = routes.withLockedValue({ $0.shardByUfrag[ufrag] }) else { return }
        let shard = shards[index]
        try await shard.eventLoop.submit { shard.remove(ufrag: ufrag) }.get()
    }

    /// Number of sessions.
    public func sessionCount() async throws -> Int {
        routes.withLockedValue { $0.sessionCount }
    }

    /// Sessions per socket, in the order of `channels`.
    public func sessionsPerSocket() -> [Int] {
        routes.withLockedValue { $0.sessionsPerShard }
    }

    /// Datagrams a socket read for a session of another socket's loop and handed over.
    public func datagramsHandedOver() async throws -> Int {
        var total = 0
        for shard in shards { total += try await shard.eventLoop.submit { shard.handedOver }.get() }
        return total
    }

    /// Sessions whose DTLS step is running on the handshake group now (the tests wait for one).
    func sessionsInHandshakeStep() async throws -> Int {
        var total = 0
        for shard in shards { total += try await shard.eventLoop.submit { shard.lentCount }.get() }
        return total
    }

    /// Sends one Opus packet to each listed listener session; one task and one flush per shard.
    public func sendAudio(to ufrags: [String], payload: [UInt8], sourceSSRC: UInt32, sequenceNumber: UInt16,
                          timestamp: UInt32) {
        forEachShard(of: ufrags) { shard, ufrags in
            let now = ContinuousClock.now
            for ufrag in ufrags {
                guard let session = shard.available(ufrag) else { continue }
                guard let datagram = session.audioDatagram(payload: payload, sourceSSRC: sourceSSRC,
                                                           sequenceNumber: sequenceNumber, timestamp: timestamp, now: now)
                else { continue }
                shard.write(datagram.bytes, to: datagram.destination, ufrag: ufrag)
            }
            shard.flush()
        }
    }

    /// Sends one Opus packet of speaker `source` to each listed per-speaker listener session, on
    /// the track each session gives that speaker; one task and one flush per shard.
    public func sendSpeakerAudio(to ufrags: [String], payload: [UInt8], source: UInt32, sequenceNumber: UInt16,
                                 timestamp: UInt32) {
        forEachShard(of: ufrags) { shard, ufrags in
            let now = ContinuousClock.now
            for ufrag in ufrags {
                guard let session = shard.available(ufrag) else { continue }
                guard let datagram = session.speakerAudioDatagram(payload: payload, source: source,
                                                                  sequenceNumber: sequenceNumber, timestamp: timestamp, now: now)
                else { continue }
                shard.write(datagram.bytes, to: datagram.destination, ufrag: ufrag)
            }
            shard.flush()
        }
    }

    /// Frees speaker `source`'s track in each listed per-speaker listener session. A session
    /// lent to the handshake group is not connected yet, so it carries no speaker to free.
    public func releaseSpeaker(_ source: UInt32, in ufrags: [String]) {
        forEachShard(of: ufrags, isMedia: false) { shard, ufrags in
            for ufrag in ufrags { shard.available(ufrag)?.releaseSpeaker(source) }
        }
    }

    /// Sends one VP8 frame to each listed listener session; one task and one flush per shard.
    public func sendVideo(to ufrags: [String], frame: [UInt8], timestamp: UInt32) {
        forEachShard(of: ufrags) { shard, ufrags in
            let now = ContinuousClock.now
            for ufrag in ufrags {
                guard let session = shard.available(ufrag) else { continue }
                shard.dispatch(session.sendVideo(frame: frame, timestamp: timestamp, now: now), ufrag: ufrag)
            }
            shard.flush()
        }
    }

    /// Runs `body` on each shard's loop with the listed sessions it owns (one lookup under the
    /// lock for the whole list; with one socket, none). A media fan-out (`isMedia`) is dropped
    /// for a shard whose loop is `fanOutBacklog` fan-outs behind.
    private func forEachShard(of ufrags: [String], isMedia: Bool = true,
                              _ body: @escaping @Sendable (WebRTCUDPHandler, [String]) -> Void) {
        guard shards.count > 1 else {
            run(body, on: shards[0], for: ufrags, isMedia: isMedia)
            return
        }
        var groups = Array(repeating: [String](), count: shards.count)
        routes.withLockedValue { routes in
            for ufrag in ufrags {
                if let index = routes.shardByUfrag[ufrag] { groups[index].append(ufrag) }
            }
        }
        for (index, group) in groups.enumerated() where !group.isEmpty {
            run(body, on: shards[index], for: group, isMedia: isMedia)
        }
    }

    private func run(_ body: @escaping @Sendable (WebRTCUDPHandler, [String]) -> Void, on shard: WebRTCUDPHandler,
                     for ufrags: [String], isMedia: Bool) {
        guard isMedia else {
            shard.eventLoop.execute { body(shard, ufrags) }
            return
        }
        guard shard.backlog.withLockedValue({ $0.admit(datagrams: ufrags.count) }) else { return }
        shard.eventLoop.execute {
            shard.backlog.withLockedValue { $0.started() }
            body(shard, ufrags)
        }
    }

    /// Datagrams dropped so far, for any reason (`WebRTCUDPDropReason`).
    public func datagramsDropped() async throws -> Int {
        var total = 0
        for shard in shards {
            total += try await shard.eventLoop.submit {
                shard.collectBacklogDrops()
                return shard.droppedDatagrams
            }.get()
        }
        return total
    }

    /// Closes every session and the sockets.
    public func shutdown() async throws {
        for shard in shards {
            try await shard.eventLoop.submit {
                shard.timer?.cancel()
                for ufrag in Array(shard.sessions.keys) { shard.remove(ufrag: ufrag) }
            }.get()
        }
        for channel in channels { try await channel.close() }
        // Only now that no socket reads any more: until its socket was closed, a shard could
        // still hand a datagram over to another one.
        for shard in shards {
            try await shard.eventLoop.submit { shard.shards = [] }.get()  // they refer to one another until here
        }
    }
}

/// One socket's channel handler: the sessions placed on its event loop (a shard). Only touched
/// on that loop, except `shards`, which is set before the socket exists.
final class WebRTCUDPHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    let index: Int
    let eventLoop: any EventLoop
    let routes: NIOLockedValueBox<WebRTCUDPRoutes>
    let maximumSessions: Int
    let onEvent: WebRTCUDPDriver.EventHandler
    let onDroppedDatagrams: (@Sendable (WebRTCUDPDropReason, Int) -> Void)?
    /// Every shard of the port, this one included.
    var shards: [WebRTCUDPHandler] = []
    var sessions: [String: WebRTCSession] = [:]
    let handshakeGroup: (any EventLoopGroup)?
    /// Sessions lent to the handshake group for one DTLS step, not touched here until they are
    /// back: the datagrams that came for them meanwhile, and whether they were removed.
    private var lent: [String: (waiting: [(datagram: [UInt8], source: TransportAddress, destination: WebRTCUDPRoutes.Destination)], removed: Bool)] = [:]
    private static let maximumWaitingWhileLent = 16
    /// DTLS handshake steps run on the handshake group.
    var handshakeSteps = 0
    private var heapTrim = HeapTrimPolicy()
    /// Fan-outs waiting for this loop, and those dropped because too many were.
    let backlog: NIOLockedValueBox<FanOutBacklog>
    var timer: RepeatedTask?
    /// Where datagrams are written: straight to the socket, one `sendmmsg` per flush. Set when
    /// the channel is made, on this loop.
    var batch: DatagramBatch?
    /// Datagrams of other shards' sessions read in this batch, by shard: handed over at its end.
    private var handOver: [Int: [(datagram: [UInt8], source: TransportAddress, destination: WebRTCUDPRoutes.Destination)]] = [:]
    /// Datagrams this shard read for another shard's session.
    var handedOver = 0
    /// Datagrams dropped (`WebRTCUDPDropReason`): all, and since the last report.
    var droppedDatagrams = 0
    private var droppedUnreported: [WebRTCUDPDropReason: Int] = [:]
    /// Each session's last destination as the kernel takes it.
    private var destinations: [String: (transport: TransportAddress, address: airwave_udp_address)] = [:]

    init(index: Int, eventLoop: any EventLoop, routes: NIOLockedValueBox<WebRTCUDPRoutes>, maximumSessions: Int,
         onEvent: @escaping WebRTCUDPDriver.EventHandler,
         onDroppedDatagrams: (@Sendable (WebRTCUDPDropReason, Int) -> Void)? = nil,
         handshakeGroup: (any EventLoopGroup)? = nil, fanOutBacklog: Int = 25) {
        self.handshakeGroup = handshakeGroup
        backlog = NIOLockedValueBox(FanOutBacklog(limit: fanOutBacklog))
        self.index = index
        self.eventLoop = eventLoop
        self.routes = routes
        self.maximumSessions = maximumSessions
        self.onEvent = onEvent
        self.onDroppedDatagrams = onDroppedDatagrams
    }

    func channelInactive(context: ChannelHandlerContext) {
        // NIO has just closed the descriptor, in this same call on this loop: nothing written
        // from here on can reach a file that reuses its number.
        batch?.close()
        context.fireChannelInactive()
    }

    func add(_ session: WebRTCSession) throws {
        let ufrag = session.localUfrag
        if let error = routes.withLockedValue({ $0.add(ufrag: ufrag, shard: index, maximumSessions: maximumSessions) }) {
            throw error
        }
        sessions[ufrag] = session
    }

    var lentCount: Int { lent.count }

    /// The session, unless it is lent to the handshake group.
    func available(_ ufrag: String) -> WebRTCSession? {
        lent[ufrag] == nil ? sessions[ufrag] : nil
    }

    func remove(ufrag: String) {
        if lent[ufrag] != nil {
            lent[ufrag]?.removed = true  // removed when it is back
            return
        }
        guard let session = sessions.removeValue(forKey: ufrag) else { return }
        dispatch(session.close(), ufrag: ufrag)
        forget(ufrag)
        flush()
    }

    private func forget(_ ufrag: String) {
        routes.withLockedValue { $0.remove(ufrag: ufrag) }
        destinations[ufrag] = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        guard let source = TransportAddress(envelope.remoteAddress) else { return }
        let datagram = Array(envelope.data.readableBytesView)
        let key: WebRTCUDPRoutes.Key
        if PacketKind(datagram: datagram) == .stun, let message = try? STUNMessage.parse(datagram) {
            if let username = message.attribute(.username) {
                guard let ufrag = username.stringValue.flatMap(ICELiteAgent.localUfrag(fromUsername:)) else { return }
                key = .ufrag(String(ufrag))
            } else if message.messageClass == .successResponse || message.messageClass == .errorResponse {
                key = .transaction(message.transactionID)
            } else {
                return
            }
        } else {
            key = .address
        }
        guard let destination = routes.withLockedValue({ $0.destination(key, source: source) }) else { return }
        if destination.shard == index {
            deliver(datagram, from: source, to: destination)
        } else {
            handOver[destination.shard, default: []].append((datagram, source, destination))
        }
    }

    /// Hands a datagram to its session, on this shard's loop.
    func deliver(_ datagram: [UInt8], from source: TransportAddress, to destination: WebRTCUDPRoutes.Destination) {
        let ufrag = destination.ufrag
        guard let session = sessions[ufrag] else { return }
        if lent[ufrag] != nil {
            if lent[ufrag]!.waiting.count < Self.maximumWaitingWhileLent { lent[ufrag]!.waiting.append((datagram, source, destination)) }
            return
        }
        if let handshakeGroup, !session.isConnected, PacketKind(datagram: datagram) == .dtls {
            // Routed by its address, so that address is this session's already: no route to update.
            lend(session, datagram: datagram, from: source, to: handshakeGroup.next())
            return
        }
        let events = session.handle(datagram: datagram, from: source, now: .now)
        // A consented address belongs to its session even if another one's check claimed it first.
        if destination.route != ufrag,
           destination.route == nil ? session.accepts(source) : session.hasConsent(from: source) {
            routes.withLockedValue { $0.route(source, to: ufrag) }
        }
        dispatch(events, ufrag: ufrag)
    }

    /// Runs one DTLS handshake step of `session` on `loop`; the session is back on this loop,
    /// with the events of the step, when it is done.
    private func lend(_ session: WebRTCSession, datagram: [UInt8], from source: TransportAddress, to loop: any EventLoop) {
        let ufrag = session.localUfrag
        lent[ufrag] = ([], false)
        handshakeSteps += 1
        let loan = Loan(session: session)
        loop.execute {
            let events = loan.session.handle(datagram: datagram, from: source, now: .now)
            self.eventLoop.execute { self.returned(loan, events: events) }
        }
    }

    private func returned(_ loan: Loan, events: [WebRTCSession.Event]) {
        let ufrag = loan.session.localUfrag
        guard let entry = lent.removeValue(forKey: ufrag) else { return }
        dispatch(events, ufrag: ufrag)
        if entry.removed {
            remove(ufrag: ufrag)
            return
        }
        guard sessions[ufrag] != nil else { return }  // closed by the step
        for (datagram, source, destination) in entry.waiting { deliver(datagram, from: source, to: destination) }
        flush()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flush()
        guard !handOver.isEmpty else { return }
        for (target, datagrams) in handOver {
            handedOver += datagrams.count
            let shard = shards[target]
            shard.eventLoop.execute {
                for item in datagrams { shard.deliver(item.datagram, from: item.source, to: item.destination) }
                shard.flush()
            }
        }
        handOver.removeAll(keepingCapacity: true)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // ICMP errors (a listener went away) surface here; the session's consent timer ends it.
    }

    func runTimers() {
        let now = ContinuousClock.now
        let ntp = Self.ntpNow()
        var released = 0
        for (ufrag, session) in sessions where lent[ufrag] == nil {
            guard let due = session.nextTimer(now: now), due <= now else { continue }
            let wasReleased = session.isDTLSReleased
            dispatch(session.handleTimer(now: now, ntpTime: ntp), ufrag: ufrag)
            if !wasReleased, session.isDTLSReleased { released += 1 }
        }
        flush()
        reportDrops()
        heapTrim.released(released)
        if heapTrim.shouldTrim(now: now) { _ = mallocTrim?(0) }
    }

    func recordDrop(_ reason: WebRTCUDPDropReason) {
        recordDrops(reason, 1)
    }

    private func recordDrops(_ reason: WebRTCUDPDropReason, _ count: Int) {
        guard count > 0 else { return }
        droppedDatagrams &+= count
        droppedUnreported[reason, default: 0] += count
    }

    /// Counts the fan-outs the backlog dropped since the last call.
    func collectBacklogDrops() {
        recordDrops(.behind, backlog.withLockedValue { $0.takeDrops() })
    }

    /// Drops are reported in a batch per timer pass, not per datagram: they come in bursts.
    func reportDrops() {
        collectBacklogDrops()
        guard !droppedUnreported.isEmpty else { return }
        for (reason, count) in droppedUnreported { onDroppedDatagrams?(reason, count) }
        droppedUnreported.removeAll(keepingCapacity: true)
    }

    func dispatch(_ events: [WebRTCSession.Event], ufrag: String) {
        for event in events {
            switch event {
            case let .send(bytes, destination):
                if bytes.count >= 20, bytes[0] == 0x00, bytes[1] == 0x01 {  // a check of its own
                    routes.withLockedValue { $0.noteCheck(bytes, ufrag: ufrag) }
                }
                write(bytes, to: destination, ufrag: ufrag)
            case .closed:
                sessions.removeValue(forKey: ufrag)
                forget(ufrag)
                onEvent(ufrag, event)
            default:
                onEvent(ufrag, event)
            }
        }
    }
    func write(_ bytes: [UInt8], to destination: TransportAddress, ufrag: String) {
        guard let batch else { return }
        if let cached = destinations[ufrag], cached.transport == destination {
            var address = cached.address
            recordDrops(.socketFull, batch.append(bytes, to: &address))
            return
        }
        guard var address = batch.address(destination) else { return }
        if sessions[ufrag] != nil { destinations[ufrag] = (destination, address) }
        // UDP has no backpressure to wait for: while the kernel buffer is full, media is dropped
        // (listeners recover with NACK and keyframes) rather than queued without bound.
        recordDrops(.socketFull, batch.append(bytes, to: &address))
    }

    func flush() {
        guard let batch, batch.count > 0 else { return }
        recordDrops(.socketFull, batch.send())
    }

    static func ntpNow() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return RTPSenderStatistics.ntpTime(unixSeconds: Int64(now.tv_sec), nanoseconds: Int64(now.tv_nsec))
    }
}

/// A session on loan to the handshake group: owned there until it is handed back, so the one
/// owner rule of `WebRTCSession` holds though it crosses threads.
private struct Loan: @unchecked Sendable {
    let session: WebRTCSession
}

/// glibc's `malloc_trim`, looked up once: `malloc.h` is not part of Swift's Glibc module. Nil
/// elsewhere.
private let mallocTrim: (@convention(c) (Int) -> Int32)? = {
    #if canImport(Glibc)
    // RTLD_DEFAULT is the null handle in glibc.
    guard let symbol = dlsym(nil, "malloc_trim") else { return nil }
    return unsafeBitCast(symbol, to: (@convention(c) (Int) -> Int32).self)
    #else
    return nil
    #endif
}()
