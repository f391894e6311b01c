import AirwaveWebRTC
import Foundation
import NIOCore
import NIOPosix

/// How a load-generator WHEP listener behaves on the wire.
public struct WHEPListenerConfiguration: Sendable {
    /// Consent-freshness checks once connected (the server ends a session after 30 s without
    /// one). Each listener's first consent check is spread uniformly over one interval, so a
    /// fleet's checks do not arrive in bursts.
    public var consentInterval: TimeAmount
    /// How often the first (nominating) check is repeated until the server answers.
    public var checkRetryInterval: TimeAmount
    /// ICE and DTLS must finish within this time after `start`.
    public var connectTimeout: TimeAmount
    /// Decrypt (SRTP unprotect) every n-th RTP packet; 0 decrypts none. Every packet is counted
    /// and its sequence number checked either way; decrypting a sample keeps the generator's
    /// own CPU low while still proving the keys work.
    public var decryptEvery: Int
    /// The offer's media direction.
    public var direction: WHEPOffer.Direction
    /// The SRTP protection profiles the DTLS handshake offers, in order (the server picks).
    /// Defaults to both, GCM first, as browsers; `AIRWAVE_BENCH_WHEP_SRTP=aes_cm` (or `gcm`)
    /// in the environment offers only that one, so that a run measures one profile.
    public var srtpProfiles: [SRTPProfile] = WHEPListenerConfiguration.environmentSRTPProfiles

    /// The profiles `AIRWAVE_BENCH_WHEP_SRTP` names, else both.
    public static var environmentSRTPProfiles: [SRTPProfile] {
        switch ProcessInfo.processInfo.environment["AIRWAVE_BENCH_WHEP_SRTP"] {
        case "aes_cm": [.aes128CMHMACSHA1_80]
        case "gcm": [.aeadAES128GCM]
        default: [.aeadAES128GCM, .aes128CMHMACSHA1_80]
        }
    }

    /// The defaults are what `airwave-bench` uses unless told otherwise.
    public init(consentInterval: TimeAmount = .seconds(2), checkRetryInterval: TimeAmount = .milliseconds(100),
                connectTimeout: TimeAmount = .seconds(15), decryptEvery: Int = 50,
                direction: WHEPOffer.Direction = .recvonly) {
        self.consentInterval = consentInterval
        self.checkRetryInterval = checkRetryInterval
        self.connectTimeout = connectTimeout
        self.decryptEvery = decryptEvery
        self.direction = direction
    }
}

/// What one listener (or, summed, a fleet) received and sent.
public struct WHEPCounters: Sendable, Equatable {
    /// SRTP packets received (audio).
    public var rtpPackets = 0
    public var rtpBytes = 0
    /// SRTCP packets received (the server's sender reports).
    public var rtcpPackets = 0
    /// RTP sequence numbers skipped (lost or not sent) and packets that came out of order.
    public var gaps = 0
    public var reordered = 0
    /// RTP packets whose payload type was not the negotiated Opus one.
    public var wrongPayloadType = 0
    /// Sampled packets that were unprotected, and those that failed to.
    public var decrypted = 0
    public var decryptFailures = 0
    /// libsrtp status of the failed unprotects, by code (9: replay, 10: replay too old, 7: auth).
    public var decryptFailureCodes: [Int32: Int] = [:]
    /// STUN Binding requests sent and success responses received.
    public var checksSent = 0
    public var checksAnswered = 0
    /// Listeners whose server sent DTLS close_notify.
    public var closedByServer = 0

    /// All zero.
    public init() {}

    /// Adds another listener's counters.
    public mutating func add(_ other: WHEPCounters) {
        rtpPackets += other.rtpPackets
        rtpBytes += other.rtpBytes
        rtcpPackets += other.rtcpPackets
        gaps += other.gaps
        reordered += other.reordered
        wrongPayloadType += other.wrongPayloadType
        decrypted += other.decrypted
        decryptFailures += other.decryptFailures
        decryptFailureCodes.merge(other.decryptFailureCodes, uniquingKeysWith: +)
        checksSent += other.checksSent
        checksAnswered += other.checksAnswered
        closedByServer += other.closedByServer
    }
}

/// Why a listener did not connect.
public struct WHEPListenerError: Error, Sendable, CustomStringConvertible, Equatable {
    public let description: String
    /// An error with this reason.
    public init(_ description: String) { self.description = description }
}

