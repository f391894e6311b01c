import AirwaveCore
import AirwaveProtocol
import NIOCore
import Testing

private func c(_ n: UInt64) -> ConnectionID { ConnectionID(n) }

/// A screen frame with `payloadSize` bytes (its `size` is 16 more).
private func frame(_ sequence: UInt32, _ flags: MediaFrameHeader.Flags = [], payloadSize: Int = 84) -> MediaFrame {
    MediaFrame(header: MediaFrameHeader(kind: .screen, flags: flags, sourceID: LiveEvent.hostSourceID, sequence: sequence,
                                        timestamp: sequence * 6000),
               payload: ByteBuffer(bytes: [UInt8](repeating: UInt8(truncatingIfNeeded: sequence), count: payloadSize)))
}

private func config(_ sequence: UInt32) -> MediaFrame { frame(sequence, .config, payloadSize: 32) }
private func key(_ sequence: UInt32, payloadSize: Int = 484) -> MediaFrame { frame(sequence, .keyframe, payloadSize: payloadSize) }
private func delta(_ sequence: UInt32, payloadSize: Int = 84) -> MediaFrame { frame(sequence, payloadSize: payloadSize) }

/// The screen track of a live event (PROTOCOL.md 2.4).
@Suite("ScreenPipeline")
struct ScreenPipelineTests {
    @Test func startsEmpty() {
        var pipeline = ScreenPipeline()
        #expect(pipeline.cacheLimit == 4 * 1024 * 1024)
        #expect(pipeline.config == nil)
        #expect(pipeline.gop.isEmpty)
        #expect(pipeline.gopBytes == 0)
        #expect(pipeline.awaitingKeyframe.isEmpty)
        let joined = pipeline.join(c(2))
        #expect(joined.frames.isEmpty)
        #expect(joined.needsKeyframe)
        #expect(pipeline.awaitingKeyframe == [c(2)])
    }

    @Test func theLastConfigFrameIsCachedAndGoesToEveryone() {
        var pipeline = ScreenPipeline()
        pipeline.reset(viewers: [c(2), c(3)])
        #expect(pipeline.accept(config(1)) == .forward(skipping: []))
        #expect(pipeline.config == config(1))
        // A config frame is not part of the GOP and does not count as a keyframe.
        #expect(pipeline.gop.isEmpty)
        #expect(pipeline.gopBytes == 0)
        #expect(pipeline.awaitingKeyframe == [c(2), c(3)])
        #expect(pipeline.accept(config(2)) == .forward(skipping: []))
        #expect(pipeline.config == config(2))
        // Mid-GOP, a new config replaces the old one and leaves the GOP alone.
        _ = pipeline.accept(key(3))
        _ = pipeline.accept(delta(4))
        #expect(pipeline.accept(config(5)) == .forward(skipping: []))
        #expect(pipeline.config == config(5))
        #expect(pipeline.gop == [key(3), delta(4)])
    }

    @Test func deltasBeforeAnyKeyframeSkipTheViewersAndAreNotCached() {
        var pipeline = ScreenPipeline()
        pipeline.reset(viewers: [c(2), c(3)])
        #expect(pipeline.accept(delta(1)) == .forward(skipping: [c(2), c(3)]))
        #expect(pipeline.gop.isEmpty)
        #expect(pipeline.gopBytes == 0)
        // No GOP to overflow, so no keyframe request for every such delta.
        #expect(pipeline.accept(delta(2)) == .forward(skipping: [c(2), c(3)]))
    }

