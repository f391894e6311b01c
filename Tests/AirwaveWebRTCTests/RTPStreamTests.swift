import Testing

@testable import AirwaveWebRTC

@Suite struct RTPStreamTests {
    let start = ContinuousClock.Instant.now

    @Test func aSourceSwitchContinuesSequenceAndTimestamp() {
        var rewriter = RTPStreamRewriter(outputSSRC: 77, clockRate: 48000, initialSequence: 1000, initialTimestamp: 5000)
        let first = rewriter.rewrite(sourceSSRC: 1, sequenceNumber: 40, timestamp: 900, now: start)
        #expect(first == RTPStreamRewriter.Rewritten(ssrc: 77, sequenceNumber: 1000, timestamp: 5000, startsRun: true))
        let second = rewriter.rewrite(sourceSSRC: 1, sequenceNumber: 41, timestamp: 1860, now: start + .milliseconds(20))
        #expect(second == RTPStreamRewriter.Rewritten(ssrc: 77, sequenceNumber: 1001, timestamp: 5960, startsRun: false))
        // Another speaker 20 ms later, with unrelated numbering.
        let switched = rewriter.rewrite(sourceSSRC: 2, sequenceNumber: 60000, timestamp: 123, now: start + .milliseconds(40))
        #expect(switched == RTPStreamRewriter.Rewritten(ssrc: 77, sequenceNumber: 1002, timestamp: 5960 + 960, startsRun: true))
        let fourth = rewriter.rewrite(sourceSSRC: 2, sequenceNumber: 60001, timestamp: 1083, now: start + .milliseconds(60))
        #expect(fourth == RTPStreamRewriter.Rewritten(ssrc: 77, sequenceNumber: 1003, timestamp: 7880, startsRun: false))
    }

    @Test func lossInsideARunStaysVisibleAndOldPacketsAreDropped() {
        var rewriter = RTPStreamRewriter(outputSSRC: 1, clockRate: 48000, initialSequence: 0, initialTimestamp: 0)
        _ = rewriter.rewrite(sourceSSRC: 9, sequenceNumber: 500, timestamp: 0, now: start)
        let afterGap = rewriter.rewrite(sourceSSRC: 9, sequenceNumber: 503, timestamp: 2880, now: start + .milliseconds(60))
        #expect(afterGap?.sequenceNumber == 3)
        let late = rewriter.rewrite(sourceSSRC: 9, sequenceNumber: 501, timestamp: 960, now: start + .milliseconds(61))
        #expect(late?.sequenceNumber == 1)
        #expect(rewriter.rewrite(sourceSSRC: 9, sequenceNumber: 499, timestamp: 0, now: start + .milliseconds(62)) == nil)
        // A late packet does not move the stream backwards: the next one follows 503.
        let next = rewriter.rewrite(sourceSSRC: 9, sequenceNumber: 504, timestamp: 3840, now: start + .milliseconds(80))
        #expect(next?.sequenceNumber == 4)
    }

    @Test func aPauseAdvancesTheTimestampByTheWallClock() {
        var rewriter = RTPStreamRewriter(outputSSRC: 1, clockRate: 48000, initialSequence: 10, initialTimestamp: 0xFFFF_FF00)
        _ = rewriter.rewrite(sourceSSRC: 5, sequenceNumber: 1, timestamp: 0, now: start)
        // Two seconds of silence; the source's own timestamp did not move (it restarted).
        let resumed = rewriter.rewrite(sourceSSRC: 5, sequenceNumber: 2, timestamp: 960, now: start + .seconds(2))
        #expect(resumed?.startsRun == true)
        #expect(resumed?.sequenceNumber == 11)
        #expect(resumed?.timestamp == 0xFFFF_FF00 &+ 96000)
    }

    @Test func applyWritesTheFieldsAndTheMarker() throws {
        var bytes = RTPPacket(payloadType: 111, sequenceNumber: 1, timestamp: 2, ssrc: 3, payload: [9]).serialized()
        RTPStreamRewriter.apply(.init(ssrc: 30, sequenceNumber: 10, timestamp: 20, startsRun: true), to: &bytes)
        let parsed = try RTPPacket.parse(bytes)
        #expect(parsed.ssrc == 30)
        #expect(parsed.sequenceNumber == 10)
        #expect(parsed.timestamp == 20)
        #expect(parsed.marker)
        #expect(parsed.payload == [9])
    }

    static func packet(_ sequence: UInt16, _ payload: [UInt8]) -> RTPPacket {
        RTPPacket(payloadType: 111, sequenceNumber: sequence, timestamp: 0, ssrc: 7, payload: payload)
    }

    @Test func theHistoryAnswersRecentSequenceNumbersOnly() {
        var history = RTPRetransmissionHistory(capacity: 4, maximumAge: .milliseconds(500))
        for sequence: UInt16 in 65534...65535 {
            history.store(Self.packet(sequence, [UInt8(sequence & 0xFF)]), now: start)
        }
        for sequence: UInt16 in 0...2 {
            history.store(Self.packet(sequence, [UInt8(sequence)]), now: start + .milliseconds(100))
        }
        #expect(history.packet(sequenceNumber: 65534, now: start + .milliseconds(100)) == nil)  // overwritten by 2
        #expect(history.packet(sequenceNumber: 65535, now: start + .milliseconds(100))?.payload == [0xFF])
        #expect(history.packet(sequenceNumber: 1, now: start + .milliseconds(100))?.payload == [1])
        #expect(history.packet(sequenceNumber: 3, now: start + .milliseconds(100)) == nil)  // never sent
        #expect(history.packet(sequenceNumber: 65535, now: start + .milliseconds(501)) == nil)  // too old
        #expect(history.packet(sequenceNumber: 2, now: start + .milliseconds(600))?.payload == [2])
    }

