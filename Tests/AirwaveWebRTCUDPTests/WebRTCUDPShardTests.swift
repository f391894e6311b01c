import AirwaveWebRTC
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

@testable import AirwaveWebRTCUDP

/// One socket per event loop on the same port (`SO_REUSEPORT`): sessions on every loop, and a
/// datagram the kernel gives to another loop's socket than its session's still reaches it.
@Suite struct WebRTCUDPShardTests {
    @Test func sessionsOnSeveralLoopsGetEveryPacketWhicheverSocketTheirDatagramsReach() async throws {
        let loops = 3
        let group = MultiThreadedEventLoopGroup(numberOfThreads: loops)
        var configuration = WebRTCUDPConfiguration(host: "127.0.0.1", port: 0)
        configuration.sockets = loops
        let (events, eventContinuation) = AsyncStream<(String, WebRTCSession.Event)>.makeStream()
        let driver = try await WebRTCUDPDriver.start(configuration: configuration, group: group,
                                                     onEvent: { eventContinuation.yield(($0, $1)) })
        #expect(driver.channels.count == loops)
        #expect(Set(driver.channels.map { $0.localAddress?.port }) == [driver.port])
        #expect(Set(driver.channels.map { ObjectIdentifier($0.eventLoop) }).count == loops)

        // The kernel picks a listener's socket by its address: with 12 listeners on 3 sockets,
        // all landing on their session's own is a chance of (1/3)^12.
        let count = 12
        let serverContext = try DTLSContext()
        var listeners: [UDPListener] = []
        for index in 0..<count {
            let listener = try await UDPListener(group: group, serverPort: driver.port, ufrag: "l\(index)")
            let serverUfrag = "srv\(index)"
            let negotiated = try listener.negotiate(serverContext: serverContext, serverPort: driver.port, serverUfrag: serverUfrag)
            try await driver.addSession {
                try WebRTCSession(negotiated: negotiated, role: .listener, localUfrag: serverUfrag,
                                  localPassword: "serverpassword0123456789", audioSSRC: 1111, videoSSRC: 2222,
                                  dtlsContext: serverContext, now: .now)
            }
            // The check, its answer and the DTLS handshake each need the datagram to reach the
            // session, whichever socket read it.
            try await listener.connect(serverUfrag: serverUfrag, serverContext: serverContext)
            listeners.append(listener)
        }
        #expect(driver.sessionsPerSocket() == [4, 4, 4])
        var connected: Set<String> = []
        let deadline = group.next().scheduleTask(in: .seconds(30)) { eventContinuation.finish() }
        var eventIterator = events.makeAsyncIterator()
        while connected.count < count, let item = await eventIterator.next() {
            if item.1 == .connected { connected.insert(item.0) }
        }
        deadline.cancel()
        #expect(connected.count == count)
        #expect(try await driver.datagramsHandedOver() > 0, "no datagram reached another loop's socket")

        let ufrags = (0..<count).map { "srv\($0)" }
        let packets = 5
        for sequence in 0..<packets {
            driver.sendAudio(to: ufrags, payload: [0xFC, UInt8(sequence)], sourceSSRC: 5, sequenceNumber: UInt16(100 + sequence),
                             timestamp: 960 * UInt32(sequence))
        }
        for listener in listeners {
            var payloads: [[UInt8]] = []
            while payloads.count < packets {
                var packet = try await listener.next()
                guard PacketKind(datagram: packet) == .rtp else { continue }
                try #require(listener.srtp).unprotectRTP(&packet)
                payloads.append(try RTPPacket.parse(packet).payload)
            }
            #expect(payloads == (0..<packets).map { [0xFC, UInt8($0)] }, "listener \(listener.ufrag)")
        }

        try await driver.removeSession(ufrag: "srv0")
        #expect(try await driver.sessionCount() == count - 1)
        try await driver.shutdown()
        for listener in listeners { try await listener.channel.close() }
        try await group.shutdownGracefully()
    }

