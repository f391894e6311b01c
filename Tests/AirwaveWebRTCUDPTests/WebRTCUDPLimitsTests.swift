import AirwaveWebRTC
import Dispatch
import AirwaveWebRTCUDP
import NIOCore
import NIOPosix
import Testing

/// Issue 13 over real loopback sockets: a forged nomination, a DTLS handshake that never
/// finishes, a NACK storm.
@Suite struct WebRTCUDPLimitsTests {
    /// A driver with one listener session `srv` made with `configuration`, and its events.
    struct Fixture {
        let group: MultiThreadedEventLoopGroup
        let driver: WebRTCUDPDriver
        let events: AsyncStream<(String, WebRTCSession.Event)>
        let eventContinuation: AsyncStream<(String, WebRTCSession.Event)>.Continuation
        let serverContext: DTLSContext
        let listener: UDPListener

        init(configuration: WebRTCSession.Configuration = .init(), fanOutBacklog: Int = 10) async throws {
            group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            (events, eventContinuation) = AsyncStream<(String, WebRTCSession.Event)>.makeStream()
            let continuation = eventContinuation
            var udp = WebRTCUDPConfiguration(host: "127.0.0.1", port: 0, timerInterval: .milliseconds(20))
            udp.fanOutBacklog = fanOutBacklog
            driver = try await WebRTCUDPDriver.start(configuration: udp, group: group,
                                                     onEvent: { continuation.yield(($0, $1)) })
            serverContext = try DTLSContext()
            listener = try await UDPListener(group: group, serverPort: driver.port, ufrag: "l")
            let negotiated = try listener.negotiate(serverContext: serverContext, serverPort: driver.port, serverUfrag: "srv")
            let context = serverContext
            try await driver.addSession {
                try WebRTCSession(negotiated: negotiated, role: .listener, localUfrag: "srv",
                                  localPassword: "serverpassword0123456789", audioSSRC: 1111, videoSSRC: 2222,
                                  dtlsContext: context, configuration: configuration, now: .now)
            }
        }

        /// The next event of the session, within 5 s.
        func nextEvent(where matches: (WebRTCSession.Event) -> Bool) async -> WebRTCSession.Event? {
            let continuation = eventContinuation
            let deadline = group.next().scheduleTask(in: .seconds(5)) { continuation.finish() }
            defer { deadline.cancel() }
            for await (_, event) in events where matches(event) { return event }
            return nil
        }

        /// The next RTP datagram the listener gets, decrypted (STUN and RTCP are skipped).
        func nextRTP() async throws -> RTPPacket {
            while true {
                var datagram = try await listener.next()
                guard PacketKind(datagram: datagram) == .rtp else { continue }
                try #require(listener.srtp).unprotectRTP(&datagram)
                return try RTPPacket.parse(datagram)
            }
        }

        func stop(_ others: [any Channel] = []) async throws {
            try await driver.shutdown()
            try await listener.channel.close()
            for channel in others { try await channel.close() }
            try await group.shutdownGracefully()
        }
    }

    /// Finding 2: a nominating check that is valid but comes from a socket that never answers
    /// the server's own check (a forged source) gets STUN only; the media stays with the
    /// listener that connected.
    @Test func aForgedNominationFromAnotherSocketGetsNoMedia() async throws {
        let fixture = try await Fixture()
        try await fixture.listener.connect(serverUfrag: "srv", serverContext: fixture.serverContext)
        #expect(await fixture.nextEvent { $0 == .connected } == .connected)
        let forger = try await UDPListener(group: fixture.group, serverPort: fixture.driver.port, ufrag: "l")
        try await forger.send(forger.check(serverUfrag: "srv"))
        // The forger's socket gets the answer and the server's check, and never answers it.
        var fromServer: [[UInt8]] = [try await forger.next(), try await forger.next()]
        #expect(try fromServer.map { try STUNMessage.parse($0).messageClass }.sorted { $0.rawValue < $1.rawValue }
            == [.request, .successResponse])
        for sequence in 0..<5 {
            fixture.driver.sendAudio(to: ["srv"], payload: [0xFC, UInt8(sequence)], sourceSSRC: 5,
                                     sequenceNumber: UInt16(sequence), timestamp: UInt32(sequence * 960))
        }
        for sequence in 0..<5 { #expect(try await fixture.nextRTP().payload == [0xFC, UInt8(sequence)]) }
        // Everything the forger got by the time the listener had its five packets: STUN only.
        let continuation = forger.continuation
        forger.channel.eventLoop.execute { continuation.finish() }
        while let datagram = try? await forger.next() { fromServer.append(datagram) }
        #expect(fromServer.allSatisfy { PacketKind(datagram: $0) == .stun })
        try await fixture.stop([forger.channel])
    }

    /// A session whose peer sends valid checks from someone else's address (here: that
    /// listener's own socket, first) does not take the address's datagrams: the answer to the
    /// real session's check is routed by its transaction, and consent wins the address back.
    @Test func anotherSessionsCheckFromTheAddressDoesNotStealIt() async throws {
        let fixture = try await Fixture()
        let listener = fixture.listener
        let negotiated = try listener.negotiate(serverContext: fixture.serverContext, serverPort: fixture.driver.port,
                                                serverUfrag: "evil")
        let context = fixture.serverContext
        try await fixture.driver.addSession {
            try WebRTCSession(negotiated: negotiated, role: .listener, localUfrag: "evil",
                              localPassword: "serverpassword0123456789", audioSSRC: 3, videoSSRC: 4, dtlsContext: context, now: .now)
        }
        // "evil" gets a valid nominating check from the listener's address first…
        try await listener.send(listener.check(serverUfrag: "evil"))
        // …then the listener connects to its own session as usual.
        try await listener.connect(serverUfrag: "srv", serverContext: fixture.serverContext)
        #expect(await fixture.nextEvent { $0 == .connected } == .connected)
        fixture.driver.sendAudio(to: ["srv"], payload: [0xFC, 7], sourceSSRC: 5, sequenceNumber: 1, timestamp: 960)
        #expect(try await fixture.nextRTP().payload == [0xFC, 7])
        try await fixture.stop()
    }

