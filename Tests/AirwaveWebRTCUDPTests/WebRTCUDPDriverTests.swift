import AirwaveWebRTC
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

@testable import AirwaveWebRTCUDP

/// Collects the datagrams a client socket receives.
final class DatagramCollector: ChannelInboundHandler, Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    let continuation: AsyncStream<[UInt8]>.Continuation

    init(_ continuation: AsyncStream<[UInt8]>.Continuation) {
        self.continuation = continuation
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        continuation.yield(Array(unwrapInboundIn(data).data.readableBytesView))
    }
}

struct Timeout: Error {}

/// A WHEP listener on a real UDP socket: ICE check, DTLS handshake, SRTP, against the driver.
final class UDPListener: @unchecked Sendable {
    let channel: any Channel
    var datagrams: AsyncStream<[UInt8]>.AsyncIterator
    let continuation: AsyncStream<[UInt8]>.Continuation
    let server: NIOCore.SocketAddress
    let context: DTLSContext
    let ufrag: String
    var srtp: SRTPSession?

    init(group: any EventLoopGroup, serverPort: Int, ufrag: String) async throws {
        let (stream, continuation) = AsyncStream<[UInt8]>.makeStream()
        channel = try await DatagramBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(DatagramCollector(continuation))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        datagrams = stream.makeAsyncIterator()
        self.continuation = continuation
        server = try NIOCore.SocketAddress(ipAddress: "127.0.0.1", port: serverPort)
        context = try DTLSContext(commonName: "listener")
        self.ufrag = ufrag
    }

    func send(_ bytes: [UInt8]) async throws {
        let buffer = channel.allocator.buffer(bytes: bytes)
        try await channel.writeAndFlush(AddressedEnvelope(remoteAddress: server, data: buffer))
    }

    /// The next datagram; the stream ends (and this throws) if none comes within 5 s.
    func next() async throws -> [UInt8] {
        let continuation = self.continuation
        let deadline = channel.eventLoop.scheduleTask(in: .seconds(5)) { continuation.finish() }
        defer { deadline.cancel() }
        var iterator = datagrams
        let datagram = await iterator.next()
        datagrams = iterator
        guard let datagram else { throw Timeout() }
        return datagram
    }

    /// The offer a browser would send, with this listener's credentials and certificate; with
    /// `speakerSSRCs`, a per-speaker player's (three audio sections).
    func negotiate(serverContext: DTLSContext, serverPort: Int, serverUfrag: String,
                   speakerSSRCs: [UInt32] = []) throws -> NegotiatedSession {
        let file = speakerSSRCs.isEmpty ? "chromium-whep-offer.sdp" : "chromium-whep-speakers-offer.sdp"
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Fixtures/webrtc/\(file)")
        let text = try String(contentsOf: url, encoding: .utf8)
        let lines = text.split(separator: "\r\n").map { line -> String in
            if line.hasPrefix("a=fingerprint:") { return "a=fingerprint:\(context.fingerprint.attributeValue)" }
            if line.hasPrefix("a=ice-ufrag:") { return "a=ice-ufrag:\(ufrag)" }
            if line.hasPrefix("a=ice-pwd:") { return "a=ice-pwd:\(Self.password)" }
            return String(line)
        }
        var parameters = AnswerParameters(
            role: .listener, iceUfrag: serverUfrag, icePassword: "serverpassword0123456789",
            fingerprint: serverContext.fingerprint,
            candidates: [TransportAddress(host: "127.0.0.1", port: UInt16(serverPort))!], sendsVideo: false,
            audioSSRC: 1111, videoSSRC: 2222, cname: "airwave", sessionID: 1)
        parameters.speakerSSRCs = speakerSSRCs
        return try SessionDescription.parse(lines.joined(separator: "\r\n")).answer(parameters)
    }

    static let password = "listenerpassword0123456"

    /// The nominating check a controlling agent sends.
    func check(serverUfrag: String, nominate: Bool = true) -> [UInt8] {
        var attributes: [STUNAttribute] = [.username("\(serverUfrag):\(ufrag)"), STUNAttribute(.priority, value: [0, 0, 1, 0])]
        if nominate { attributes.append(STUNAttribute(.useCandidate, value: [])) }
        return STUNMessage(messageClass: .request, transactionID: Array(repeating: 3, count: 12), attributes: attributes)
            .serialized(integrityPassword: "serverpassword0123456789", fingerprint: true)
    }