    @Test func aKeyframeStartsTheGOPAndEndsEveryWait() {
        var pipeline = ScreenPipeline()
        pipeline.reset(viewers: [c(2), c(3)])
        _ = pipeline.join(c(4))
        #expect(pipeline.awaitingKeyframe == [c(2), c(3), c(4)])
        #expect(pipeline.accept(key(1)) == .forward(skipping: []))
        #expect(pipeline.awaitingKeyframe.isEmpty)
        #expect(pipeline.gop == [key(1)])
        #expect(pipeline.gopBytes == key(1).size)
        #expect(pipeline.accept(delta(2)) == .forward(skipping: []))
        #expect(pipeline.accept(delta(3)) == .forward(skipping: []))
        #expect(pipeline.gop == [key(1), delta(2), delta(3)])
        #expect(pipeline.gopBytes == key(1).size + delta(2).size + delta(3).size)
        // The next keyframe replaces the whole GOP.
        #expect(pipeline.accept(key(4, payloadSize: 1000)) == .forward(skipping: []))
        #expect(pipeline.gop == [key(4, payloadSize: 1000)])
        #expect(pipeline.gopBytes == 1016)
    }

    @Test func aJoinerGetsTheConfigAndTheGOP() {
        var pipeline = ScreenPipeline()
        pipeline.reset(viewers: [c(2)])
        _ = pipeline.accept(config(1))
        _ = pipeline.accept(key(2))
        _ = pipeline.accept(delta(3))
        _ = pipeline.accept(delta(4))
        let joined = pipeline.join(c(5))
        #expect(joined.frames == [config(1), key(2), delta(3), delta(4)])
        #expect(!joined.needsKeyframe)
        #expect(pipeline.awaitingKeyframe.isEmpty)
        #expect(pipeline.accept(delta(5)) == .forward(skipping: []))

        // Without a config frame: the GOP alone.
        var bare = ScreenPipeline()
        bare.reset(viewers: [])
        _ = bare.accept(key(1))
        _ = bare.accept(delta(2))
        #expect(bare.join(c(7)) == ([key(1), delta(2)], false))
    }

    @Test func aJoinerWithoutGOPGetsTheConfigAndWaitsForAKeyframe() {
        var pipeline = ScreenPipeline()
        pipeline.reset(viewers: [])
        _ = pipeline.accept(config(1))
        let joined = pipeline.join(c(5))
        #expect(joined.frames == [config(1)])
        #expect(joined.needsKeyframe)
        #expect(pipeline.awaitingKeyframe == [c(5)])
        #expect(pipeline.accept(delta(2)) == .forward(skipping: [c(5)]))
        #expect(pipeline.accept(key(3)) == .forward(skipping: []))
        #expect(pipeline.awaitingKeyframe.isEmpty)
        #expect(pipeline.accept(delta(4)) == .forward(skipping: []))
    }

    @Test func aViewerWhoLeavesIsNoLongerSkipped() {
        var pipeline = ScreenPipeline()
        pipeline.reset(viewers: [c(2), c(3)])
        pipeline.leave(c(2))
        #expect(pipeline.awaitingKeyframe == [c(3)])
        #expect(pipeline.accept(delta(1)) == .forward(skipping: [c(3)]))
        pipeline.leave(c(9))  // never there: nothing happens
        #expect(pipeline.awaitingKeyframe == [c(3)])
    }