    /// A loop that is behind (held here while 20 fan-outs are sent) gets at most
    /// `fanOutBacklog` of them queued: the listener gets the first 4 and then the next packet
    /// sent, not 16 stale ones, and the 16 are counted as dropped (`behind`).
    @Test func aLoopThatIsBehindQueuesAtMostTheBacklogOfFanOuts() async throws {
        let fixture = try await Fixture(fanOutBacklog: 4)
        try await fixture.listener.connect(serverUfrag: "srv", serverContext: fixture.serverContext)
        #expect(await fixture.nextEvent { $0 == .connected } == .connected)
        let held = DispatchSemaphore(value: 0)
        let holding = DispatchSemaphore(value: 0)
        fixture.group.next().execute {
            holding.signal()
            held.wait()
        }
        holding.wait()  // the driver's one loop is busy from here until `held` is signalled
        for sequence in 0..<20 {
            fixture.driver.sendAudio(to: ["srv"], payload: [0xFC, UInt8(sequence)], sourceSSRC: 5,
                                     sequenceNumber: UInt16(sequence), timestamp: UInt32(sequence * 960))
        }
        held.signal()
        try await fixture.group.next().submit {}.get()  // after the four queued fan-outs
        fixture.driver.sendAudio(to: ["srv"], payload: [0xFC, 20], sourceSSRC: 5, sequenceNumber: 20, timestamp: 20 * 960)
        var payloads: [[UInt8]] = []
        for _ in 0..<5 { payloads.append(try await fixture.nextRTP().payload) }
        #expect(payloads == [[0xFC, 0], [0xFC, 1], [0xFC, 2], [0xFC, 3], [0xFC, 20]])
        #expect(try await fixture.driver.datagramsDropped() == 16)
        try await fixture.stop()
    }

    /// Finding 1: a peer that nominates and answers consent but never starts DTLS is closed at
    /// the handshake deadline (1 s here) and its slot is free again.
    @Test func aSessionThatNeverFinishesDTLSIsClosedAtTheDeadline() async throws {
        var configuration = WebRTCSession.Configuration()
        configuration.handshakeDeadline = .seconds(1)
        let fixture = try await Fixture(configuration: configuration)
        let listener = fixture.listener
        try await listener.send(listener.check(serverUfrag: "srv"))
        // The check's answer and the server's consent request. On a loaded box the deadline may
        // close the session before both came: that is what is tested, so no second one is owed.
        for _ in 0..<2 {
            guard let datagram = try? await listener.next() else { break }
            if try STUNMessage.parse(datagram).messageClass == .request { try await listener.send(try listener.answer(datagram)) }
        }
        let started = ContinuousClock.now
        #expect(await fixture.nextEvent { if case .closed = $0 { true } else { false } } == .closed(.handshakeTimeout))
        // Well before consent expiry (30 s), the only other way out; loose because the whole
        // suite shares two cores.
        #expect(ContinuousClock.now - started < .seconds(15))
        #expect(try await fixture.driver.sessionCount() == 0)
        try await fixture.stop()
    }

    /// Finding 2: a 1.8 KB RTCP compound of NACKs (40 NACKs of the 128 held packets) made the
    /// server send thousands of datagrams; now each held packet comes back once: 128.
    @Test func aNACKStormGetsEachHeldPacketOnce() async throws {
        let fixture = try await Fixture(fanOutBacklog: 128)  // 128 fan-outs at once
        let listener = fixture.listener
        try await listener.connect(serverUfrag: "srv", serverContext: fixture.serverContext)
        #expect(await fixture.nextEvent { $0 == .connected } == .connected)
        // All sent at once, then read: the history resends packets up to 1 s old only, and 128
        // round trips one by one took longer than that on a loaded box (123 of 128 came back).
        for index in 0..<128 {
            fixture.driver.sendAudio(to: ["srv"], payload: [0xFC, UInt8(index)], sourceSSRC: 5,
                                     sequenceNumber: UInt16(index), timestamp: UInt32(index * 960))
        }
        var sequences: [UInt16] = []
        for _ in 0..<128 { sequences.append(try await fixture.nextRTP().sequenceNumber) }
        var compound = RTCPPacket.serializeCompound(
            Array(repeating: RTCPPacket.nack(senderSSRC: 5, mediaSSRC: 1111, lost: sequences), count: 40))
        #expect(compound.count > 1700)
        try #require(listener.srtp).protectRTCP(&compound)
        try await listener.send(compound)
        // A check right after: its answer comes after everything the NACKs made the server send.
        try await listener.send(listener.check(serverUfrag: "srv", nominate: false))
        var resent: [UInt16] = []
        while true {
            let datagram = try await listener.next()
            if PacketKind(datagram: datagram) == .stun, try STUNMessage.parse(datagram).messageClass == .successResponse { break }
            guard PacketKind(datagram: datagram) == .rtp else { continue }
            // The header is in the clear; SRTCP's replay check would refuse a resend anyway.
            resent.append(try RTPPacket.parse(datagram).sequenceNumber)
        }
        #expect(resent.count == 128)
        #expect(Set(resent) == Set(sequences))
        try await fixture.stop()
    }
}
