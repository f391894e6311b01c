import Testing

@testable import AirwaveWebRTC

@Suite struct RTPTests {
    let packet = RTPPacket(
        marker: true, payloadType: 111, sequenceNumber: 0xFFFE, timestamp: 0xDEAD_BEEF, ssrc: 0x0102_0304,
        csrcs: [5, 6], headerExtension: .init(profile: 0xBEDE, data: [0x10, 0xAB, 0, 0]),
        payload: [1, 2, 3, 4, 5], paddingCount: 3)

    @Test func aPacketWithCSRCsExtensionAndPaddingRoundTrips() throws {
        let bytes = packet.serialized()
        #expect(bytes.count == 12 + 8 + 8 + 5 + 3)
        #expect(bytes[0] == 0xB2)  // V=2, P, X, CC=2
        #expect(bytes.last == 3)
        #expect(try RTPPacket.parse(bytes) == packet)
    }

    @Test func aMinimalPacketParses() throws {
        let parsed = try RTPPacket.parse([0x80, 0x60, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3])
        #expect(parsed == RTPPacket(payloadType: 96, sequenceNumber: 1, timestamp: 2, ssrc: 3, payload: []))
    }

    static let malformedRTP: [(String, [UInt8], RTPError)] = [
        ("empty", [], .tooShort),
        ("11 bytes", [0x80, 0x60, 0, 1, 0, 0, 0, 2, 0, 0, 0], .tooShort),
        ("version 1", [0x40, 0x60, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3], .badVersion),
        ("version 0", [0x00, 0x60, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3], .badVersion),
        ("CSRC count past the end", [0x83, 0x60, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 9], .truncatedCSRCs),
        ("extension header cut", [0x90, 0x60, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0xBE, 0xDE], .truncatedExtension),
        ("extension length past the end", [0x90, 0x60, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0xBE, 0xDE, 0, 2, 0, 0, 0, 0],
         .truncatedExtension),
        ("padding count zero", [0xA0, 0x60, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 7, 0], .badPadding),
        ("padding longer than the payload", [0xA0, 0x60, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 7, 9], .badPadding),
        ("padding flag without payload", [0xA0, 0x60, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3], .badPadding),
    ]

    @Test(arguments: malformedRTP)
    func malformedRTPIsRejected(name: String, bytes: [UInt8], error: RTPError) {
        #expect(throws: error, "\(name)") { try RTPPacket.parse(bytes) }
    }

    @Test func everyTruncationOfAValidPacketIsRejectedOrShorter() {
        let bytes = packet.serialized()
        for length in 0..<bytes.count {
            // Cutting the tail removes the padding count byte, so no prefix is the same packet.
            #expect((try? RTPPacket.parse(bytes.prefix(length))) != packet)
        }
    }

    static let block = RTCPPacket.ReportBlock(
        ssrc: 0xAABB_CCDD, fractionLost: 25, cumulativeLost: -3, highestSequence: 0x0001_0010, jitter: 80,
        lastSenderReport: 0x1234_5678, delaySinceLastSenderReport: 65536)

    @Test func aCompoundPacketRoundTrips() throws {
        let packets: [RTCPPacket] = [
            .senderReport(.init(ssrc: 1, ntpTimestamp: 0x0102_0304_0506_0708, rtpTimestamp: 9, packetCount: 10,
                                octetCount: 11, reports: [Self.block])),
            .receiverReport(.init(ssrc: 2, reports: [Self.block, Self.block])),
            .other(packetType: 202, count: 1, body: [0, 0, 0, 1, 1, 3, 0x61, 0x62, 0x63, 0, 0, 0]),
            .nack(senderSSRC: 3, mediaSSRC: 4, lost: [100, 101, 116, 117, 300]),
            .pli(senderSSRC: 5, mediaSSRC: 6),
            .fir(senderSSRC: 7, entries: [.init(ssrc: 8, sequenceNumber: 9), .init(ssrc: 10, sequenceNumber: 11)]),
        ]
        let bytes = RTCPPacket.serializeCompound(packets)
        #expect(try RTCPPacket.parseCompound(bytes) == packets)
        #expect(PacketKind(datagram: bytes) == .rtcp)
    }

    @Test func nackBitmasksCoverSixteenFollowingPackets() throws {
        // PID 100 with BLP bits 0 and 15 (101 and 116); 117 starts a new item.
        let items = RTCPPacket.nackItems([100, 101, 116, 117])
        #expect(items.map(\.0) == [100, 117])
        #expect(items.map(\.1) == [0x8001, 0])
        // Wrap-around: 65535 then 0 share an item.
        let bytes = RTCPPacket.nack(senderSSRC: 1, mediaSSRC: 2, lost: [65535, 0]).serialized()
        #expect(bytes.count == 16)
        #expect(try RTCPPacket.parseCompound(bytes) == [.nack(senderSSRC: 1, mediaSSRC: 2, lost: [65535, 0])])
    }

    static let malformedRTCP: [(String, [UInt8], RTPError)] = [
        ("empty", [], .tooShort),
        ("three bytes", [0x80, 200, 0], .tooShort),
        ("version 1", [0x40, 201, 0, 1, 0, 0, 0, 1], .badVersion),
        ("length past the end", [0x80, 201, 0, 2, 0, 0, 0, 1], .badLength),
        ("trailing bytes", [0x80, 201, 0, 1, 0, 0, 0, 1, 0x80], .tooShort),
        ("SR cut", [0x80, 200, 0, 1, 0, 0, 0, 1], .tooShort),
        ("RR says one block, has none", [0x81, 201, 0, 1, 0, 0, 0, 1], .tooShort),
        ("NACK without items", [0x81, 205, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2], .truncatedFeedback),
        ("PLI without media SSRC", [0x81, 206, 0, 1, 0, 0, 0, 1], .truncatedFeedback),
        ("FIR with half an entry", [0x84, 206, 0, 3, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 8], .truncatedFeedback),
        ("padding on a packet that is not last",
         [0xA0, 201, 0, 1, 0, 0, 0, 1, 0x80, 201, 0, 1, 0, 0, 0, 2], .badPadding),
        ("padding count zero", [0xA0, 201, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0], .badPadding),
        ("padding count past the body", [0xA0, 201, 0, 1, 0, 0, 0, 9], .badPadding),
    ]

    @Test(arguments: malformedRTCP)
    func malformedRTCPIsRejected(name: String, bytes: [UInt8], error: RTPError) {
        #expect(throws: error, "\(name)") { try RTCPPacket.parseCompound(bytes) }
    }

    @Test func tooManyPacketsInOneCompoundAreRejected() {
        let one = RTCPPacket.receiverReport(.init(ssrc: 1, reports: [])).serialized()
        let many = (0..<(RTCPPacket.maximumCompoundCount + 1)).flatMap { _ in one }
        #expect(throws: RTPError.badLength) { try RTCPPacket.parseCompound(many) }
    }
}