/// One WHEP listener of the load generator on its own UDP socket (the server routes media by
/// remote address, so every listener needs one): it offers, then — given the server's answer —
/// sends nominating STUN checks until one is answered, runs the DTLS handshake (normally as
/// the client, since the ICE-lite server answers `a=setup:passive`), and from then on counts
/// the SRTP packets it receives and keeps consent fresh.
///
/// Created with `bind`; everything mutable is confined to `eventLoop`. The public methods may
/// be called from any thread.
public final class WHEPListener: @unchecked Sendable {
    /// Where the listener is: offered (`idle`), ICE, DTLS, receiving, or stopped.
    public enum State: Sendable, Equatable {
        case idle
        case checking
        case handshaking
        case connected
        case failed(String)
        case closed
    }

    /// This listener's ICE credentials, as offered.
    public let localUfrag: String
    public let localPassword: String
    /// The loop its socket and all its state live on.
    public let eventLoop: any EventLoop
    public let configuration: WHEPListenerConfiguration
    /// The listener's bound UDP address (127.0.0.1:port).
    public let localAddress: TransportAddress
    let channel: any Channel
    private let context: DTLSContext

    // Loop-confined state.
    private var state: State = .idle
    private var answer: WHEPAnswer?
    private var server: NIOCore.SocketAddress?
    private var integrityKey: [UInt8] = []
    private var tieBreaker: [UInt8] = []
    private var dtls: DTLSEndpoint?
    private var srtp: SRTPSession?
    private var retryTask: RepeatedTask?
    private var consentTask: RepeatedTask?
    private var dtlsTimer: Scheduled<Void>?
    private var connectTimer: Scheduled<Void>?
    private var connected: EventLoopPromise<Void>?
    private var totals = WHEPCounters()
    private var lastSequence: UInt16?
    /// RTP packets since the last decrypted one. The first packet is always decrypted: libsrtp
    /// infers the rollover counter from the first packet it unprotects, so starting on a later
    /// one that comes after a sequence-number wrap would put every sample out of step.
    private var sinceDecrypt = Int.max - 1
    private var waiters: [(condition: (WHEPCounters) -> Bool, promise: EventLoopPromise<WHEPCounters>)] = []

    /// Nanoseconds from `start` to connected (0 until then).
    public private(set) var connectNanos: UInt64 = 0
    private var startedAt: NIODeadline?

    private init(channel: any Channel, context: DTLSContext, configuration: WHEPListenerConfiguration,
                 ufrag: String, password: String, localAddress: TransportAddress) {
        self.channel = channel
        self.eventLoop = channel.eventLoop
        self.context = context
        self.configuration = configuration
        self.localUfrag = ufrag
        self.localPassword = password
        self.localAddress = localAddress
    }