    /// The answer a full ICE agent gives to the server's own check (RFC 7675 consent).
    func answer(_ request: [UInt8]) throws -> [UInt8] {
        try STUNMessage.verifyMessageIntegrity(request, password: Self.password)
        let message = try STUNMessage.parse(request)
        let mapped = TransportAddress(host: "127.0.0.1", port: UInt16(server.port!))!
        return STUNMessage(messageClass: .successResponse, transactionID: message.transactionID,
                           attributes: [.xorMappedAddress(mapped, transactionID: message.transactionID)])
            .serialized(integrityPassword: Self.password, fingerprint: true)
    }

    /// Nominating check (answering the server's check of this address), then the DTLS
    /// handshake over the socket.
    func connect(serverUfrag: String, serverContext: DTLSContext) async throws {
        try await send(check(serverUfrag: serverUfrag))
        var answered = false
        var checked = false
        while !(answered && checked) {
            let datagram = try await next()
            let message = try STUNMessage.parse(datagram)
            if message.messageClass == .request {
                // Another session's check of this address is not answered.
                guard message.attribute(.username)?.stringValue == "\(ufrag):\(serverUfrag)" else { continue }
                try await send(try answer(datagram))
                checked = true
            } else {
                #expect(message.messageClass == .successResponse)
                #expect(message.xorMappedAddress == TransportAddress(channel.localAddress!))
                answered = true
            }
        }

        let dtls = try DTLSEndpoint(context: context, role: .client, remoteFingerprint: serverContext.fingerprint)
        for datagram in dtls.start() { try await send(datagram) }
        while dtls.state == .handshaking {
            let datagram = try await next()
            guard PacketKind(datagram: datagram) == .dtls else { continue }
            for reply in dtls.handleDatagram(datagram) { try await send(reply) }
        }
        guard case let .connected(keys) = dtls.state else {
            Issue.record("DTLS: \(dtls.state)")
            return
        }
        srtp = try SRTPSession(keyingMaterial: keys, role: .client)
    }
}

extension TransportAddress {
    init?(_ address: NIOCore.SocketAddress) {
        guard let ip = address.ipAddress, let port = address.port else { return nil }
        self.init(host: ip, port: UInt16(port))
    }
}

@Suite struct WebRTCUDPDriverTests {
    @Test func listenersConnectOverUDPAndGetTheFanOut() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let (events, eventContinuation) = AsyncStream<(String, WebRTCSession.Event)>.makeStream()
        let driver = try await WebRTCUDPDriver.start(
            configuration: WebRTCUDPConfiguration(host: "127.0.0.1", port: 0), group: group,
            onEvent: { eventContinuation.yield(($0, $1)) })
        let serverContext = try DTLSContext()
        var listeners: [UDPListener] = []
        for index in 0..<4 {
            let listener = try await UDPListener(group: group, serverPort: driver.port, ufrag: "l\(index)")
            let serverUfrag = "srv\(index)"
            let negotiated = try listener.negotiate(serverContext: serverContext, serverPort: driver.port, serverUfrag: serverUfrag)
            try await driver.addSession {
                try WebRTCSession(negotiated: negotiated, role: .listener, localUfrag: serverUfrag,
                                  localPassword: "serverpassword0123456789", audioSSRC: 1111, videoSSRC: 2222,
                                  dtlsContext: serverContext, now: .now)
            }
            try await listener.connect(serverUfrag: serverUfrag, serverContext: serverContext)
            listeners.append(listener)
        }
        var connected: Set<String> = []
        let deadline = group.next().scheduleTask(in: .seconds(10)) { eventContinuation.finish() }
        var eventIterator = events.makeAsyncIterator()
        while connected.count < 4, let item = await eventIterator.next() {
            if item.1 == .connected { connected.insert(item.0) }
        }
        // Cancelled here, not in a `defer`: that would run after the group shut down, and NIO
        // warns about scheduling on a loop that is gone.
        deadline.cancel()
        #expect(connected == ["srv0", "srv1", "srv2", "srv3"])
        #expect(try await driver.sessionCount() == 4)

