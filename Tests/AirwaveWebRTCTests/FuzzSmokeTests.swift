import AirwaveTestSupport
import Foundation
import Testing

@testable import AirwaveWebRTC
@testable import AirwaveWebRTCFuzzing

/// Every parser over a few thousand mutated inputs (the `airwave-fuzz` tool runs longer). Each
/// input that parses must round-trip (`FuzzTarget.run`); a crash fails the whole test run. The
/// seeds themselves must parse to the fields they were made with.
@Suite struct FuzzSmokeTests {
    @Test(arguments: FuzzTarget.allCases)
    func mutatedInputsThatParseRoundTrip(target: FuzzTarget) throws {
        var run = FuzzRun(target: target, sdpOffers: try WebRTCFixtures.allOffers(), seed: 20261123)
        run.run(iterations: target == .sdp ? 500 : 3000)
        #expect(run.iterations == (target == .sdp ? 500 : 3000))
        #expect(run.failureCount == 0, "\(run.failures.map(\.description).joined(separator: "\n"))")
    }

    @Test func theMutatorIsDeterministicAndChangesItsInput() {
        var first = FuzzMutator(seeds: [STUNTestVectors.request], seed: 5)
        var second = FuzzMutator(seeds: [STUNTestVectors.request], seed: 5)
        let a = (0..<100).map { _ in first.next() }
        let b = (0..<100).map { _ in second.next() }
        #expect(a == b)
        #expect(a.filter { $0 != STUNTestVectors.request }.count > 90)
    }

    // MARK: the checks fail on a wrong result

