import Testing

@testable import AirwaveWebRTC

/// A browser stand-in: the captured offer with this peer's ICE credentials and certificate,
/// a DTLS client and SRTP, all in memory against a `WebRTCSession`.
final class TestPeer {
    let address = TransportAddress(host: "192.0.2.44", port: 51000)!
    let context: DTLSContext
    let ufrag = "peerU"
    let password = "peerpassword0123456789"
    let session: WebRTCSession
    let serverContext: DTLSContext
    var dtls: DTLSEndpoint?
    var srtp: SRTPSession?
    let start = ContinuousClock.Instant.now

    init(fixture: String, role: WebRTCPeerRole, setup: String = "actpass",
         configuration: WebRTCSession.Configuration = .init(), speakerSSRCs: [UInt32] = []) throws {
        let context = try DTLSContext(commonName: "peer")
        self.context = context
        serverContext = try DTLSContext(commonName: "server")
        let (ufrag, password) = ("peerU", "peerpassword0123456789")
        let lines = try WebRTCFixtures.offer(fixture).split(separator: "\r\n").compactMap { line -> String? in
            if line.hasPrefix("a=fingerprint:") {
                return line.hasPrefix("a=fingerprint:sha-256") ? "a=fingerprint:\(context.fingerprint.attributeValue)" : nil
            }
            if line.hasPrefix("a=ice-ufrag:") { return "a=ice-ufrag:\(ufrag)" }
            if line.hasPrefix("a=ice-pwd:") { return "a=ice-pwd:\(password)" }
            if line.hasPrefix("a=setup:") { return "a=setup:\(setup)" }
            return String(line)
        }
        let offer = try SessionDescription.parse(lines.joined(separator: "\r\n"))
        var parameters = AnswerParameters(
            role: role, iceUfrag: "srvU", icePassword: "serverpassword0123456789", fingerprint: serverContext.fingerprint,
            candidates: [TransportAddress(host: "127.0.0.1", port: 40000)!], sendsVideo: true, audioSSRC: 1111,
            videoSSRC: 2222, cname: "airwave", sessionID: 1)
        parameters.speakerSSRCs = speakerSSRCs
        let negotiated = try offer.answer(parameters)
        session = try WebRTCSession(
            negotiated: negotiated, role: role, localUfrag: "srvU", localPassword: "serverpassword0123456789",
            audioSSRC: 1111, videoSSRC: 2222, speakerSSRCs: speakerSSRCs, dtlsContext: serverContext,
            configuration: configuration, now: start)
    }

    /// Answers every check the session sent to this peer (as a full ICE agent does) and
    /// returns what the session did with the answers.
    func answerChecks(in events: [WebRTCSession.Event], from source: TransportAddress? = nil,
                      at time: ContinuousClock.Instant? = nil) throws -> [WebRTCSession.Event] {
        let source = source ?? address
        var out: [WebRTCSession.Event] = []
        for case let .send(bytes, to) in events where to == source && PacketKind(datagram: bytes) == .stun {
            let request = try STUNMessage.parse(bytes)
            guard request.messageClass == .request else { continue }
            try STUNMessage.verifyMessageIntegrity(bytes, password: password)
            #expect(request.attribute(.username)?.stringValue == "\(ufrag):srvU")
            let answer = STUNMessage(messageClass: .successResponse, transactionID: request.transactionID,
                                     attributes: [.xorMappedAddress(source, transactionID: request.transactionID)])
            out += session.handle(datagram: answer.serialized(integrityPassword: password, fingerprint: true), from: source,
                                  now: time ?? start)
        }
        return out
    }

    func check(nominate: Bool) -> [UInt8] {
        var attributes: [STUNAttribute] = [.username("srvU:\(ufrag)"), STUNAttribute(.priority, value: [0, 0, 1, 0])]
        if nominate { attributes.append(STUNAttribute(.useCandidate, value: [])) }
        return STUNMessage(messageClass: .request, transactionID: Crypto.randomBytes(12), attributes: attributes)
            .serialized(integrityPassword: "serverpassword0123456789", fingerprint: true)
    }

