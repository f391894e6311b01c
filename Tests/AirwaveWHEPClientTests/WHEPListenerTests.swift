import AirwaveWebRTC
import AirwaveWebRTCUDP
import AirwaveWHEPClient
import Foundation
import NIOCore
import NIOPosix
import Testing

/// The server side of these tests: the library's answer and a `WebRTCUDPDriver` on
/// 127.0.0.1, as the `/whep` route will use them.
struct InProcessServer {
    let driver: WebRTCUDPDriver
    let context: DTLSContext
    let events: AsyncStream<(String, WebRTCSession.Event)>
    let eventContinuation: AsyncStream<(String, WebRTCSession.Event)>.Continuation

    init(group: any EventLoopGroup) async throws {
        let (events, continuation) = AsyncStream<(String, WebRTCSession.Event)>.makeStream()
        self.events = events
        eventContinuation = continuation
        driver = try await WebRTCUDPDriver.start(
            configuration: WebRTCUDPConfiguration(host: "127.0.0.1", port: 0), group: group,
            onEvent: { continuation.yield(($0, $1)) })
        context = try DTLSContext()
    }

    /// What `POST /whep` does: answer the offer and add the session.
    func accept(offer: String, serverUfrag: String) async throws -> String {
        let parameters = AnswerParameters(
            role: .listener, iceUfrag: serverUfrag, icePassword: "serverpassword-\(serverUfrag)-0123456789",
            fingerprint: context.fingerprint, candidates: [TransportAddress(host: "127.0.0.1", port: UInt16(driver.port))!],
            sendsVideo: false, audioSSRC: 1111, videoSSRC: 2222, cname: "airwave", sessionID: 1)
        let negotiated = try SessionDescription.parse(offer).answer(parameters)
        let context = self.context
        try await driver.addSession {
            try WebRTCSession(negotiated: negotiated, role: .listener, localUfrag: serverUfrag,
                              localPassword: parameters.icePassword, audioSSRC: 1111, videoSSRC: 2222,
                              dtlsContext: context, now: .now)
        }
        return negotiated.answer
    }
}

@Suite struct WHEPOfferAnswerTests {
    @Test func theOfferIsAcceptedByTheServersAnswerAndTheAnswerParses() throws {
        let client = try DTLSContext(commonName: "bench")
        let offer = WHEPOffer(ufrag: "lst1", password: "listenerpassword012345", fingerprint: client.fingerprint,
                              candidate: TransportAddress(host: "127.0.0.1", port: 40000)!, sessionID: 7)
        let parsed = try SessionDescription.parse(offer.sdp)
        #expect(parsed.bundleMids == ["0"])
        #expect(parsed.media.count == 1)
        #expect(parsed.media[0].direction == .recvonly)

        let server = try DTLSContext()
        let negotiated = try parsed.answer(AnswerParameters(
            role: .listener, iceUfrag: "srv1", icePassword: "serverpassword0123456789", fingerprint: server.fingerprint,
            candidates: [TransportAddress(host: "127.0.0.1", port: 9999)!], sendsVideo: false, audioSSRC: 1,
            videoSSRC: 2, cname: "c", sessionID: 1))
        #expect(negotiated.remoteUfrag == "lst1")
        #expect(negotiated.remoteFingerprint == client.fingerprint)
        #expect(negotiated.dtlsRole == .server)
        #expect(negotiated.audio?.payloadType == 111)

        let answer = try WHEPAnswer(sdp: negotiated.answer)
        #expect(answer.serverUfrag == "srv1")
        #expect(answer.serverPassword == "serverpassword0123456789")
        #expect(answer.serverFingerprint == server.fingerprint)
        #expect(answer.dtlsRole == .client)
        #expect(answer.serverAddress == TransportAddress(host: "127.0.0.1", port: 9999))
        #expect(answer.iceLite)
        #expect(answer.audioPayloadType == 111)
    }

