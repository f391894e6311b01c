import AirwaveMedia
import Testing

@Suite("PCM → Opus encoding and decoding")
struct EncoderTests {
    /// Byte chunk sizes cycled through when feeding PCM: odd sizes split samples (and stereo
    /// sample pairs) across calls, large ones complete several frames at once.
    static let chunkSizes = [1, 7, 333, 2, 1001, 3, 1921, 5, 4000, 9, 0, 2, 7777]

    static func feedInChunks(_ bytes: [UInt8], to encoder: PCMOpusEncoder) -> [EncodedPacket] {
        var packets: [EncodedPacket] = []
        var offset = 0
        var index = 0
        while offset < bytes.count {
            let size = min(chunkSizes[index % chunkSizes.count], bytes.count - offset)
            packets += encoder.append(bytes[offset..<offset + size])
            #expect(encoder.bufferedByteCount <= PCMOpusEncoder.maximumBufferedByteCount)
            #expect(encoder.bufferedByteCount < PCMOpusEncoder.samplesPerFrame * 2 * encoder.channels)
            offset += size
            index += 1
        }
        return packets
    }

    static func decodeAll(_ packets: [EncodedPacket], channels: Int) throws -> [Int16] {
        let decoder = try OpusDecoder(channels: channels)
        var samples: [Int16] = []
        for packet in packets {
            let decoded = try decoder.decode(packet.bytes)
            #expect(decoded.count == 960 * channels)
            samples += decoded
        }
        return samples
    }

    static func expectClock(_ packets: [EncodedPacket], firstSequence: UInt32 = 0) {
        for (index, packet) in packets.enumerated() {
            #expect(packet.sequence == firstSequence + UInt32(index))
            #expect(packet.timestamp == (firstSequence + UInt32(index)) * 960)
        }
    }

    @Test("mono 440 Hz tone in odd chunks → 50 packets → decoded 440 Hz")
    func monoTone() throws {
        let pcm = try MediaFixtures.bytes("tone-440hz-mono.pcm")
        #expect(pcm.count == 96_000, "1 s of mono s16 at 48 kHz")
        let encoder = try PCMOpusEncoder(channels: 1)
        #expect(encoder.bitrate == 32_000)
        let packets = Self.feedInChunks(pcm, to: encoder)
        #expect(packets.count == 50)
        #expect(encoder.bufferedByteCount == 0)
        #expect(encoder.flush().isEmpty, "nothing left over")
        Self.expectClock(packets)
        #expect(encoder.nextSequence == 50)
        #expect(encoder.nextTimestamp == 48_000)
        for packet in packets {
            let info = try OpusPacket.validate(packet.bytes)
            #expect(info.samplesPerChannel == 960)
            #expect(info.channels == 1)
            #expect(packet.bytes.count <= 32_000 / 8 / 50 * 2, "about 80 bytes at 32 kb/s")
        }

        // Feeding the same PCM in one piece gives the same packets: chunking is invisible.
        let whole = try PCMOpusEncoder(channels: 1).append(pcm)
        #expect(whole == packets)

        let decoded = try Self.decodeAll(packets, channels: 1)
        let signal = Signal.channel(decoded, 0, of: 1)
        let window = signal[4800..<28_800]  // skip the codec's start-up, 0.5 s
        let dominant = Signal.dominantFrequency(window)
        #expect(abs(dominant - 440) <= 440 * 0.02, "dominant frequency \(dominant) Hz")
        let at440 = Signal.power(window, at: 440)
        for other in [220.0, 330, 550, 660, 880, 1000, 1320, 2000] {
            #expect(at440 > 100 * Signal.power(window, at: other), "440 Hz vs \(other) Hz")
        }
        // The level survives the codec: a −6 dBFS sine is −9 dBov RMS.
        let level = AudioLevel(samples: Array(decoded[4800...]))
        #expect(abs(level.rmsDBov - -9.03) < 1.5, "decoded RMS \(level.rmsDBov) dBov")
    }

    @Test("stereo 660 Hz tone (left −6, right −12 dBFS) in odd chunks → decoded in both channels")
    func stereoTone() throws {
        let pcm = try MediaFixtures.bytes("tone-660hz-stereo.pcm")
        #expect(pcm.count == 96_000, "0.5 s of stereo s16 at 48 kHz")
        let encoder = try PCMOpusEncoder(channels: 2)
        #expect(encoder.bitrate == 64_000)
        let packets = Self.feedInChunks(pcm, to: encoder)
        #expect(packets.count == 25)
        Self.expectClock(packets)
        for packet in packets {
            #expect(try OpusPacket.validate(packet.bytes).channels == 2)
        }
        let decoded = try Self.decodeAll(packets, channels: 2)
        #expect(decoded.count == 25 * 960 * 2)
        let left = Signal.channel(decoded, 0, of: 2)
        let right = Signal.channel(decoded, 1, of: 2)
        for (name, channel) in [("left", left), ("right", right)] {
            let window = channel[4800..<19_200]
            let dominant = Signal.dominantFrequency(window)
            #expect(abs(dominant - 660) <= 660 * 0.02, "\(name): dominant frequency \(dominant) Hz")
            #expect(Signal.power(window, at: 660) > 100 * Signal.power(window, at: 440), "\(name)")
        }
        // Channel order is kept: left is 6 dB louder than right.
        let leftLevel = AudioLevel(samples: left[4800...].map { Int16($0) })
        let rightLevel = AudioLevel(samples: right[4800...].map { Int16($0) })
        let difference = leftLevel.rmsDBov - rightLevel.rmsDBov
        #expect(abs(difference - 6.02) < 1.5, "left − right = \(difference) dB")
    }