    /// ICE check with nomination, then the DTLS handshake; returns every event the session
    /// produced.
    func connect() throws -> [WebRTCSession.Event] {
        var events = session.handle(datagram: check(nominate: true), from: address, now: start)
        events += try answerChecks(in: events)
        // The peer takes the DTLS role the session does not.
        let role: DTLSRole = session.negotiated.dtlsRole == .server ? .client : .server
        let dtls = try DTLSEndpoint(context: context, role: role, remoteFingerprint: serverContext.fingerprint)
        self.dtls = dtls
        // A session that is the DTLS client sends its ClientHello as soon as ICE nominates.
        var toServer = dtls.start() + events.flatMap { event -> [[UInt8]] in
            guard case let .send(bytes, to) = event, to == address, PacketKind(datagram: bytes) == .dtls else { return [] }
            return dtls.handleDatagram(bytes)
        }
        while !toServer.isEmpty {
            let replies = toServer.flatMap { session.handle(datagram: $0, from: address, now: start) }
            events += replies
            toServer = replies.flatMap { event -> [[UInt8]] in
                guard case let .send(bytes, to) = event, to == address, PacketKind(datagram: bytes) == .dtls else { return [] }
                return dtls.handleDatagram(bytes)
            }
        }
        if case let .connected(keys) = dtls.state {
            srtp = try SRTPSession(keyingMaterial: keys, role: role)
        }
        return events
    }
}

@Suite struct WebRTCSessionTests {
    @Test func aListenerConnectsAndReceivesRewrittenAudio() throws {
        let peer = try TestPeer(fixture: "chromium-whep-offer.sdp", role: .listener)
        let events = try peer.connect()
        #expect(events.contains(.connected))
        let srtp = try #require(peer.srtp)
        #expect(peer.session.remoteAddress == peer.address)

        let sent = peer.session.sendAudio(payload: [0xFC, 1, 2, 3], sourceSSRC: 99, sequenceNumber: 7, timestamp: 960,
                                          now: peer.start + .milliseconds(20))
        guard case let .send(bytes, to) = try #require(sent.first) else {
            Issue.record("nothing sent")
            return
        }
        #expect(to == peer.address)
        var packet = bytes
        try srtp.unprotectRTP(&packet)
        let rtp = try RTPPacket.parse(packet)
        #expect(rtp.ssrc == 1111)
        #expect(rtp.payloadType == 111)
        #expect(rtp.payload == [0xFC, 1, 2, 3])
        #expect(rtp.marker)  // first packet of a run

