import AirwaveCore
import AirwaveMedia
import AirwaveProtocol
import AirwaveTestSupport
import Foundation
import Testing

/// The event mixer fed with fixture tones (`Fixtures/media/tone-*.pcm`, encoded to 20 ms Opus
/// packets as a speaker's client would), analysed with a Goertzel filter.
@Suite("Event mix: decode, jitter buffer, PLC, mix-minus, levels")
struct MixerTests {
    /// 2 s of the 440 Hz fixture (1 s, looped: a whole number of cycles) as Opus packets.
    static func tone440(gain: Double = 1) throws -> [EncodedPacket] {
        let pcm = try MediaFixtures.readPCM("tone-440hz-mono.pcm")
        return try encode(pcm + pcm, gain: gain)
    }

    /// 2 s of the 660 Hz fixture's left channel (0.5 s, looped 4 times) as Opus packets.
    static func tone660(gain: Double = 1) throws -> [EncodedPacket] {
        let stereo = try MediaFixtures.readPCM("tone-660hz-stereo.pcm")
        let left = stride(from: 0, to: stereo.count, by: 2).map { stereo[$0] }
        return try encode(left + left + left + left, gain: gain)
    }

    static func encode(_ samples: [Int16], gain: Double) throws -> [EncodedPacket] {
        let encoder = try PCMOpusEncoder(channels: 1)
        let scaled = samples.map { Int16(Double($0) * gain) }
        return scaled.withUnsafeBytes { encoder.append($0) }
    }

    /// Drives `mixer` in real time: at tick `t` each source's packet `t` arrives (unless
    /// `arrival` says otherwise), then the mixer ticks. Returns every output's packets.
    static func run(
        _ mixer: AudioMixer, sources: [UInt32: [EncodedPacket]], extraTicks: Int = 10,
        arrival: (UInt32, Int) -> Int? = { _, index in index }
    ) -> (packets: [AudioMixer.Output: [AudioMixer.Packet]], levels: [[UInt32: AudioLevel]]) {
        let length = sources.values.map(\.count).max() ?? 0
        var schedule: [Int: [(UInt32, EncodedPacket)]] = [:]
        for (source, packets) in sources {
            for (index, packet) in packets.enumerated() {
                if let tick = arrival(source, index) { schedule[tick, default: []].append((source, packet)) }
            }
        }
        var outputs: [AudioMixer.Output: [AudioMixer.Packet]] = [:]
        var levels: [[UInt32: AudioLevel]] = []
        for tick in 0..<(length + extraTicks) {
            for (source, packet) in schedule[tick, default: []].sorted(by: { $0.0 < $1.0 }) {
                mixer.push(source: source, packet: packet.bytes, timestamp: packet.timestamp)
            }
            let result = mixer.tick()
            for packet in result.packets { outputs[packet.output, default: []].append(packet) }
            levels.append(Dictionary(uniqueKeysWithValues: result.levels.map { ($0.source, $0.level) }))
        }
        return (outputs, levels)
    }

    static func decode(_ packets: [AudioMixer.Packet]) throws -> [Double] {
        let decoder = try OpusDecoder(channels: 1)
        var samples: [Double] = []
        for packet in packets { samples += try decoder.decode(packet.bytes).map(Double.init) }
        return samples
    }

    /// Goertzel power at the two tones and at two frequencies where neither is.
    static func powers(_ samples: ArraySlice<Double>) -> (a440: Double, a660: Double, off: Double) {
        (Signal.power(samples, at: 440), Signal.power(samples, at: 660),
         max(Signal.power(samples, at: 550), Signal.power(samples, at: 1000)))
    }

    @Test("two speakers through the mixer: the full mix has both tones")
    func fullMixHasBothTones() throws {
        let mixer = AudioMixer()
        mixer.setOutputs([.full])
        let (packets, _) = Self.run(mixer, sources: [1: try Self.tone440(), 2: try Self.tone660()])
        let full = try #require(packets[.full])
        #expect(full.count == 110)
        #expect(full.map(\.sequence) == (0..<110).map(UInt32.init))
        #expect(full.map(\.timestamp) == (0..<110).map { UInt32($0 * 960) })
        let samples = try Self.decode(full)
        let steady = samples[(10 * 960)..<(90 * 960)]
        let p = Self.powers(steady)
        #expect(p.a440 > 100 * p.off)
        #expect(p.a660 > 100 * p.off)
        // Both at −6 dBFS: equal shares of the mix, within 3 dB.
        #expect(p.a440 / p.a660 > 0.5 && p.a440 / p.a660 < 2)
    }