    /// Per-speaker listeners (`?audio=speakers`) on two loops: each speaker's packet reaches every
    /// listed session on the speaker's own track (SSRC) with its source id as CSRC; a released
    /// speaker's track goes to the next one.
    @Test func perSpeakerSessionsOnSeveralLoopsGetEachSpeakerOnItsTrack() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        var configuration = WebRTCUDPConfiguration(host: "127.0.0.1", port: 0)
        configuration.sockets = 2
        let (events, eventContinuation) = AsyncStream<(String, WebRTCSession.Event)>.makeStream()
        let driver = try await WebRTCUDPDriver.start(configuration: configuration, group: group,
                                                     onEvent: { eventContinuation.yield(($0, $1)) })
        let serverContext = try DTLSContext()
        let ssrcs: [UInt32] = [3001, 3002, 3003]
        var listeners: [UDPListener] = []
        for index in 0..<4 {
            let listener = try await UDPListener(group: group, serverPort: driver.port, ufrag: "p\(index)")
            let negotiated = try listener.negotiate(serverContext: serverContext, serverPort: driver.port,
                                                    serverUfrag: "spk\(index)", speakerSSRCs: ssrcs)
            #expect(negotiated.speakerAudio.count == 3)
            try await driver.addSession {
                try WebRTCSession(negotiated: negotiated, role: .listener, localUfrag: "spk\(index)",
                                  localPassword: "serverpassword0123456789", audioSSRC: 1111, videoSSRC: 2222,
                                  speakerSSRCs: ssrcs, dtlsContext: serverContext, now: .now)
            }
            try await listener.connect(serverUfrag: "spk\(index)", serverContext: serverContext)
            listeners.append(listener)
        }
        #expect(driver.sessionsPerSocket() == [2, 2])
        var connected = 0
        let deadline = group.next().scheduleTask(in: .seconds(30)) { eventContinuation.finish() }
        var eventIterator = events.makeAsyncIterator()
        while connected < listeners.count, let item = await eventIterator.next() {
            if item.1 == .connected { connected += 1 }
        }
        deadline.cancel()
        #expect(connected == listeners.count)

        let ufrags = (0..<listeners.count).map { "spk\($0)" }
        driver.sendSpeakerAudio(to: ufrags, payload: [0xFC, 1], source: 1, sequenceNumber: 10, timestamp: 960)
        driver.sendSpeakerAudio(to: ufrags, payload: [0xFC, 2], source: 2, sequenceNumber: 70, timestamp: 9600)
        driver.releaseSpeaker(2, in: ufrags)
        driver.sendSpeakerAudio(to: ufrags, payload: [0xFC, 3], source: 3, sequenceNumber: 5, timestamp: 480)
        for listener in listeners {
            var received: [RTPPacket] = []
            while received.count < 3 {
                var packet = try await listener.next()
                guard PacketKind(datagram: packet) == .rtp else { continue }
                try #require(listener.srtp).unprotectRTP(&packet)
                received.append(try RTPPacket.parse(packet))
            }
            #expect(received.map(\.ssrc) == [3001, 3002, 3002], "listener \(listener.ufrag)")
            #expect(received.map(\.csrcs) == [[1], [2], [3]], "listener \(listener.ufrag)")
            #expect(received.map(\.payload) == [[0xFC, 1], [0xFC, 2], [0xFC, 3]], "listener \(listener.ufrag)")
        }
        try await driver.shutdown()
        for listener in listeners { try await listener.channel.close() }
        try await group.shutdownGracefully()
    }

    /// A port held by a socket without `SO_REUSEPORT` (another program) is still in use.
    @Test func aPortInUseIsRefusedWithSeveralSockets() async throws {
        let taken = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(taken.localAddress?.port)
        var configuration = WebRTCUDPConfiguration(host: "127.0.0.1", port: port)
        configuration.sockets = 2
        await #expect(throws: WebRTCUDPStartError.self) {
            let driver = try await WebRTCUDPDriver.start(configuration: configuration, group: MultiThreadedEventLoopGroup.singleton,
                                                         onEvent: { _, _ in })
            try await driver.shutdown()
        }
        try await taken.close()
    }
}