        // A NACK for it brings back the same protected packet; an unknown one brings nothing.
        var nack = RTCPPacket.nack(senderSSRC: 5, mediaSSRC: 1111, lost: [rtp.sequenceNumber, rtp.sequenceNumber &+ 1]).serialized()
        try srtp.protectRTCP(&nack)
        let resent = peer.session.handle(datagram: nack, from: peer.address, now: peer.start + .milliseconds(40))
        #expect(resent == [.send(bytes, to: peer.address)])
    }

    @Test func anOfferThatIsPassiveMakesTheSessionTheDTLSClient() throws {
        let peer = try TestPeer(fixture: "aiortc-whip-offer.sdp", role: .speaker, setup: "passive")
        #expect(peer.session.negotiated.dtlsRole == .client)
        let events = try peer.connect()
        #expect(events.contains(.connected))
        let srtp = try #require(peer.srtp)
        var bytes = RTPPacket(payloadType: 96, sequenceNumber: 9, timestamp: 1, ssrc: 3, payload: [7]).serialized()
        try srtp.protectRTP(&bytes)
        #expect(peer.session.handle(datagram: bytes, from: peer.address, now: peer.start)
            == [.audio(RTPPacket(payloadType: 96, sequenceNumber: 9, timestamp: 1, ssrc: 3, payload: [7]))])
    }

    /// Not throttled here: the engine holds the one keyframe throttle (Fixtures/live/keyframe-request.json).
    @Test func pliAndFirOnTheVideoSSRCBecomeKeyframeRequests() throws {
        let peer = try TestPeer(fixture: "chromium-whep-offer.sdp", role: .listener)
        _ = try peer.connect()
        let srtp = try #require(peer.srtp)
        func send(_ packet: RTCPPacket, at offset: Duration) throws -> [WebRTCSession.Event] {
            var bytes = packet.serialized()
            try srtp.protectRTCP(&bytes)
            return peer.session.handle(datagram: bytes, from: peer.address, now: peer.start + offset)
        }
        #expect(try send(.pli(senderSSRC: 1, mediaSSRC: 2222), at: .milliseconds(10)) == [.keyframeRequest])
        #expect(try send(.pli(senderSSRC: 1, mediaSSRC: 2222), at: .milliseconds(500)) == [.keyframeRequest])
        #expect(try send(.pli(senderSSRC: 1, mediaSSRC: 1111), at: .milliseconds(1500)).isEmpty)  // audio SSRC
        #expect(try send(.fir(senderSSRC: 1, entries: [.init(ssrc: 2222, sequenceNumber: 1)]), at: .milliseconds(1500))
            == [.keyframeRequest])
    }

    @Test func videoFramesArePacketizedWithTheMarkerOnTheLast() throws {
        let peer = try TestPeer(fixture: "aiortc-whep-offer.sdp", role: .listener)
        _ = try peer.connect()
        let srtp = try #require(peer.srtp)
        let frame: [UInt8] = [0x50, 0x2A, 0x01, 0x9D, 0x01, 0x2A] + [UInt8](repeating: 3, count: 2500)
        let events = peer.session.sendVideo(frame: frame, timestamp: 90000, now: peer.start + .milliseconds(5))
        var packets: [RTPPacket] = []
        for case let .send(bytes, _) in events {
            var packet = bytes
            try srtp.unprotectRTP(&packet)
            packets.append(try RTPPacket.parse(packet))
        }
        #expect(packets.count == 3)
        #expect(packets.map(\.marker) == [false, false, true])
        #expect(packets.allSatisfy { $0.ssrc == 2222 && $0.payloadType == 97 })
        #expect(Set(packets.map(\.timestamp)).count == 1)
        #expect(VP8Frame.payloadStartsKeyframe(packets[0].payload))
    }

    @Test func aSpeakersAudioComesOutDecrypted() throws {
        let peer = try TestPeer(fixture: "chromium-whip-offer.sdp", role: .speaker)
        _ = try peer.connect()
        let srtp = try #require(peer.srtp)
        var bytes = RTPPacket(payloadType: 111, sequenceNumber: 1, timestamp: 960, ssrc: 42, payload: [0xF8, 0xFF]).serialized()
        try srtp.protectRTP(&bytes)
        let events = peer.session.handle(datagram: bytes, from: peer.address, now: peer.start)
        #expect(events == [.audio(RTPPacket(payloadType: 111, sequenceNumber: 1, timestamp: 960, ssrc: 42, payload: [0xF8, 0xFF]))])
        // The same packet from an address that never passed a check is dropped.
        var again = RTPPacket(payloadType: 111, sequenceNumber: 2, timestamp: 1920, ssrc: 42, payload: [1]).serialized()
        try srtp.protectRTP(&again)
        #expect(peer.session.handle(datagram: again, from: TransportAddress(host: "192.0.2.99", port: 1)!, now: peer.start).isEmpty)
    }

    @Test func senderReportsGoOutAndConsentExpiryClosesTheSession() throws {
        let peer = try TestPeer(fixture: "chromium-whep-offer.sdp", role: .listener)
        _ = try peer.connect()
        let srtp = try #require(peer.srtp)
        _ = peer.session.sendAudio(payload: [1], sourceSSRC: 1, sequenceNumber: 1, timestamp: 1, now: peer.start)
        let due = try #require(peer.session.nextTimer(now: peer.start))
        #expect(due <= peer.start + .seconds(1))
        let events = peer.session.handleTimer(now: peer.start + .seconds(1), ntpTime: 1 << 32)
        guard case let .send(bytes, _) = try #require(events.first) else {
            Issue.record("no sender report")
            return
        }
        var report = bytes
        try srtp.unprotectRTCP(&report)
        guard case let .senderReport(sr) = try #require(try RTCPPacket.parseCompound(report).first) else {
            Issue.record("not a sender report")
            return
        }
        #expect(sr.ssrc == 1111)
        #expect(sr.packetCount == 1)
        #expect(peer.session.handleTimer(now: peer.start + .seconds(31), ntpTime: 0) == [.closed(.consentExpired)])
        #expect(peer.session.isClosed)
    }

    /// Issue 17: the DTLS connection is freed once the peer has been quiet for the release
    /// delay (a retransmitted flight resets it); media flows on, and closing still sends a
    /// close_notify the peer accepts.
    @Test func theDTLSConnectionIsFreedAfterTheHandshakeGoesQuiet() throws {
        let peer = try TestPeer(fixture: "chromium-whep-offer.sdp", role: .listener)
        #expect(try peer.connect().contains(.connected))
        let delay = peer.session.configuration.dtlsReleaseDelay
        let due = try #require(peer.session.nextTimer(now: peer.start))
        #expect(due <= peer.start + delay)
        _ = peer.session.handleTimer(now: peer.start + delay - .milliseconds(1), ntpTime: 0)
        #expect(!peer.session.isDTLSReleased)
        // The peer sends DTLS again (as it does when it retransmits a flight that got no
        // answer; here a record OpenSSL discards): the delay starts over.
        let record: [UInt8] = [23, 0xFE, 0xFD, 0, 1, 0, 0, 0, 0, 0, 9, 0, 32] + Array(repeating: 0x5A, count: 32)
        let again = peer.start + delay - .milliseconds(1)
        _ = peer.session.handle(datagram: record, from: peer.address, now: again)
        _ = peer.session.handleTimer(now: peer.start + delay, ntpTime: 0)
        #expect(!peer.session.isDTLSReleased)
        #expect(!peer.session.isClosed)
        _ = peer.session.handleTimer(now: again + delay, ntpTime: 0)
        #expect(peer.session.isDTLSReleased)
    }

    @Test func aReleasedSessionStillSendsMediaAndAValidCloseNotify() throws {
        let peer = try TestPeer(fixture: "chromium-whep-offer.sdp", role: .listener)
        _ = try peer.connect()
        let delay = peer.session.configuration.dtlsReleaseDelay
        _ = peer.session.handleTimer(now: peer.start + delay, ntpTime: 0)
        #expect(peer.session.isDTLSReleased)
        let sent = peer.session.sendAudio(payload: [0xFC, 7], sourceSSRC: 9, sequenceNumber: 1, timestamp: 960,
                                          now: peer.start + delay)
        guard case let .send(bytes, _) = try #require(sent.first) else {
            Issue.record("nothing sent")
            return
        }
        var packet = bytes
        try #require(peer.srtp).unprotectRTP(&packet)
        #expect(try RTPPacket.parse(packet).payload == [0xFC, 7])
        let client = try #require(peer.dtls)
        for case let .send(alert, to) in peer.session.close() {
            #expect(to == peer.address)
            _ = client.handleDatagram(alert)
        }
        #expect(client.state == .closed)
    }

    // MARK: Issue 13: consent before a new address, the DTLS deadline, bounded retransmission

    /// Finding 2: one forged check with USE-CANDIDATE from another address moved the media.
    /// Now that address gets the answer and the session's own check (both STUN), and the media
    /// stays with the peer; even SRTP copied from the peer is not taken from it.
    @Test func aForgedNominationFromAnotherAddressDoesNotMoveTheMedia() throws {
        let peer = try TestPeer(fixture: "chromium-whep-offer.sdp", role: .listener)
        #expect(try peer.connect().contains(.connected))
        let victim = TransportAddress(host: "203.0.113.66", port: 9)!
        let forged = peer.session.handle(datagram: peer.check(nominate: true), from: victim, now: peer.start + .seconds(1))
        let kinds = try forged.map { event -> STUNMessage.Class in
            guard case let .send(bytes, to) = event, to == victim else { throw Unexpected(event: event) }
            return try STUNMessage.parse(bytes).messageClass
        }
        #expect(kinds == [.successResponse, .request])
        #expect(peer.session.remoteAddress == peer.address)
        #expect(peer.session.accepts(victim))  // routed here, to be answered…
        let sent = peer.session.sendAudio(payload: [0xFC, 1], sourceSSRC: 9, sequenceNumber: 1, timestamp: 960,
                                          now: peer.start + .seconds(1))
        #expect(sent.count == 1)
        #expect(sent.allSatisfy { if case let .send(_, to) = $0 { to == peer.address } else { false } })
        // …but nothing but STUN goes there while it has not answered, timers included.
        var time = peer.start + .seconds(1)
        for _ in 0..<10 {
            time = time + .milliseconds(500)
            _ = peer.session.handle(datagram: peer.check(nominate: false), from: peer.address, now: time)
            for case let .send(bytes, to) in peer.session.handleTimer(now: time, ntpTime: 0) where to == victim {
                #expect(try STUNMessage.parse(bytes).messageClass == .request)
            }
        }
        #expect(peer.session.remoteAddress == peer.address)
    }

    /// A peer that really moved (its new address answers the session's check) is followed.
    @Test func aNominationFromANewAddressThatAnswersMovesTheMedia() throws {
        let peer = try TestPeer(fixture: "chromium-whep-offer.sdp", role: .listener)
        _ = try peer.connect()
        let moved = TransportAddress(host: "192.0.2.45", port: 52000)!
        let events = peer.session.handle(datagram: peer.check(nominate: true), from: moved, now: peer.start + .seconds(3))
        #expect(peer.session.remoteAddress == peer.address)
        #expect(try peer.answerChecks(in: events, from: moved, at: peer.start + .seconds(3)).isEmpty)
        #expect(peer.session.remoteAddress == moved)
        let sent = peer.session.sendAudio(payload: [0xFC, 1], sourceSSRC: 9, sequenceNumber: 1, timestamp: 960,
                                          now: peer.start + .seconds(3))
        #expect(sent.count == 1)
        #expect(sent.allSatisfy { if case let .send(_, to) = $0 { to == moved } else { false } })
    }

    /// Finding 1: a peer that keeps ICE alive but never finishes DTLS held its slot for good.
    /// It is closed at the deadline after the answer; a connected one is not.
    @Test func aSessionWhoseDTLSNeverCompletesIsClosedAtTheDeadline() throws {
        var configuration = WebRTCSession.Configuration()
        configuration.handshakeDeadline = .seconds(2)
        let stalled = try TestPeer(fixture: "chromium-whep-offer.sdp", role: .listener, configuration: configuration)
        let events = stalled.session.handle(datagram: stalled.check(nominate: true), from: stalled.address, now: stalled.start)
        #expect(try stalled.answerChecks(in: events).isEmpty)
        #expect(stalled.session.remoteAddress == stalled.address)  // ICE is done, DTLS never starts
        #expect(stalled.session.nextTimer(now: stalled.start) == stalled.start + .seconds(2))
        // Consent checks keep coming; they do not keep the session.
        _ = stalled.session.handle(datagram: stalled.check(nominate: false), from: stalled.address,
                                   now: stalled.start + .milliseconds(1999))
        #expect(stalled.session.handleTimer(now: stalled.start + .milliseconds(1999), ntpTime: 0) == [])
        #expect(stalled.session.handleTimer(now: stalled.start + .seconds(2), ntpTime: 0) == [.closed(.handshakeTimeout)])
        #expect(stalled.session.isClosed)

        let connected = try TestPeer(fixture: "chromium-whep-offer.sdp", role: .listener, configuration: configuration)
        #expect(try connected.connect().contains(.connected))
        _ = connected.session.handle(datagram: connected.check(nominate: false), from: connected.address,
                                     now: connected.start + .seconds(2))
        #expect(!connected.session.handleTimer(now: connected.start + .seconds(2), ntpTime: 0).contains(.closed(.handshakeTimeout)))
        #expect(!connected.session.isClosed)
    }

    /// The 128 audio packets a listener holds for NACKs, each as it was sent, by sequence number.
    func sendHistory(_ peer: TestPeer, payloadSize: Int = 100) throws -> [UInt16: [UInt8]] {
        let srtp = try #require(peer.srtp)
        var sent: [UInt16: [UInt8]] = [:]
        for index in 0..<128 {
            let events = peer.session.sendAudio(payload: [UInt8](repeating: 0xFC, count: payloadSize), sourceSSRC: 9,
                                                sequenceNumber: UInt16(index), timestamp: UInt32(index * 960), now: peer.start)
            guard case let .send(bytes, _) = try #require(events.first) else { continue }
            var packet = bytes
            try srtp.unprotectRTP(&packet)
            sent[try RTPPacket.parse(packet).sequenceNumber] = bytes
        }
        #expect(sent.count == 128)
        return sent
    }

    /// A 1.8 KB compound: 40 NACKs, each listing all 128 held packets, and the sequence numbers
    /// in the order the session reads them. `storm()` protects it anew each time (SRTCP would
    /// drop a replayed copy).
    func nackStorm(_ peer: TestPeer, sequences: [UInt16]) throws -> (storm: () throws -> [UInt8], order: [UInt16]) {
        let nacks = Array(repeating: RTCPPacket.nack(senderSSRC: 5, mediaSSRC: 1111, lost: sequences.sorted()), count: 40)
        let compound = RTCPPacket.serializeCompound(nacks)
        var order: [UInt16] = []
        for case let .nack(_, _, lost) in try RTCPPacket.parseCompound(compound) {
            for sequence in lost where !order.contains(sequence) { order.append(sequence) }
        }
        #expect(compound.count > 1700)
        let srtp = try #require(peer.srtp)
        return ({
            var datagram = compound
            try srtp.protectRTCP(&datagram)
            return datagram
        }, order)
    }

    /// Finding 2: a 1.8 KB NACK compound made the server send ≈ 2,500 datagrams. Each held
    /// packet now goes out at most once per 100 ms, and the session's budget (here 100 packets
    /// a second) caps the rest: exactly the first 100 packets NACKed, byte for byte as sent.
    @Test func aNACKStormGetsEachPacketOnceWithinThePacketBudget() throws {
        var configuration = WebRTCSession.Configuration()
        configuration.retransmitPacketsPerSecond = 100
        let peer = try TestPeer(fixture: "chromium-whep-offer.sdp", role: .listener, configuration: configuration)
        _ = try peer.connect()
        let sent = try sendHistory(peer)
        let (storm, order) = try nackStorm(peer, sequences: Array(sent.keys))
        #expect(order.count == 128)
        func expected(_ sequences: ArraySlice<UInt16>) -> [WebRTCSession.Event] {
            sequences.map { .send(sent[$0]!, to: peer.address) }
        }
        #expect(peer.session.handle(datagram: try storm(), from: peer.address, now: peer.start) == expected(order[0..<100]))
        // 50 ms later the budget has 5 packets again; the 100 just resent are not resent yet.
        #expect(peer.session.handle(datagram: try storm(), from: peer.address, now: peer.start + .milliseconds(50))
            == expected(order[100..<105]))
        // 250 ms: 20 more packets of budget, and every packet may go again.
        #expect(peer.session.handle(datagram: try storm(), from: peer.address, now: peer.start + .milliseconds(250))
            == expected(order[0..<20]))
    }

    /// Without a packet cap, every held packet goes once per storm; a byte budget caps it too.
    @Test func aNACKStormIsBoundedInBytesAndRepeatsNoPacket() throws {
        var configuration = WebRTCSession.Configuration()
        configuration.retransmitPacketsPerSecond = 10_000
        let loose = try TestPeer(fixture: "chromium-whep-offer.sdp", role: .listener, configuration: configuration)
        _ = try loose.connect()
        let sent = try sendHistory(loose)
        let (storm, order) = try nackStorm(loose, sequences: Array(sent.keys))
        #expect(loose.session.handle(datagram: try storm(), from: loose.address, now: loose.start) == order.map { .send(sent[$0]!, to: loose.address) })
        #expect(loose.session.handle(datagram: try storm(), from: loose.address, now: loose.start + .milliseconds(99)) == [])

        let size = try #require(sent.values.first?.count)
        configuration.retransmitBytesPerSecond = 10 * size + size / 2
        let tight = try TestPeer(fixture: "chromium-whep-offer.sdp", role: .listener, configuration: configuration)
        _ = try tight.connect()
        let tightSent = try sendHistory(tight)
        let (tightStorm, tightOrder) = try nackStorm(tight, sequences: Array(tightSent.keys))
        #expect(tight.session.handle(datagram: try tightStorm(), from: tight.address, now: tight.start)
            == tightOrder[0..<10].map { .send(tightSent[$0]!, to: tight.address) })
    }
}