    /// A serializer that loses a field, an opaque byte or the signature is reported, not passed.
    @Test func aWrongSerializerBreaksTheRoundTrip() {
        let rtp = FuzzTarget.rtp.seeds(sdpOffers: [])[0]
        #expect(FuzzTarget.checkRTP(rtp).isEmpty)
        let broken = FuzzTarget.checkRTP(rtp) { packet in
            var packet = packet
            packet.marker.toggle()
            return packet.serialized()
        }
        #expect(broken.contains("RTP: parse(serialize(p)) != p"))

        let rtcp = FuzzTarget.rtcp.seeds(sdpOffers: [])[0]
        #expect(FuzzTarget.checkRTCP(rtcp).isEmpty)
        #expect(FuzzTarget.checkRTCP(rtcp) { RTCPPacket.serializeCompound(Array($0.dropLast())) }
            .contains("RTCP: parse(serialize(p)) != p"))
        #expect(FuzzTarget.checkRTCP(rtcp) { RTCPPacket.serializeCompound($0).dropLast(4) }
            == ["RTCP: serialize(parse(x)) does not parse"])

        #expect(FuzzTarget.checkSTUN(STUNTestVectors.request).isEmpty)
        let unsigned = FuzzTarget.checkSTUN(STUNTestVectors.request) { message, _, fingerprint in
            message.serialized(integrityPassword: nil, fingerprint: fingerprint)
        }
        #expect(unsigned.contains("STUN: a message signed anew does not verify with its password"))
    }

    @Test func aWrongAnswerBreaksTheSDPCheck() throws {
        let offer = Array(try WebRTCFixtures.offer("chromium-whep-offer.sdp").utf8)
        #expect(FuzzTarget.checkSDP(offer).isEmpty)
        let noBundle = FuzzTarget.checkSDP(offer) { offer, parameters in
            var negotiated = try offer.answer(parameters)
            negotiated.answer = negotiated.answer.replacingOccurrences(of: "a=group:BUNDLE", with: "a=group:LS")
            return negotiated
        }
        #expect(noBundle.contains("SDP: the listener answer's BUNDLE group is not the accepted sections"))
    }

    /// Found by the SDP round trip: a mid that is not a token (a space, a lone CR) made an answer
    /// whose BUNDLE group named other sections. Such offers are malformed now.
    @Test func aMidThatIsNotATokenIsAMalformedOffer() throws {
        let offer = try WebRTCFixtures.offer("chromium-whip-offer.sdp")
        #expect(throws: SDPError.self) { try SessionDescription.parse(offer.replacingOccurrences(of: "a=mid:0", with: "a=mid:0 1")) }
        #expect(throws: SDPError.self) { try SessionDescription.parse(offer.replacingOccurrences(of: "a=mid:0", with: "a=mid:0\rx")) }
        #expect(throws: SDPError.self) { try SessionDescription.parse(offer.replacingOccurrences(of: "a=mid:0", with: "a=mid:")) }
        #expect(try SessionDescription.parse(offer.replacingOccurrences(of: "a=mid:0", with: "a=mid:audio-1")).media[0].mid == "audio-1")
    }

    // MARK: the corpus parses to its fields

    /// RFC 5769 §2.1–2.3 as written there.
    @Test func theSTUNSeedsAreTheRFC5769Vectors() throws {
        let transaction: [UInt8] = [0xB7, 0xE7, 0xA7, 0x01, 0xBC, 0x34, 0xD6, 0x86, 0xFA, 0x87, 0xDF, 0xAE]
        let request = try STUNMessage.parse(STUNTestVectors.request)
        #expect(request.messageClass == .request && request.transactionID == transaction)
        #expect(request.attribute(.software)?.stringValue == "STUN test client")
        #expect(request.attribute(.priority)?.uint32Value == 0x6E00_01FF)
        #expect(request.attribute(.iceControlled)?.value == [0x93, 0x2F, 0xF9, 0xB1, 0x51, 0x26, 0x3B, 0x36])
        #expect(request.attribute(.username)?.stringValue == "evtj:h6vY")
        try STUNMessage.verifyMessageIntegrity(STUNTestVectors.request, password: STUNTestVectors.password)

        let v4 = try STUNMessage.parse(STUNTestVectors.ipv4Response)
        #expect(v4.messageClass == .successResponse && v4.transactionID == transaction)
        #expect(v4.attribute(.software)?.stringValue == "test vector")
        #expect(v4.xorMappedAddress == TransportAddress(ip: .v4(192, 0, 2, 1), port: 32853))
        try STUNMessage.verifyMessageIntegrity(STUNTestVectors.ipv4Response, password: STUNTestVectors.password)

        let v6 = try STUNMessage.parse(STUNTestVectors.ipv6Response)
        #expect(v6.xorMappedAddress == TransportAddress(host: "2001:db8:1234:5678:11:2233:4455:6677", port: 32853))
        try STUNMessage.verifyMessageIntegrity(STUNTestVectors.ipv6Response, password: STUNTestVectors.password)

        let own = try STUNMessage.parse(FuzzTarget.stun.seeds(sdpOffers: [])[3])
        #expect(own.attribute(.username)?.stringValue == "abcd:efgh" && own.attribute(.useCandidate) != nil)
        try STUNMessage.verifyMessageIntegrity(FuzzTarget.stun.seeds(sdpOffers: [])[3], password: FuzzTarget.icePassword)
    }

    @Test func theRTPAndRTCPSeedsParseToTheirFields() throws {
        let rtp = FuzzTarget.rtp.seeds(sdpOffers: [])
        let opus = try RTPPacket.parse(rtp[0])
        #expect(opus.marker && opus.payloadType == 111 && opus.sequenceNumber == 1 && opus.timestamp == 960)
        #expect(opus.ssrc == 0x1234_5678 && opus.payload == Array(repeating: 0xFC, count: 60) && opus.paddingCount == 0)
        let vp8 = try RTPPacket.parse(rtp[1])
        #expect(!vp8.marker && vp8.payloadType == 96 && vp8.sequenceNumber == 65535 && vp8.csrcs == [1, 2])
        #expect(vp8.headerExtension == .init(profile: 0xBEDE, data: [0x10, 0x01, 0, 0]) && vp8.paddingCount == 4)
        #expect(VP8PayloadDescriptor.parse(vp8.payload[...]) != nil)

        let rtcp = FuzzTarget.rtcp.seeds(sdpOffers: [])
        let block = RTCPPacket.ReportBlock(ssrc: 9, fractionLost: 3, cumulativeLost: -2, highestSequence: 70000,
                                           jitter: 12, lastSenderReport: 5, delaySinceLastSenderReport: 6)
        #expect(try RTCPPacket.parseCompound(rtcp[0]) == [
            .senderReport(.init(ssrc: 1, ntpTimestamp: 1 << 40, rtpTimestamp: 2, packetCount: 3, octetCount: 4, reports: [block])),
            .other(packetType: 202, count: 1, body: [0, 0, 0, 1, 1, 4, 0x61, 0x62, 0x63, 0x64, 0, 0]),
        ])
        #expect(try RTCPPacket.parseCompound(rtcp[1]) == [
            .receiverReport(.init(ssrc: 2, reports: [block, block])),
            .nack(senderSSRC: 2, mediaSSRC: 1, lost: [10, 11, 15, 40]),
            .pli(senderSSRC: 2, mediaSSRC: 1),
            .fir(senderSSRC: 2, entries: [.init(ssrc: 1, sequenceNumber: 4)]),
        ])
    }

    /// The captured offers (Fixtures/webrtc): their sections, and what the answers take from them.
    @Test func theSDPSeedsParseToTheirSections() throws {
        let offers = try WebRTCFixtures.allOffers()
        #expect(offers.count == 5)
        let expected: [(file: String, kinds: [String], ufrag: String)] = [
            ("aiortc-whep-offer.sdp", ["audio", "video"], "UUoE"), ("aiortc-whip-offer.sdp", ["audio"], "Rg95"),
            ("chromium-whep-offer.sdp", ["audio", "video"], "SyiO"), ("chromium-whip-offer.sdp", ["audio"], "XpBd"),
            ("chromium-whep-speakers-offer.sdp", ["audio", "audio", "audio", "video"], "TpWi"),
        ]
        for entry in expected {
            let offer = try SessionDescription.parse(try WebRTCFixtures.offer(entry.file))
            #expect(offer.media.map(\.kind) == entry.kinds, "\(entry.file)")
            #expect(offer.media.map(\.mid) == entry.kinds.indices.map { String($0) }, "\(entry.file)")
            #expect(offer.media.allSatisfy { $0.value(of: "ice-ufrag") == entry.ufrag && $0.has("rtcp-mux") }, "\(entry.file)")
            #expect(offer.media[0].rtpMaps.contains { $0.encoding.lowercased() == "opus" && $0.clockRate == 48000 }, "\(entry.file)")
            #expect(FuzzTarget.checkSDP(Array(try WebRTCFixtures.offer(entry.file).utf8)).isEmpty, "\(entry.file)")
        }
    }

    @Test func theSeedGeneratorIsTheReferenceSplitMix64() {
        // The first outputs for seed 0 of https://prng.di.unimi.it/splitmix64.c.
        var generator = SplitMix64(seed: 0)
        #expect((0..<3).map { _ in generator.next() } == [0xE220_A839_7B1D_CDAF, 0x6E78_9E6A_A1B9_65F4, 0x06C4_5D18_8009_454F])
    }
}
