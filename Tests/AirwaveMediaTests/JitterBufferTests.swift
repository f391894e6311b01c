import AirwaveMedia
import Testing

@Suite("Jitter buffer of the event mix")
struct JitterBufferTests {
    static func packet(_ index: Int) -> [UInt8] { [UInt8(index & 0xFF)] }

    @Test("a talk spurt waits for the delay, then plays in timestamp order")
    func reordersAndDelays() {
        var buffer = JitterBuffer()
        #expect(buffer.push(Self.packet(1), timestamp: 960, samples: 960, tick: 0) == .accepted)
        #expect(buffer.next(tick: 0) == .idle)  // one packet, not yet waited 2 ticks
        #expect(buffer.push(Self.packet(0), timestamp: 0, samples: 960, tick: 1) == .accepted)
        // 40 ms buffered: playout starts with the earliest timestamp.
        #expect(buffer.next(tick: 1) == .decode(Self.packet(0)))
        #expect(buffer.next(tick: 2) == .decode(Self.packet(1)))
        #expect(buffer.playoutTimestamp == 1920)
    }

    @Test("a single packet plays once it has waited the delay")
    func shortSpurtPlays() {
        var buffer = JitterBuffer()
        buffer.push(Self.packet(0), timestamp: 5000, samples: 960, tick: 3)
        #expect(buffer.next(tick: 4) == .idle)
        #expect(buffer.next(tick: 5) == .decode(Self.packet(0)))
    }

    @Test("a gap is concealed, a late packet dropped, a duplicate ignored")
    func gapsLateAndDuplicates() {
        var buffer = JitterBuffer()
        buffer.push(Self.packet(0), timestamp: 0, samples: 960, tick: 0)
        buffer.push(Self.packet(2), timestamp: 1920, samples: 960, tick: 0)
        #expect(buffer.push(Self.packet(2), timestamp: 1920, samples: 960, tick: 0) == .duplicate)
        #expect(buffer.next(tick: 0) == .decode(Self.packet(0)))
        #expect(buffer.next(tick: 1) == .conceal(960))
        #expect(buffer.push(Self.packet(1), timestamp: 960, samples: 960, tick: 1) == .late)
        #expect(buffer.next(tick: 2) == .decode(Self.packet(2)))
    }

    @Test("after the last packet a few frames are concealed, then the speaker is idle")
    func endOfSpurt() {
        var buffer = JitterBuffer()
        buffer.push(Self.packet(0), timestamp: 0, samples: 960, tick: 0)
        buffer.push(Self.packet(1), timestamp: 960, samples: 960, tick: 0)
        #expect(buffer.next(tick: 0) == .decode(Self.packet(0)))
        #expect(buffer.next(tick: 1) == .decode(Self.packet(1)))
        for tick in 2..<5 { #expect(buffer.next(tick: tick) == .conceal(960)) }
        #expect(buffer.next(tick: 5) == .idle)
        #expect(!buffer.isPlaying)
    }

    @Test("the buffer holds at most its capacity; a clock jump restarts playout")
    func boundedAndResyncs() {
        var buffer = JitterBuffer(configuration: .init(capacity: 5))
        for index in 0..<8 {
            let result = buffer.push(Self.packet(index), timestamp: UInt32(index * 960), samples: 960, tick: 0)
            #expect(result == (index < 5 ? .accepted : .overflow))
        }
        #expect(buffer.count == 5)
        #expect(buffer.next(tick: 2) == .decode(Self.packet(3)))
        buffer.push(Self.packet(99), timestamp: 10_000_000, samples: 960, tick: 2)
        #expect(!buffer.isPlaying)
        #expect(buffer.count == 1)
    }

    @Test("timestamps wrap around 2^32")
    func wraps() {
        var buffer = JitterBuffer()
        buffer.push(Self.packet(1), timestamp: 64, samples: 960, tick: 0)
        buffer.push(Self.packet(0), timestamp: UInt32.max - 895, samples: 960, tick: 0)
        #expect(buffer.next(tick: 0) == .decode(Self.packet(0)))
        #expect(buffer.next(tick: 1) == .decode(Self.packet(1)))
    }
}