struct Unexpected: Error {
    let event: WebRTCSession.Event
}

/// Issue 17: the history keeps header fields and a payload reference instead of whole packets;
/// what it resends must still be the datagram that was sent, byte for byte, for every kind of
/// stream (the mix with its run's marker, a per-speaker track with its CSRC, video with the
/// marker on a frame's last packet).
@Suite struct RetransmissionBytesTests {
    func resendAll(_ peer: TestPeer, mediaSSRC: UInt32, sent: [[UInt8]], at offset: Duration) throws -> [WebRTCSession.Event] {
        let srtp = try #require(peer.srtp)
        var sequences: [UInt16] = []
        for datagram in sent {
            var packet = datagram
            try srtp.unprotectRTP(&packet)
            sequences.append(try RTPPacket.parse(packet).sequenceNumber)
        }
        var nack = RTCPPacket.nack(senderSSRC: 5, mediaSSRC: mediaSSRC, lost: sequences).serialized()
        try srtp.protectRTCP(&nack)
        return peer.session.handle(datagram: nack, from: peer.address, now: peer.start + offset)
    }

    static func datagrams(_ events: [WebRTCSession.Event]) -> [[UInt8]] {
        events.compactMap { if case let .send(bytes, _) = $0 { bytes } else { nil } }
    }

