import AirwaveWebRTC
import Testing

@Suite("RTP sequence extension")
struct RTPSequenceExtenderTests {
    @Test func countsOnAcrossTheWrap() {
        var extender = RTPSequenceExtender()
        let extended = [65533, 65534, 65535, 0, 1, 2].map { extender.extend(UInt16($0)) }
        #expect(extended == [65533, 65534, 65535, 65536, 65537, 65538])
    }

    @Test func aLatePacketFromBeforeTheWrapKeepsItsCycle() {
        var extender = RTPSequenceExtender()
        _ = extender.extend(65534)
        _ = extender.extend(1)         // wrapped: cycle 1
        #expect(extender.extend(65535) == 65535)  // late, from cycle 0
        #expect(extender.extend(2) == 65538)
        #expect(extender.extend(2) == 65538)      // duplicate
    }

    @Test func aStartNearTheTopDoesNotUnderflow() {
        var extender = RTPSequenceExtender()
        #expect(extender.extend(10) == 10)
        #expect(extender.extend(65530) == 65530)  // 16 back: late, cycle 0 (no cycle −1)
        #expect(extender.extend(11) == 11)
    }
}