    /// Binds a UDP socket on `host` (port chosen by the kernel) on `eventLoop`. `context` is the
    /// generator's certificate, shared by all listeners. `ufrag` must be unique per listener
    /// on the server (the server's checks are addressed `serverUfrag:ufrag`; uniqueness keeps
    /// the logs readable); the password is random.
    public static func bind(host: String = "127.0.0.1", on eventLoop: any EventLoop, context: DTLSContext,
                            configuration: WHEPListenerConfiguration = .init(), ufrag: String)
        -> EventLoopFuture<WHEPListener>
    {
        let relay = ListenerRelay()
        return DatagramBootstrap(group: eventLoop)
            // One datagram per wake-up: a listener gets one packet per 20 ms, and NIO's default
            // of up to 4 reads per wake-up costs a second recvmsg (EAGAIN) for every packet.
            .channelOption(.maxMessagesPerRead, value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(WHEPDatagramHandler(relay: relay))
                }
            }
            .bind(host: host, port: 0)
            .flatMapThrowing { channel in
                guard let address = channel.localAddress, let ip = address.ipAddress, let port = address.port,
                      let local = TransportAddress(host: ip, port: UInt16(port)) else {
                    channel.close(promise: nil)
                    throw WHEPListenerError("no local address")
                }
                let listener = WHEPListener(channel: channel, context: context, configuration: configuration, ufrag: ufrag,
                                            password: ICECredentials.random().password, localAddress: local)
                relay.listener = listener
                return listener
            }
    }

    /// This listener's offer.
    public func offer(sessionID: UInt64 = .random(in: 1...UInt64(Int64.max))) -> WHEPOffer {
        WHEPOffer(ufrag: localUfrag, password: localPassword, fingerprint: context.fingerprint, candidate: localAddress,
                  sessionID: sessionID, direction: configuration.direction)
    }

    /// Starts ICE and DTLS against the answer. The future succeeds once SRTP keys are
    /// established, and fails on a DTLS failure or after `connectTimeout`.
    public func start(answer: WHEPAnswer) -> EventLoopFuture<Void> {
        eventLoop.flatSubmit {
            guard self.state == .idle else { return self.eventLoop.makeFailedFuture(WHEPListenerError("already started")) }
            return self.begin(answer)
        }
    }

    /// The counters so far.
    public func counters() -> EventLoopFuture<WHEPCounters> {
        eventLoop.submit { self.totals }
    }

    /// The state so far.
    public func currentState() -> EventLoopFuture<State> {
        eventLoop.submit { self.state }
    }

    /// The counters on the listener's loop, without a hop (for a fleet that sums its listeners
    /// in one task per loop).
    public func countersOnLoop() -> WHEPCounters {
        eventLoop.preconditionInEventLoop()
        return totals
    }

    /// Succeeds (with the counters) as soon as `condition` holds; fails once the listener has
    /// stopped (closed or failed) without it holding. For tests and orchestration.
    public func wait(until condition: @escaping @Sendable (WHEPCounters) -> Bool) -> EventLoopFuture<WHEPCounters> {
        eventLoop.flatSubmit {
            if condition(self.totals) { return self.eventLoop.makeSucceededFuture(self.totals) }
            switch self.state {
            case .closed, .failed:
                return self.eventLoop.makeFailedFuture(WHEPListenerError("listener stopped: \(self.state)"))
            default:
                break
            }
            let promise = self.eventLoop.makePromise(of: WHEPCounters.self)
            self.waiters.append((condition, promise))
            return promise.futureResult
        }
    }

    /// Hangs up on the wire (DTLS close_notify) and closes the socket. The WHEP `DELETE` is the
    /// caller's (it knows the session's URL).
    public func close() -> EventLoopFuture<Void> {
        eventLoop.flatSubmit {
            if let dtls = self.dtls, let server = self.server {
                for datagram in dtls.close() { self.write(datagram, to: server) }
                self.channel.flush()
            }
            self.stop(.closed)
            return self.channel.close().recover { _ in }
        }
    }

    // MARK: - On the loop

    private func begin(_ answer: WHEPAnswer) -> EventLoopFuture<Void> {
        let server: NIOCore.SocketAddress
        let dtls: DTLSEndpoint
        do {
            server = try NIOCore.SocketAddress(ipAddress: answer.serverAddress.host, port: Int(answer.serverAddress.port))
            dtls = try DTLSEndpoint(context: context, role: answer.dtlsRole, remoteFingerprint: answer.serverFingerprint,
                                    profiles: configuration.srtpProfiles)
        } catch {
            state = .failed("\(error)")
            return eventLoop.makeFailedFuture(WHEPListenerError("\(error)"))
        }
        self.answer = answer
        self.server = server
        self.dtls = dtls
        integrityKey = Array(answer.serverPassword.utf8)
        tieBreaker = Self.randomBytes(8)
        state = .checking
        startedAt = .now()
        let promise = eventLoop.makePromise(of: Void.self)
        connected = promise
        connectTimer = eventLoop.scheduleTask(in: configuration.connectTimeout) {
            self.fail("timed out after \(self.configuration.connectTimeout.nanoseconds / 1_000_000) ms in \(self.state)")
        }
        sendCheck(nominate: true)
        retryTask = eventLoop.scheduleRepeatedTask(initialDelay: configuration.checkRetryInterval,
                                                   delay: configuration.checkRetryInterval) { _ in
            if self.state == .checking { self.sendCheck(nominate: true) }
        }
        return promise.futureResult
    }

    /// A Binding request as a controlling full-ICE agent sends it (RFC 8445 §7.1.1): USERNAME
    /// `serverUfrag:localUfrag`, PRIORITY, ICE-CONTROLLING, MESSAGE-INTEGRITY with the server's
    /// password, FINGERPRINT; USE-CANDIDATE on the nominating checks only (consent checks, like
    /// browsers', go without it).
    private func sendCheck(nominate: Bool) {
        guard let answer, let server else { return }
        var priority: [UInt8] = []
        priority.reserveCapacity(4)
        for shift in stride(from: 24, through: 0, by: -8) { priority.append(UInt8(truncatingIfNeeded: WHEPOffer.hostPriority >> UInt32(shift))) }
        var attributes: [STUNAttribute] = [
            .username("\(answer.serverUfrag):\(localUfrag)"),
            STUNAttribute(.priority, value: priority),
            STUNAttribute(.iceControlling, value: tieBreaker),
        ]
        if nominate { attributes.append(STUNAttribute(.useCandidate, value: [])) }
        let request = STUNMessage(messageClass: .request, transactionID: Self.randomBytes(12), attributes: attributes)
        write(request.serialized(integrityKey: integrityKey, fingerprint: true), to: server)
        channel.flush()
        totals.checksSent += 1
    }

    func receive(_ buffer: ByteBuffer) {
        guard let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else { return }
        switch first {
        case 128...191:
            receiveRTPOrRTCP(buffer)
        case 0...3:
            receiveSTUN(Array(buffer.readableBytesView))
        case 20...63:
            receiveDTLS(Array(buffer.readableBytesView))
        default:
            break
        }
    }

    private func receiveRTPOrRTCP(_ buffer: ByteBuffer) {
        guard buffer.readableBytes >= 12, let second = buffer.getInteger(at: buffer.readerIndex + 1, as: UInt8.self) else { return }
        // RFC 5761 §4: RTCP packet types 192–223 in the second byte.
        if (192...223).contains(second) {
            totals.rtcpPackets += 1
            return
        }
        guard state == .connected else { return }
        totals.rtpPackets += 1
        totals.rtpBytes += buffer.readableBytes
        if second & 0x7F != answer?.audioPayloadType { totals.wrongPayloadType += 1 }
        if let sequence = buffer.getInteger(at: buffer.readerIndex + 2, as: UInt16.self) {
            if let last = lastSequence {
                let step = Int16(bitPattern: sequence &- last)
                if step > 0 {
                    totals.gaps += Int(step) - 1
                    lastSequence = sequence
                } else {
                    totals.reordered += 1
                }
            } else {
                lastSequence = sequence
            }
        }
        if configuration.decryptEvery > 0, let srtp {
            sinceDecrypt &+= 1
            if sinceDecrypt >= configuration.decryptEvery {
                sinceDecrypt = 0
                var packet = Array(buffer.readableBytesView)
                do {
                    try srtp.unprotectRTP(&packet)
                    totals.decrypted += 1
                } catch {
                    totals.decryptFailures += 1
                    if case let .unprotect(code) = error { totals.decryptFailureCodes[code, default: 0] += 1 }
                }
            }
        }
        if !waiters.isEmpty { checkWaiters() }
    }

    private func receiveSTUN(_ datagram: [UInt8]) {
        guard let message = try? STUNMessage.parse(datagram) else { return }
        if message.messageClass == .request {
            answerCheck(message, datagram)
            return
        }
        guard message.messageClass == .successResponse else { return }
        totals.checksAnswered += 1
        if state == .checking {
            // The first answer: authenticate it once (later ones only keep consent).
            guard (try? STUNMessage.verifyMessageIntegrity(datagram[...], key: integrityKey)) != nil else { return }
            retryTask?.cancel()
            retryTask = nil
            state = .handshaking
            if let dtls, let server {
                for datagram in dtls.start() { write(datagram, to: server) }
                channel.flush()
            }
            armDTLSTimer()
            // Consent from now on, the first one at a random point of the first interval.
            let interval = configuration.consentInterval
            let first = TimeAmount.nanoseconds(Int64.random(in: interval.nanoseconds / 2...interval.nanoseconds))
            consentTask = eventLoop.scheduleRepeatedTask(initialDelay: first, delay: interval) { _ in
                self.sendCheck(nominate: false)
            }
        }
        if !waiters.isEmpty { checkWaiters() }
    }

    /// Answers the server's own check, as a full ICE agent does: the server sends media to an
    /// address only once it has answered (RFC 7675 consent, issue 13).
    private func answerCheck(_ request: STUNMessage, _ datagram: [UInt8]) {
        guard let answer, let server, let ip = server.ipAddress, let port = server.port,
              let source = TransportAddress(host: ip, port: UInt16(port)),
              request.attribute(.username)?.stringValue == "\(localUfrag):\(answer.serverUfrag)",
              (try? STUNMessage.verifyMessageIntegrity(datagram, password: localPassword)) != nil
        else { return }
        let response = STUNMessage(messageClass: .successResponse, transactionID: request.transactionID,
                                   attributes: [.xorMappedAddress(source, transactionID: request.transactionID)])
        write(response.serialized(integrityPassword: localPassword, fingerprint: true), to: server)
        channel.flush()
    }

    private func receiveDTLS(_ datagram: [UInt8]) {
        guard let dtls, let server, state == .handshaking || state == .connected else { return }
        for out in dtls.handleDatagram(datagram) { write(out, to: server) }
        channel.flush()
        switch dtls.state {
        case .handshaking:
            armDTLSTimer()
        case let .connected(keys):
            guard state == .handshaking else { return }
            do {
                srtp = try SRTPSession(keyingMaterial: keys, role: dtls.role)
            } catch {
                fail("SRTP: \(error)")
                return
            }
            dtlsTimer?.cancel()
            dtlsTimer = nil
            connectTimer?.cancel()
            connectTimer = nil
            state = .connected
            if let startedAt { connectNanos = UInt64(max(0, (NIODeadline.now() - startedAt).nanoseconds)) }
            connected?.succeed(())
            connected = nil
        case let .failed(error):
            fail("DTLS: \(error)")
        case .closed:
            totals.closedByServer += 1
            stop(.closed)
        }
    }

    /// OpenSSL keeps the retransmission timer; call back when it says.
    private func armDTLSTimer() {
        dtlsTimer?.cancel()
        guard let due = dtls?.timeout else { dtlsTimer = nil; return }
        let nanos = max(1_000_000, Int64(due.components.seconds) * 1_000_000_000 + due.components.attoseconds / 1_000_000_000)
        dtlsTimer = eventLoop.scheduleTask(in: .nanoseconds(nanos)) {
            guard self.state == .handshaking, let dtls = self.dtls, let server = self.server else { return }
            for datagram in dtls.handleTimeout() { self.write(datagram, to: server) }
            self.channel.flush()
            if case let .failed(error) = dtls.state { self.fail("DTLS: \(error)") } else { self.armDTLSTimer() }
        }
    }

    private func fail(_ reason: String) {
        guard state != .closed else { return }
        if case .failed = state { return }
        stop(.failed(reason))
    }

    private func stop(_ final: State) {
        state = final
        retryTask?.cancel()
        consentTask?.cancel()
        dtlsTimer?.cancel()
        connectTimer?.cancel()
        retryTask = nil
        consentTask = nil
        dtlsTimer = nil
        connectTimer = nil
        if let connected {
            let reason: String
            if case let .failed(text) = final { reason = text } else { reason = "closed before connecting" }
            connected.fail(WHEPListenerError(reason))
            self.connected = nil
        }
        for waiter in waiters { waiter.promise.fail(WHEPListenerError("listener stopped: \(final)")) }
        waiters.removeAll()
    }

    private func checkWaiters() {
        var remaining: [(condition: (WHEPCounters) -> Bool, promise: EventLoopPromise<WHEPCounters>)] = []
        for waiter in waiters {
            if waiter.condition(totals) { waiter.promise.succeed(totals) } else { remaining.append(waiter) }
        }
        waiters = remaining
    }

    private func write(_ bytes: [UInt8], to server: NIOCore.SocketAddress) {
        let buffer = channel.allocator.buffer(bytes: bytes)
        channel.write(AddressedEnvelope(remoteAddress: server, data: buffer), promise: nil)
    }

    func channelClosed() {
        if state != .closed { fail("socket closed") }
    }

    static func randomBytes(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }
}

/// Hands the channel's datagrams to the listener, which is made after the socket is bound.
final class ListenerRelay: @unchecked Sendable {
    /// Set once, on the channel's loop, before the first read can be delivered to it.
    var listener: WHEPListener?
}

/// The listener's only channel handler.
final class WHEPDatagramHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    private let relay: ListenerRelay
    init(relay: ListenerRelay) { self.relay = relay }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        relay.listener?.receive(unwrapInboundIn(data).data)
    }

    func channelInactive(context: ChannelHandlerContext) {
        relay.listener?.channelClosed()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // ICMP port unreachable after the server went away surfaces here: nothing to do, the
        // counters stop growing.
    }
}