    @Test func everyStreamKindIsResentAsItWasSent() throws {
        let mix = try TestPeer(fixture: "chromium-whep-offer.sdp", role: .listener)
        _ = try mix.connect()
        var mixSent: [[UInt8]] = []
        for index in 0..<5 {
            mixSent += Self.datagrams(mix.session.sendAudio(payload: [0xFC, UInt8(index)], sourceSSRC: 9,
                                                            sequenceNumber: UInt16(index), timestamp: UInt32(index * 960),
                                                            now: mix.start + .milliseconds(20 * index)))
        }
        #expect(mixSent.count == 5)
        #expect(Self.datagrams(try resendAll(mix, mediaSSRC: 1111, sent: mixSent, at: .milliseconds(200))) == mixSent)

        let speakers = try TestPeer(fixture: "chromium-whep-speakers-offer.sdp", role: .listener, speakerSSRCs: [3001, 3002, 3003])
        _ = try speakers.connect()
        var speakerSent: [[UInt8]] = []
        for index in 0..<3 {
            speakerSent += Self.datagrams(speakers.session.sendSpeakerAudio(
                payload: [0xFC, UInt8(index)], source: 77, sequenceNumber: UInt16(index), timestamp: UInt32(index * 960),
                now: speakers.start + .milliseconds(20 * index)))
        }
        #expect(speakerSent.count == 3)
        #expect(Self.datagrams(try resendAll(speakers, mediaSSRC: 3001, sent: speakerSent, at: .milliseconds(100)))
            == speakerSent)

        let video = try TestPeer(fixture: "aiortc-whep-offer.sdp", role: .listener)
        _ = try video.connect()
        let frame = [UInt8](repeating: 0x9D, count: 3000)
        let videoSent = Self.datagrams(video.session.sendVideo(frame: frame, timestamp: 90000, now: video.start + .milliseconds(5)))
        #expect(videoSent.count > 1)
        #expect(Self.datagrams(try resendAll(video, mediaSSRC: 2222, sent: videoSent, at: .milliseconds(50))) == videoSent)
    }
}