    @Test func overflowingTheCacheForwardsDropsTheGOPAndAsksForAKeyframe() {
        // Key 500 bytes, deltas 100 bytes each: the key and five deltas fill 1000 bytes exactly.
        var pipeline = ScreenPipeline(cacheLimit: 1000)
        #expect(pipeline.cacheLimit == 1000)
        pipeline.reset(viewers: [c(2)])
        _ = pipeline.accept(config(1))
        #expect(pipeline.accept(key(2)) == .forward(skipping: []))
        for sequence in UInt32(3)...7 {
            #expect(pipeline.accept(delta(sequence)) == .forward(skipping: []))
        }
        #expect(pipeline.gopBytes == 1000)  // exactly at the limit still fits
        #expect(pipeline.gop.count == 6)
        let joinedBefore = pipeline.join(c(3))
        #expect(joinedBefore.frames.count == 7)  // config, key and five deltas
        #expect(!joinedBefore.needsKeyframe)

        // One byte more: the delta is still forwarded, the GOP is gone, a keyframe is asked for.
        #expect(pipeline.accept(delta(8, payloadSize: 1)) == .forwardAndRequestKeyframe(skipping: []))
        #expect(pipeline.gop.isEmpty)
        #expect(pipeline.gopBytes == 0)
        #expect(pipeline.config == config(1))  // the config frame is still valid
        // Later deltas are forwarded to those who have the keyframe, without asking again.
        #expect(pipeline.accept(delta(9)) == .forward(skipping: []))
        #expect(pipeline.gop.isEmpty)

        // A joiner now gets the config and waits for the next keyframe.
        let joinedAfter = pipeline.join(c(4))
        #expect(joinedAfter.frames == [config(1)])
        #expect(joinedAfter.needsKeyframe)
        #expect(pipeline.accept(delta(10)) == .forward(skipping: [c(4)]))

        // The next keyframe starts a new GOP that is cached again.
        #expect(pipeline.accept(key(11)) == .forward(skipping: []))
        #expect(pipeline.awaitingKeyframe.isEmpty)
        #expect(pipeline.accept(delta(12)) == .forward(skipping: []))
        #expect(pipeline.join(c(5)) == ([config(1), key(11), delta(12)], false))
    }

    @Test func anOverflowSkipsViewersStillWaiting() {
        var pipeline = ScreenPipeline(cacheLimit: 700)
        pipeline.reset(viewers: [])
        _ = pipeline.accept(key(1))  // 500
        _ = pipeline.accept(delta(2))  // 600
        pipeline.reset(viewers: [c(2)])  // a new share: c2 waits
        _ = pipeline.accept(key(3))  // 500, c2 no longer waits
        _ = pipeline.accept(delta(4))  // 600
        _ = pipeline.accept(delta(5))  // 700
        #expect(pipeline.accept(delta(6)) == .forwardAndRequestKeyframe(skipping: []))
        _ = pipeline.join(c(8))
        #expect(pipeline.accept(delta(7)) == .forward(skipping: [c(8)]))
        _ = pipeline.accept(key(8))
        _ = pipeline.accept(delta(9))
        _ = pipeline.accept(delta(10))
        // A joiner who arrived before the overflow but after the GOP was dropped is still skipped.
        _ = pipeline.accept(delta(11, payloadSize: 1000))
        _ = pipeline.join(c(9))
        #expect(pipeline.awaitingKeyframe == [c(9)])
        #expect(pipeline.accept(delta(12)) == .forward(skipping: [c(9)]))
    }

    @Test func resetForgetsEverythingAndEveryViewerWaits() {
        var pipeline = ScreenPipeline()
        pipeline.reset(viewers: [c(2)])
        _ = pipeline.accept(config(1))
        _ = pipeline.accept(key(2))
        _ = pipeline.accept(delta(3))
        pipeline.reset(viewers: [c(2), c(3), c(4)])
        #expect(pipeline.config == nil)
        #expect(pipeline.gop.isEmpty)
        #expect(pipeline.gopBytes == 0)
        #expect(pipeline.awaitingKeyframe == [c(2), c(3), c(4)])
        #expect(pipeline.accept(delta(4)) == .forward(skipping: [c(2), c(3), c(4)]))
        #expect(pipeline.join(c(5)) == ([], true))
    }

    @Test func clearForgetsEverythingAndNobodyWaits() {
        var pipeline = ScreenPipeline()
        pipeline.reset(viewers: [c(2)])
        _ = pipeline.accept(config(1))
        _ = pipeline.accept(key(2))
        _ = pipeline.join(c(3))
        pipeline.reset(viewers: [c(2), c(3)])
        pipeline.clear()
        #expect(pipeline.config == nil)
        #expect(pipeline.gop.isEmpty)
        #expect(pipeline.gopBytes == 0)
        #expect(pipeline.awaitingKeyframe.isEmpty)
    }
}