    @Test("mix-minus for a speaker lacks its own tone and keeps the other")
    func mixMinusLacksOwnTone() throws {
        let mixer = AudioMixer()
        mixer.setOutputs([.full, .minus(1), .minus(2)])
        let (packets, _) = Self.run(mixer, sources: [1: try Self.tone440(), 2: try Self.tone660()])
        let minus1 = Self.powers(try Self.decode(try #require(packets[.minus(1)]))[(10 * 960)..<(90 * 960)])
        #expect(minus1.a660 > 100 * minus1.off)
        #expect(minus1.a440 < minus1.a660 / 1000)
        let minus2 = Self.powers(try Self.decode(try #require(packets[.minus(2)]))[(10 * 960)..<(90 * 960)])
        #expect(minus2.a440 > 100 * minus2.off)
        #expect(minus2.a660 < minus2.a440 / 1000)
    }

    @Test("lost packets are concealed: no stretch of silence longer than a frame")
    func lossIsConcealed() throws {
        let mixer = AudioMixer()
        mixer.setOutputs([.full])
        // Every 7th packet lost, plus a burst of two.
        let lost: Set<Int> = Set(stride(from: 5, to: 100, by: 7)).union([40, 41])
        let (packets, _) = Self.run(mixer, sources: [1: try Self.tone440()]) { _, index in lost.contains(index) ? nil : index }
        #expect(mixer.concealedFrames >= lost.count)
        let samples = try Self.decode(try #require(packets[.full]))
        let start = try #require(samples.firstIndex { abs($0) > 1000 })
        let end = try #require(samples.lastIndex { abs($0) > 1000 })
        #expect(end - start > 90 * 960)
        var run = 0
        var longest = 0
        for sample in samples[start...end] {
            run = abs(sample) < 200 ? run + 1 : 0
            longest = max(longest, run)
        }
        #expect(longest < 960)
        // The tone stays the tone through the concealed frames.
        #expect(Signal.dominantFrequency(samples[start..<end]) == 440)
    }

    @Test("reordered packets within the jitter delay need no concealment")
    func reorderingIsAbsorbed() throws {
        let mixer = AudioMixer()
        mixer.setOutputs([.full])
        // Pairs swapped: packet 2k+1 arrives at tick 2k, packet 2k at tick 2k+1.
        _ = Self.run(mixer, sources: [1: try Self.tone440()]) { _, index in index % 2 == 0 ? index + 1 : index - 1 }
        #expect(mixer.latePackets == 0)
        // Only the end of the talk spurt is concealed (the fade after the last packet).
        #expect(mixer.concealedFrames <= mixer.configuration.jitter.maximumConcealedFrames)
    }

    @Test("a removed speaker is gone from the very next packet")
    func removedSourceIsGoneAtOnce() throws {
        let mixer = AudioMixer()
        mixer.setOutputs([.full])
        let a = try Self.tone440()
        let b = try Self.tone660()
        var before: [AudioMixer.Packet] = []
        for tick in 0..<50 {
            mixer.push(source: 1, packet: a[tick].bytes, timestamp: a[tick].timestamp)
            mixer.push(source: 2, packet: b[tick].bytes, timestamp: b[tick].timestamp)
            before += mixer.tick().packets
        }
        // Buffered packets of source 1 (pushed ahead) must not play after the removal.
        for tick in 50..<53 { mixer.push(source: 1, packet: a[tick].bytes, timestamp: a[tick].timestamp) }
        mixer.removeSource(1)
        var after: [AudioMixer.Packet] = []
        for tick in 50..<90 {
            mixer.push(source: 2, packet: b[tick].bytes, timestamp: b[tick].timestamp)
            after += mixer.tick().packets
        }
        #expect(mixer.sourceIDs == [2])
        let beforePower = Self.powers(try Self.decode(before)[(10 * 960)...])
        #expect(beforePower.a440 > 100 * beforePower.off)
        // A fresh decoder on the packets after the removal: the encoders were reset, so these
        // packets hold no trace of source 1.
        let afterPower = Self.powers(try Self.decode(after)[...])
        #expect(afterPower.a660 > 100 * afterPower.off)
        #expect(afterPower.a440 < afterPower.a660 / 1000)
    }

    @Test("nothing is decoded or encoded without outputs")
    func idleWithoutOutputs() throws {
        let mixer = AudioMixer()
        let a = try Self.tone440()
        mixer.push(source: 1, packet: a[0].bytes, timestamp: a[0].timestamp)
        #expect(mixer.sourceIDs.isEmpty)
        #expect(mixer.tick().packets.isEmpty)
        mixer.setOutputs([.full])
        mixer.push(source: 1, packet: a[1].bytes, timestamp: a[1].timestamp)
        mixer.setOutputs([])
        #expect(mixer.sourceIDs.isEmpty)
        #expect(!mixer.isActive)
    }

    @Test("two loud speakers are soft-clipped, never wrapped")
    func softClipping() throws {
        #expect(SoftClipper.clip(1000) == 1000)
        #expect(SoftClipper.clip(-24_000) == -24_000)
        let loud = SoftClipper.clip(60_000)
        #expect(loud > 30_000 && loud <= Int16.max)
        #expect(SoftClipper.clip(-60_000) == -loud)
        #expect(SoftClipper.clip(40_000) < loud)
        #expect(SoftClipper.clip(Int32.max) == Int16.max)
        // Two −6 dBFS tones at the same frequency and phase sum to about full scale.
        let mixer = AudioMixer()
        mixer.setOutputs([.full])
        let a = try Self.tone440(gain: 1.9)
        let (packets, _) = Self.run(mixer, sources: [1: a, 2: a])
        let samples = try Self.decode(try #require(packets[.full]))
        let p = Self.powers(samples[(10 * 960)..<(90 * 960)])
        #expect(Signal.dominantFrequency(samples[(10 * 960)..<(90 * 960)]) == 440)
        #expect(p.a440 > 100 * p.off)
    }

    @Test("active-speaker order follows the louder input")
    func activeSpeakerOrder() throws {
        for (loud, quiet) in [(UInt32(1), UInt32(2)), (2, 1)] {
            let mixer = AudioMixer()
            mixer.setOutputs([.full])
            let sources: [UInt32: [EncodedPacket]] = [
                loud: loud == 1 ? try Self.tone440() : try Self.tone660(),
                quiet: quiet == 1 ? try Self.tone440(gain: 0.1) : try Self.tone660(gain: 0.1),
            ]
            let (_, levels) = Self.run(mixer, sources: sources, extraTicks: 40)
            var detector = ActiveSpeakerDetector()
            var lists: [[ActiveSpeakerDetector.Entry]] = []
            for (tick, tickLevels) in levels.enumerated() {
                let now = Timestamp(milliseconds: Int64(tick * 20))
                for (source, level) in tickLevels.sorted(by: { $0.key < $1.key }) {
                    detector.update(source: source, rfc6464: level.rfc6464Level, now: now)
                }
                if let list = detector.poll(now: now) { lists.append(list) }
            }
            // At most 4 lists a second over 2.8 s, and the steady list is loud first.
            #expect(lists.count <= 12)
            let steady = try #require(lists.dropFirst().first)
            #expect(steady.map(\.source) == [loud, quiet])
            #expect(steady[0].level - steady[1].level >= 15)  // 0.1 gain = −20 dB
            // After the speakers stop, the list empties.
            #expect(lists.last == [])
        }
    }

    @Test("the full mix recorded as Ogg Opus: one packet per tick, granules count decoded samples, end of stream")
    func recordingOfTheMix() throws {
        let folder = try TemporaryDirectory(prefix: "airwave-mix")
        defer { folder.remove() }
        let path = folder.path("mix.opus")
        let mixer = AudioMixer()
        mixer.setOutputs([.full])
        let recorder = try MixRecorder(path: path)
        let (packets, _) = Self.run(mixer, sources: [1: try Self.tone440(), 2: try Self.tone660()])
        for packet in try #require(packets[.full]) { try recorder.write(packet.bytes) }
        try recorder.close()
        let (head, _, read) = try OggOpusReader.read(path: path)
        #expect(head.preSkip == MixRecorder.preSkip)
        #expect(read.count == 110)
        #expect(read.last?.isEndOfStream == true)
        // Decoded samples up to the end, pre-skip included: playback is 110 × 960 − 312 samples.
        #expect(read.last?.granulePosition == Int64(110 * 960))
        // Pages at least every 200 ms: a crash loses no more than that.
        let granules = read.compactMap(\.granulePosition)
        #expect(granules.count >= 11)
        #expect(zip(granules, granules.dropFirst()).allSatisfy { $1 - $0 <= Int64(MixRecorder.pageDuration + 960) })
        #expect(granules.allSatisfy { $0 % 960 == 0 })
    }

    @Test("a recording stopped before any packet still ends with an end-of-stream page")
    func emptyRecording() throws {
        let folder = try TemporaryDirectory(prefix: "airwave-mix")
        defer { folder.remove() }
        let path = folder.path("mix.opus")
        let recorder = try MixRecorder(path: path)
        try recorder.close()
        let (_, _, read) = try OggOpusReader.read(path: path)
        #expect(read.count == 1)
        #expect(read.last?.isEndOfStream == true)
        #expect(read.last?.granulePosition == 960)
    }
}
