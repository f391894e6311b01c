import Testing

@testable import AirwaveWebRTC

/// Per-speaker WHEP (`?audio=speakers`): the answer's audio sections, the track each speaker
/// takes, and the packets a session sends on them (own SSRC per track, the speaker as CSRC).
@Suite struct SpeakerTrackTests {
    let start = ContinuousClock.Instant.now

    @Test func aSpeakerTakesTheLowestFreeTrackAndKeepsItUntilReleased() {
        var tracks = SpeakerTrackAssignment(tracks: 3)
        #expect(tracks.track(for: 1, now: start) == 0)
        #expect(tracks.track(for: 7, now: start) == 1)
        #expect(tracks.track(for: 1, now: start + .milliseconds(20)) == 0)
        #expect(tracks.track(for: 3, now: start + .milliseconds(20)) == 2)
        tracks.release(7)
        #expect(tracks.sources == [1, nil, 3])
        #expect(tracks.track(for: 4, now: start + .milliseconds(40)) == 1)
        #expect(tracks.track(for: 7, now: start + .milliseconds(40)) == nil)  // every track heard just now
    }

    @Test func withEveryTrackTakenANewSpeakerWaitsForOneIdleLongEnough() {
        var tracks = SpeakerTrackAssignment(tracks: 2, idleTakeover: .seconds(2))
        #expect(tracks.track(for: 1, now: start) == 0)
        #expect(tracks.track(for: 2, now: start + .milliseconds(500)) == 1)
        // Both heard within 2 s: speaker 3 is not heard on this session.
        #expect(tracks.track(for: 3, now: start + .milliseconds(1900)) == nil)
        #expect(tracks.track(for: 2, now: start + .milliseconds(1950)) == 1)
        // Speaker 1 has been silent for 2 s: 3 takes its track; 1 is then the one left out.
        #expect(tracks.track(for: 3, now: start + .milliseconds(2000)) == 0)
        #expect(tracks.sources == [3, 2])
        #expect(tracks.track(for: 1, now: start + .milliseconds(2100)) == nil)
    }

    func parameters(speakerSSRCs: [UInt32]) -> AnswerParameters {
        var parameters = AnswerParameters(
            role: .listener, iceUfrag: "srvU", icePassword: "serverpassword0123456789",
            fingerprint: CertificateFingerprint(algorithm: "sha-256", value: Array(repeating: "AB", count: 32).joined(separator: ":")),
            candidates: [TransportAddress(host: "203.0.113.5", port: 40000)!], sendsVideo: true,
            audioSSRC: 1111, videoSSRC: 2222, cname: "airwave", sessionID: 42)
        parameters.speakerSSRCs = speakerSSRCs
        return parameters
    }

    @Test func theAnswerAcceptsEveryAudioSectionWithItsOwnSSRC() throws {
        let offer = try SessionDescription.parse(try WebRTCFixtures.offer("chromium-whep-speakers-offer.sdp"))
        let negotiated = try offer.answer(parameters(speakerSSRCs: [3001, 3002, 3003, 3004]))
        #expect(negotiated.speakerAudio.map(\.mid) == ["0", "1", "2"])
        #expect(negotiated.speakerAudio.allSatisfy { $0.payloadType == 111 })
        #expect(negotiated.audio?.mid == "0")
        let answer = try SessionDescription.parse(negotiated.answer)
        #expect(answer.bundleMids == ["0", "1", "2", "3"])
        let audio = answer.media.filter { $0.kind == "audio" }
        #expect(audio.map(\.ssrcs) == [[3001], [3002], [3003]])
        #expect(audio.map { $0.value(of: "msid") } == ["airwave speaker-0", "airwave speaker-1", "airwave speaker-2"])
        #expect(audio.allSatisfy { $0.port == 40000 && $0.direction == .sendonly })
        #expect(answer.media.first { $0.kind == "video" }?.ssrcs == [2222])
    }

    @Test func sectionsBeyondTheCapAreRejectedAndTooFewAreABadOffer() throws {
        let offer = try SessionDescription.parse(try WebRTCFixtures.offer("chromium-whep-speakers-offer.sdp"))
        let negotiated = try offer.answer(parameters(speakerSSRCs: [3001, 3002]))
        #expect(negotiated.speakerAudio.map(\.mid) == ["0", "1"])
        let answer = try SessionDescription.parse(negotiated.answer)
        #expect(answer.media.map(\.port) == [40000, 40000, 0, 40000])
        #expect(answer.bundleMids == ["0", "1", "3"])

        let single = try SessionDescription.parse(try WebRTCFixtures.offer("chromium-whep-offer.sdp"))
        #expect(throws: AnswerError.tooFewSpeakerSections(1)) { try single.answer(parameters(speakerSSRCs: [3001, 3002])) }
        // Without speaker SSRCs the same offer is the mix: one audio section, the others rejected.
        let mixed = try offer.answer(parameters(speakerSSRCs: []))
        #expect(mixed.speakerAudio.isEmpty)
        #expect(try SessionDescription.parse(mixed.answer).media.map(\.port) == [40000, 0, 0, 40000])
    }