    /// Issue 17: a listener's history costs nothing until it holds packets, and holds only
    /// those it could still resend (1 s of audio is 50 packets, not its capacity of 128).
    @Test func anEmptyHistoryAllocatesNothingAndGrowsOnlyAsFarAsItsAge() {
        var history = RTPRetransmissionHistory(capacity: 128, maximumAge: .milliseconds(1000))
        #expect(history.allocatedEntries == 0)
        #expect(history.count == 0)
        let payload = [UInt8](repeating: 0xFC, count: 80)
        for index in 0..<500 {
            history.store(RTPPacket(payloadType: 111, sequenceNumber: UInt16(truncatingIfNeeded: 65500 + index),
                                    timestamp: 0, ssrc: 7, payload: payload), now: start + .milliseconds(20 * index))
        }
        #expect(history.count == 51)
        #expect(history.allocatedEntries <= 64)
        let now = start + .milliseconds(20 * 499)
        #expect(history.packet(sequenceNumber: UInt16(truncatingIfNeeded: 65500 + 449), now: now)?.payload == payload)
        #expect(history.packet(sequenceNumber: UInt16(truncatingIfNeeded: 65500 + 448), now: now) == nil)
        // Packets sent faster than the age drops them: the capacity bounds it.
        for index in 0..<300 {
            history.store(Self.packet(UInt16(index), [1]), now: now)
        }
        #expect(history.count == 128)
        #expect(history.packet(sequenceNumber: 172, now: now) != nil)
        #expect(history.packet(sequenceNumber: 171, now: now) == nil)
    }

    /// Marker, CSRC, timestamp and payload come back as stored; out-of-order sequence numbers are
    /// found too, and a resend is remembered per packet.
    @Test func theHistoryGivesBackWhatWasStored() {
        var history = RTPRetransmissionHistory(capacity: 8)
        let packets = [
            RTPPacket(marker: true, payloadType: 111, sequenceNumber: 10, timestamp: 960, ssrc: 5, csrcs: [42], payload: [1, 2]),
            RTPPacket(payloadType: 96, sequenceNumber: 11, timestamp: 1920, ssrc: 6, payload: [3]),
            RTPPacket(payloadType: 96, sequenceNumber: 20, timestamp: 2880, ssrc: 6, payload: []),
            RTPPacket(payloadType: 96, sequenceNumber: 15, timestamp: 3840, ssrc: 6, payload: [4]),
        ]
        for packet in packets { history.store(packet, now: start) }
        for packet in packets {
            #expect(history.packet(sequenceNumber: packet.sequenceNumber, now: start) == packet)
        }
        history.markResent(sequenceNumber: 15, now: start)
        #expect(history.retransmission(sequenceNumber: 15, now: start + .milliseconds(99), minimumInterval: .milliseconds(100)) == nil)
        #expect(history.retransmission(sequenceNumber: 20, now: start + .milliseconds(99), minimumInterval: .milliseconds(100)) != nil)
        #expect(history.retransmission(sequenceNumber: 15, now: start + .milliseconds(100), minimumInterval: .milliseconds(100)) != nil)
    }

    @Test func senderReportsCountAndReceiverReportsGiveTheRoundTrip() {
        var stats = RTPSenderStatistics(ssrc: 7, clockRate: 48000)
        let early = stats.senderReport(now: start, ntpTime: 0)
        #expect(early == nil)
        stats.recordSent(timestamp: 1000, payloadBytes: 50, now: start)
        stats.recordSent(timestamp: 1960, payloadBytes: 70, now: start + .milliseconds(20))
        let ntp = RTPSenderStatistics.ntpTime(unixSeconds: 1_700_000_000, nanoseconds: 500_000_000)
        #expect(ntp >> 32 == 1_700_000_000 + 2_208_988_800)
        #expect(ntp & 0xFFFF_FFFF == 1 << 31)
        let report = stats.senderReport(now: start + .milliseconds(30), ntpTime: ntp)
        #expect(report == RTCPPacket.senderReport(.init(ssrc: 7, ntpTimestamp: ntp, rtpTimestamp: 1960 + 480, packetCount: 2, octetCount: 120)))
        // The report left at +30 ms; an answer with no hold time (DLSR 0) at +130 ms → RTT 100 ms…
        let block = RTCPPacket.ReportBlock(
            ssrc: 7, fractionLost: 12, cumulativeLost: 4, highestSequence: 2, jitter: 0,
            lastSenderReport: UInt32(truncatingIfNeeded: ntp >> 16), delaySinceLastSenderReport: 0)
        stats.handle(block, now: start + .milliseconds(130))
        #expect(stats.roundTripTime == .milliseconds(100))
        #expect(stats.fractionLost == 12)
        #expect(stats.cumulativeLost == 4)
        // …and a block about another SSRC changes nothing.
        stats.handle(.init(ssrc: 8, fractionLost: 99, cumulativeLost: 0, highestSequence: 0, jitter: 0,
                           lastSenderReport: 0, delaySinceLastSenderReport: 0), now: start)
        #expect(stats.fractionLost == 12)
    }
}