        driver.sendAudio(to: ["srv0", "srv1", "srv2", "srv3"], payload: [0xFC, 9, 9], sourceSSRC: 5,
                         sequenceNumber: 100, timestamp: 4800)
        for listener in listeners {
            var packet = try await listener.next()
            while PacketKind(datagram: packet) != .rtp { packet = try await listener.next() }
            try #require(listener.srtp).unprotectRTP(&packet)
            let rtp = try RTPPacket.parse(packet)
            #expect(rtp.payload == [0xFC, 9, 9])
            #expect(rtp.ssrc == 1111)
            #expect(rtp.payloadType == 111)
        }

        try await driver.removeSession(ufrag: "srv0")
        #expect(try await driver.sessionCount() == 3)
        try await driver.shutdown()
        for listener in listeners { try await listener.channel.close() }
        try await group.shutdownGracefully()
    }

    @Test func theSessionLimitIsEnforced() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let driver = try await WebRTCUDPDriver.start(
            configuration: WebRTCUDPConfiguration(host: "127.0.0.1", port: 0, maximumSessions: 1), group: group,
            onEvent: { _, _ in })
        let serverContext = try DTLSContext()
        let listener = try await UDPListener(group: group, serverPort: driver.port, ufrag: "l")
        let negotiated = try listener.negotiate(serverContext: serverContext, serverPort: driver.port, serverUfrag: "a")
        func make(_ ufrag: String) -> @Sendable () throws -> WebRTCSession {
            {
                try WebRTCSession(negotiated: negotiated, role: .listener, localUfrag: ufrag,
                                  localPassword: "serverpassword0123456789", audioSSRC: 1, videoSSRC: 2,
                                  dtlsContext: serverContext, now: .now)
            }
        }
        try await driver.addSession(make("a"))
        await #expect(throws: WebRTCUDPError.tooManySessions) { try await driver.addSession(make("b")) }
        try await driver.shutdown()
        try await listener.channel.close()
        try await group.shutdownGracefully()
    }
}

/// Starting the driver and what it reports besides session events.
@Suite struct WebRTCUDPDriverStartTests {
    /// Found by the errno (EADDRINUSE), so the server's one-line start error does not depend on
    /// the wording of the system's message.
    @Test func aPortInUseIsReportedAsSuch() async throws {
        let taken = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(taken.localAddress?.port)
        do {
            let driver = try await WebRTCUDPDriver.start(configuration: .init(host: "127.0.0.1", port: port),
                                                         group: MultiThreadedEventLoopGroup.singleton, onEvent: { _, _ in })
            try await driver.shutdown()
            Issue.record("the driver bound a UDP port in use")
        } catch let error as WebRTCUDPStartError {
            guard case .portInUse(let host, let inUse) = error else {
                Issue.record("expected portInUse, got \(error)")
                return
            }
            #expect(host == "127.0.0.1" && inUse == port)
            #expect(error.description == "UDP port \(port) on 127.0.0.1 is already in use")
        }
        try await taken.close()
    }

    /// Dropped datagrams reach `onDroppedDatagrams` once per timer pass, as a count since the
    /// last report (the server adds it to `airwave_webrtc_datagrams_dropped_total`).
    @Test func droppedDatagramsAreReportedPerTimerPass() {
        let reports = NIOLockedValueBox<[String]>([])
        let handler = WebRTCUDPHandler(index: 0, eventLoop: MultiThreadedEventLoopGroup.singleton.next(),
                                       routes: NIOLockedValueBox(WebRTCUDPRoutes(shards: 1)), maximumSessions: 1, onEvent: { _, _ in },
                                       onDroppedDatagrams: { reason, count in reports.withLockedValue { $0.append("\(reason.rawValue) \(count)") } })
        handler.runTimers()
        #expect(reports.withLockedValue { $0 }.isEmpty, "nothing dropped, nothing reported")
        for _ in 0..<3 { handler.recordDrop(.socketFull) }
        handler.runTimers()
        handler.recordDrop(.socketFull)
        handler.runTimers()
        handler.runTimers()
        #expect(reports.withLockedValue { $0 } == ["socket_full 3", "socket_full 1"])
        #expect(handler.droppedDatagrams == 4)
    }
}