    @Test func anAnswerWithoutCandidatesIsRejected() throws {
        let sdp = """
            v=0\r
            o=- 1 2 IN IP4 127.0.0.1\r
            s=-\r
            t=0 0\r
            m=audio 9 UDP/TLS/RTP/SAVPF 111\r
            a=ice-ufrag:abcd\r
            a=ice-pwd:0123456789012345678901\r
            a=fingerprint:sha-256 AB:CD\r
            a=setup:passive\r

            """
        #expect(throws: WHEPAnswer.ParseError.noCandidate) { try WHEPAnswer(sdp: sdp) }
        #expect(throws: WHEPAnswer.ParseError.unsupportedSetup("actpass")) {
            try WHEPAnswer(sdp: sdp.replacingOccurrences(of: "setup:passive", with: "setup:actpass"))
        }
    }
}

@Suite struct WHEPListenerTests {
    @Test func listenersConnectCountTheFanOutAndKeepConsent() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let server = try await InProcessServer(group: group)
        let clientContext = try DTLSContext(commonName: "bench")
        // Consent every 50 ms so that the test sees several; every packet decrypted.
        let configuration = WHEPListenerConfiguration(consentInterval: .milliseconds(50), connectTimeout: .seconds(10),
                                                      decryptEvery: 1)
        var listeners: [WHEPListener] = []
        var ufrags: [String] = []
        for index in 0..<3 {
            let listener = try await WHEPListener.bind(on: group.next(), context: clientContext,
                                                       configuration: configuration, ufrag: "bench\(index)").get()
            let answerText = try await server.accept(offer: listener.offer().sdp, serverUfrag: "srv\(index)")
            try await listener.start(answer: try WHEPAnswer(sdp: answerText)).get()
            #expect(listener.connectNanos > 0)
            listeners.append(listener)
            ufrags.append("srv\(index)")
        }
        // The server saw every session connect.
        var connected: Set<String> = []
        var iterator = server.events.makeAsyncIterator()
        while connected.count < 3, let (ufrag, event) = await iterator.next() {
            if event == .connected { connected.insert(ufrag) }
        }
        #expect(connected == Set(ufrags))

        let packets = 20
        for n in 0..<packets {
            server.driver.sendAudio(to: ufrags, payload: [0xFC, UInt8(n), 1, 2], sourceSSRC: 9, sequenceNumber: UInt16(n),
                                    timestamp: UInt32(n * 960))
        }
        for listener in listeners {
            let counters = try await listener.wait { $0.rtpPackets >= packets && $0.checksAnswered >= 4 }.get()
            #expect(counters.rtpPackets == packets)
            #expect(counters.gaps == 0)
            #expect(counters.reordered == 0)
            #expect(counters.wrongPayloadType == 0)
            #expect(counters.decrypted == packets)
            #expect(counters.decryptFailures == 0)
        }
        // Hanging up on the wire ends the session on the server (DTLS close_notify).
        try await listeners[0].close().get()
        var closed = false
        while !closed, let (ufrag, event) = await iterator.next() {
            if ufrag == "srv0", case .closed(.dtlsClosed) = event { closed = true }
        }
        #expect(closed)
        #expect(try await server.driver.sessionCount() == 2)

