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

    init(fixture: String, role: WebRTCPeerRole, setup: String = "actpass") throws {
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
        let parameters = AnswerParameters(
            role: role, iceUfrag: "srvU", icePassword: "serverpassword0123456789", fingerprint: serverContext.fingerprint,
            candidates: [TransportAddress(host: "127.0.0.1", port: 40000)!], sendsVideo: true, audioSSRC: 1111,
            videoSSRC: 2222, cname: "airwave", sessionID: 1)
        let negotiated = try offer.answer(parameters)
        session = try WebRTCSession(
            negotiated: negotiated, role: role, localUfrag: "srvU", localPassword: "serverpassword0123456789",
            audioSSRC: 1111, videoSSRC: 2222, dtlsContext: serverContext, now: start)
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

    @Test func pliAndFirBecomeThrottledKeyframeRequests() throws {
        let peer = try TestPeer(fixture: "chromium-whep-offer.sdp", role: .listener)
        _ = try peer.connect()
        let srtp = try #require(peer.srtp)
        func send(_ packet: RTCPPacket, at offset: Duration) throws -> [WebRTCSession.Event] {
            var bytes = packet.serialized()
            try srtp.protectRTCP(&bytes)
            return peer.session.handle(datagram: bytes, from: peer.address, now: peer.start + offset)
        }
        #expect(try send(.pli(senderSSRC: 1, mediaSSRC: 2222), at: .milliseconds(10)) == [.keyframeRequest])
        #expect(try send(.pli(senderSSRC: 1, mediaSSRC: 2222), at: .milliseconds(500)).isEmpty)
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
}