    /// Decrypts what a session sent to the peer.
    func received(_ events: [WebRTCSession.Event], _ peer: TestPeer) throws -> [RTPPacket] {
        let srtp = try #require(peer.srtp)
        return try events.compactMap { event in
            guard case let .send(bytes, _) = event, PacketKind(datagram: bytes) == .rtp else { return nil }
            var packet = bytes
            try srtp.unprotectRTP(&packet)
            return try RTPPacket.parse(packet)
        }
    }

    @Test func eachSpeakerGoesOutOnItsTrackWithItsSourceIDAsCSRC() throws {
        let peer = try TestPeer(fixture: "chromium-whep-speakers-offer.sdp", role: .listener, speakerSSRCs: [3001, 3002, 3003])
        #expect(try peer.connect().contains(.connected))
        let session = peer.session
        #expect(session.speakerTrackSSRCs == [3001, 3002, 3003])
        let t = peer.start + .milliseconds(20)

        let host1 = try received(session.sendSpeakerAudio(payload: [0xFC, 1], source: 1, sequenceNumber: 10, timestamp: 960, now: t), peer)
        let cohost1 = try received(session.sendSpeakerAudio(payload: [0xFC, 2], source: 2, sequenceNumber: 500, timestamp: 48000, now: t), peer)
        let host2Sent = session.sendSpeakerAudio(payload: [0xFC, 3], source: 1, sequenceNumber: 11, timestamp: 1920,
                                                 now: t + .milliseconds(20))
        let host2 = try received(host2Sent, peer)
        #expect(host1.map(\.ssrc) == [3001] && host2.map(\.ssrc) == [3001])
        #expect(cohost1.map(\.ssrc) == [3002])
        #expect(host1.map(\.csrcs) == [[1]] && host2.map(\.csrcs) == [[1]] && cohost1.map(\.csrcs) == [[2]])
        #expect(host1.first?.payload == [0xFC, 1] && cohost1.first?.payload == [0xFC, 2])
        // Continuous per track: the next sequence number, 960 ticks later, no marker.
        let (first, second) = (try #require(host1.first), try #require(host2.first))
        #expect(first.marker && !second.marker)
        #expect(second.sequenceNumber == first.sequenceNumber &+ 1)
        #expect(second.timestamp == first.timestamp &+ 960)

        // The co-host stops: its track is free, and the next new speaker takes it (a new run).
        session.releaseSpeaker(2)
        let third = try received(session.sendSpeakerAudio(payload: [0xFC, 4], source: 3, sequenceNumber: 1, timestamp: 0,
                                                          now: t + .milliseconds(40)), peer)
        #expect(third.map(\.ssrc) == [3002])
        #expect(third.map(\.csrcs) == [[3]])
        #expect(third.first?.marker == true)
        #expect(third.first?.sequenceNumber == cohost1.first.map { $0.sequenceNumber &+ 1 })

        // A NACK on a track's SSRC resends the same protected packet (CSRC included).
        let srtp = try #require(peer.srtp)
        var nack = RTCPPacket.nack(senderSSRC: 5, mediaSSRC: 3001, lost: [second.sequenceNumber]).serialized()
        try srtp.protectRTCP(&nack)
        #expect(session.handle(datagram: nack, from: peer.address, now: t + .milliseconds(60)) == host2Sent)
    }

    @Test func theMixMethodSendsNothingToAPerSpeakerSessionAndViceVersa() throws {
        let speakers = try TestPeer(fixture: "chromium-whep-speakers-offer.sdp", role: .listener, speakerSSRCs: [3001, 3002, 3003])
        _ = try speakers.connect()
        #expect(speakers.session.sendAudio(payload: [0xFC], sourceSSRC: 0, sequenceNumber: 1, timestamp: 960,
                                           now: speakers.start).isEmpty)
        let mixed = try TestPeer(fixture: "chromium-whep-offer.sdp", role: .listener)
        _ = try mixed.connect()
        #expect(mixed.session.sendSpeakerAudio(payload: [0xFC], source: 1, sequenceNumber: 1, timestamp: 960,
                                               now: mixed.start).isEmpty)
    }
}