        // The server hanging up ends the listener.
        try await server.driver.removeSession(ufrag: "srv1")
        let stopped = await #expect(throws: WHEPListenerError.self) {
            _ = try await listeners[1].wait { _ in false }.get()
        }
        _ = stopped
        #expect(try await listeners[1].counters().get().closedByServer == 1)

        try await server.driver.shutdown()
        for listener in listeners { try await listener.close().get() }
        try await group.shutdownGracefully()
    }

    /// A fan-out whose datagrams add up to more than NIO's default 64 KiB write-buffer mark is
    /// delivered whole: it once lost everything past the mark (64 of 100 listeners here).
    @Test func aFanOutLargerThanTheWriteBufferMarkReachesEveryListener() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let server = try await InProcessServer(group: group)
        let clientContext = try DTLSContext(commonName: "bench")
        let configuration = WHEPListenerConfiguration(consentInterval: .seconds(2), connectTimeout: .seconds(20), decryptEvery: 1)
        var listeners: [WHEPListener] = []
        var ufrags: [String] = []
        for index in 0..<100 {
            let listener = try await WHEPListener.bind(on: group.next(), context: clientContext,
                                                       configuration: configuration, ufrag: "wide\(index)").get()
            let answerText = try await server.accept(offer: listener.offer().sdp, serverUfrag: "srvwide\(index)")
            try await listener.start(answer: try WHEPAnswer(sdp: answerText)).get()
            listeners.append(listener)
            ufrags.append("srvwide\(index)")
        }
        var connected = 0
        var iterator = server.events.makeAsyncIterator()
        while connected < 100, let (_, event) = await iterator.next() {
            if event == .connected { connected += 1 }
        }
        let packets = 3
        for n in 0..<packets {
            server.driver.sendAudio(to: ufrags, payload: [0xFC] + [UInt8](repeating: UInt8(n), count: 999), sourceSSRC: 9,
                                    sequenceNumber: UInt16(n), timestamp: UInt32(n * 960))
        }
        // Bounded: past the deadline the listeners are closed, which fails their waits.
        let waiting = listeners
        let deadline = group.next().scheduleTask(in: .seconds(10)) { for listener in waiting { _ = listener.close() } }
        for listener in listeners {
            let counters = try await listener.wait { $0.rtpPackets >= packets }.get()
            #expect(counters.rtpPackets == packets)
            #expect(counters.decryptFailures == 0)
        }
        deadline.cancel()
        try await server.driver.shutdown()
        for listener in listeners { try await listener.close().get() }
        try await group.shutdownGracefully()
    }

    @Test func aSampledListenerDecryptsItsFirstPacket() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let server = try await InProcessServer(group: group)
        let listener = try await WHEPListener.bind(
            on: group.next(), context: try DTLSContext(commonName: "bench"),
            configuration: WHEPListenerConfiguration(decryptEvery: 50), ufrag: "sampled").get()
        let answerText = try await server.accept(offer: listener.offer().sdp, serverUfrag: "srv")
        try await listener.start(answer: try WHEPAnswer(sdp: answerText)).get()
        var iterator = server.events.makeAsyncIterator()
        while let (_, event) = await iterator.next(), event != .connected {}
        for n in 0..<3 {
            server.driver.sendAudio(to: ["srv"], payload: [0xFC, 1], sourceSSRC: 9, sequenceNumber: UInt16(n), timestamp: UInt32(n * 960))
        }
        // The first packet fixes libsrtp's rollover counter; the next sample is the 51st.
        let counters = try await listener.wait { $0.rtpPackets >= 3 }.get()
        #expect(counters.decrypted == 1)
        #expect(counters.decryptFailures == 0)
        try await server.driver.shutdown()
        try await listener.close().get()
        try await group.shutdownGracefully()
    }

    @Test func anUnansweredListenerTimesOut() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let clientContext = try DTLSContext(commonName: "bench")
        let listener = try await WHEPListener.bind(
            on: group.next(), context: clientContext,
            configuration: WHEPListenerConfiguration(checkRetryInterval: .milliseconds(20), connectTimeout: .milliseconds(200)),
            ufrag: "lonely").get()
        // Nobody listens on port 9 of 127.0.0.1.
        let answer = WHEPAnswer(serverUfrag: "srv", serverPassword: "serverpassword0123456789",
                                serverFingerprint: clientContext.fingerprint, dtlsRole: .client,
                                serverAddress: TransportAddress(host: "127.0.0.1", port: 9)!, iceLite: true,
                                audioPayloadType: 111)
        await #expect(throws: WHEPListenerError.self) { try await listener.start(answer: answer).get() }
        #expect(try await listener.counters().get().checksSent >= 2)
        try await listener.close().get()
        try await group.shutdownGracefully()
    }
}