    @Test("flush pads the partial frame; switching channels keeps the clock")
    func flushAndChannelSwitch() throws {
        let tone = try MediaFixtures.bytes("tone-440hz-mono.pcm")
        let encoder = try PCMOpusEncoder(channels: 1)
        // 1.5 frames plus an odd byte.
        var packets = encoder.append(tone[0..<(960 * 2 * 3 / 2 + 1)])
        #expect(packets.count == 1)
        #expect(encoder.bufferedByteCount == 960 + 1)
        // Switching flushes the half frame (the dangling byte is dropped).
        packets += try encoder.switchChannels(to: 2)
        #expect(packets.count == 2)
        #expect(encoder.channels == 2)
        #expect(encoder.bitrate == 64_000)
        #expect(encoder.bufferedByteCount == 0)
        #expect(try encoder.switchChannels(to: 2).isEmpty, "same layout: nothing to do")
        // Stereo from here on.
        let stereo = try MediaFixtures.bytes("tone-660hz-stereo.pcm")
        packets += encoder.append(stereo[0..<(960 * 4 + 10)])
        #expect(packets.count == 3)
        #expect(try OpusPacket.validate(packets[2].bytes).channels == 2)
        packets += encoder.flush()
        #expect(packets.count == 4)
        #expect(encoder.flush().isEmpty)
        Self.expectClock(packets)
        #expect(throws: PCMEncoderError.unsupportedChannelCount(3)) { try encoder.switchChannels(to: 3) }
        #expect(encoder.channels == 2)

        // A fresh encoder continuing the old one's clock (the server's per-speaker pattern).
        let next = try PCMOpusEncoder(channels: 1, continuing: encoder)
        let more = next.append(tone[0..<1920])
        #expect(more.map(\.sequence) == [4])
        #expect(more.map(\.timestamp) == [4 * 960])
        #expect(try PCMOpusEncoder(channels: 1, continuing: nil).nextSequence == 0)
    }

    @Test("bad parameters are refused; reset drops buffered input but keeps the clock")
    func parametersAndReset() throws {
        #expect(throws: PCMEncoderError.unsupportedChannelCount(0)) { try PCMOpusEncoder(channels: 0) }
        #expect(throws: PCMEncoderError.unsupportedBitrate(100)) { try PCMOpusEncoder(channels: 1, bitrate: 100) }
        let custom = try PCMOpusEncoder(channels: 1, application: .audio, bitrate: 24_000, complexity: 10)
        #expect(custom.bitrate == 24_000)
        _ = try custom.switchChannels(to: 2)
        #expect(custom.bitrate == 24_000, "an explicit bitrate survives a channel switch")

        let encoder = try PCMOpusEncoder()
        #expect(encoder.append([UInt8](repeating: 0, count: 960 * 2 + 99)).count == 1)
        encoder.reset()
        #expect(encoder.bufferedByteCount == 0)
        let after = encoder.append([UInt8](repeating: 0, count: 960 * 2))
        #expect(after.map(\.sequence) == [1])
        #expect(after.map(\.timestamp) == [960])
        #expect(encoder.droppedFrameCount == 0)
    }

    @Test("decoder: speech decodes to its duration, PLC fills a lost packet, garbage is refused")
    func decoder() throws {
        let packets = try MediaFixtures.readPackets("speech.opus-packets")
        let decoder = try OpusDecoder(channels: 1)
        var speech: [Int16] = []
        for packet in packets.prefix(60) {
            speech += try decoder.decode(packet)
        }
        #expect(speech.count == 60 * 960)
        let level = AudioLevel(samples: speech)
        #expect(level.rmsDBov > -40, "speech, not silence: \(level.rmsDBov) dBov")

        // Loss concealment continues the signal for the requested duration.
        let concealed = try decoder.concealLoss(samplesPerChannel: 960)
        #expect(concealed.count == 960)
        var buffer = [Int16](repeating: 0, count: 1920)
        let written = try buffer.withUnsafeMutableBufferPointer { try decoder.concealLoss(samplesPerChannel: 480, into: $0) }
        #expect(written == 480)
        #expect(throws: OpusError.badArgument) { try decoder.concealLoss(samplesPerChannel: 100) }
        #expect(try decoder.decode(packets[60]).count == 960, "decoding resumes after a loss")

        // Stereo output from a mono stream: libopus upmixes.
        let stereo = try OpusDecoder(channels: 2)
        #expect(try stereo.decode(packets[0]).count == 1920)
        stereo.reset()

        #expect(throws: OpusError.invalidPacket) { try decoder.decode([]) }
        #expect(throws: OpusError.badArgument) { try OpusDecoder(channels: 3) }
        var small = [Int16](repeating: 0, count: 100)
        #expect(throws: OpusError.bufferTooSmall) {
            try packets[0].withUnsafeBytes { raw in
                try small.withUnsafeMutableBufferPointer { try decoder.decode(raw, into: $0) }
            }
        }
        #expect(OpusError.invalidPacket.description.contains("-4"))
        #expect(libopusVersion.hasPrefix("libopus"))
    }
}