/// DTLS handshake steps run on the handshake group, so a join storm does not hold up what the
/// sockets' loops do for sessions already joined.
@Suite struct WebRTCUDPHandshakeTests {
    @Test func aHandshakeInProgressDoesNotHoldUpMediaOrConsentOfJoinedSessions() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let handshakes = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var configuration = WebRTCUDPConfiguration(host: "127.0.0.1", port: 0)
        configuration.handshakeGroup = handshakes
        let driver = try await WebRTCUDPDriver.start(configuration: configuration, group: group, onEvent: { _, _ in })
        let serverContext = try DTLSContext()
        func listener(_ name: String) async throws -> UDPListener {
            let listener = try await UDPListener(group: group, serverPort: driver.port, ufrag: "l\(name)")
            let negotiated = try listener.negotiate(serverContext: serverContext, serverPort: driver.port, serverUfrag: "srv\(name)")
            try await driver.addSession {
                try WebRTCSession(negotiated: negotiated, role: .listener, localUfrag: "srv\(name)",
                                  localPassword: "serverpassword0123456789", audioSSRC: 1111, videoSSRC: 2222,
                                  dtlsContext: serverContext, now: .now)
            }
            return listener
        }
        let joined = try await listener("a")
        try await joined.connect(serverUfrag: "srva", serverContext: serverContext)
        #expect(try await driver.shards[0].eventLoop.submit { driver.shards[0].handshakeSteps }.get() > 0)

        // The handshake loop is held: a join's handshake step waits there, as behind a storm.
        let gate = ConditionLock(value: 0)
        handshakes.next().execute {
            gate.lock(whenValue: 1)
            gate.unlock()
        }
        let joining = try await listener("b")
        let join = Task { try await joining.connect(serverUfrag: "srvb", serverContext: serverContext) }
        var waited = 0
        while try await driver.sessionsInHandshakeStep() == 0 {
            waited += 1
            try #require(waited < 100_000, "the joining session's handshake never reached the handshake group")
            await Task.yield()
        }

        // Meanwhile the joined session gets media and its consent checks are answered.
        driver.sendAudio(to: ["srva", "srvb"], payload: [0xFC, 1], sourceSSRC: 5, sequenceNumber: 1, timestamp: 960)
        var packet = try await joined.next()
        while PacketKind(datagram: packet) != .rtp { packet = try await joined.next() }
        try #require(joined.srtp).unprotectRTP(&packet)
        #expect(try RTPPacket.parse(packet).payload == [0xFC, 1])
        try await joined.send(joined.check(serverUfrag: "srva", nominate: false))
        var answer = try await joined.next()
        while PacketKind(datagram: answer) != .stun { answer = try await joined.next() }
        #expect(try STUNMessage.parse(answer).messageClass == .successResponse)
        #expect(try await driver.sessionsInHandshakeStep() == 1, "the join finished while its handshake loop was held")

        gate.lock()
        gate.unlock(withValue: 1)
        try await join.value
        driver.sendAudio(to: ["srva", "srvb"], payload: [0xFC, 2], sourceSSRC: 5, sequenceNumber: 2, timestamp: 1920)
        for listener in [joined, joining] {
            var packet = try await listener.next()
            while PacketKind(datagram: packet) != .rtp { packet = try await listener.next() }
            try #require(listener.srtp).unprotectRTP(&packet)
            #expect(try RTPPacket.parse(packet).payload == [0xFC, 2], "listener \(listener.ufrag)")
        }
        try await driver.shutdown()
        for listener in [joined, joining] { try await listener.channel.close() }
        try await group.shutdownGracefully()
        try await handshakes.shutdownGracefully()
    }
}
