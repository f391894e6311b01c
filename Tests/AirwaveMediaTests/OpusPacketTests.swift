import AirwaveMedia
import AirwaveTestSupport
import Testing

@Suite("Opus packet validation")
struct OpusPacketTests {
    @Test("every speech packet validates and the durations add up to the source")
    func speechPacketsValidate() throws {
        let packets = try MediaFixtures.readPackets("speech.opus-packets")
        let meta = try MediaFixtures.speechMetadata()
        #expect(packets.count == meta.packets)
        #expect(packets.count > 100)
        var totalMicroseconds = 0
        for (index, packet) in packets.enumerated() {
            let info = try OpusPacket.validate(packet)
            #expect(info.channels == 1, "packet \(index)")
            #expect(info.frameCount == 1, "packet \(index)")
            #expect(info.samplesPerChannel == 960, "packet \(index): opusenc --framesize 20")
            #expect(info.durationMicroseconds == 20_000, "packet \(index)")
            totalMicroseconds += info.durationMicroseconds
        }
        // The stream holds pre-skip + the source's samples (the last granule position), and
        // the packets cover it to within one 20 ms packet.
        #expect(meta.sourceRate == 48_000)
        #expect(meta.finalGranule == meta.preSkip + meta.sourceSamples)
        let expectedMicroseconds = (meta.preSkip + meta.sourceSamples) * 125 / 6
        #expect(abs(totalMicroseconds - expectedMicroseconds) <= 20_000,
                "packets: \(totalMicroseconds) µs, source + pre-skip: \(expectedMicroseconds) µs")
        #expect((2_500_000...3_500_000).contains(totalMicroseconds), "about 3 s of speech")
    }

    @Test("every malformed packet is rejected, by the validator and by the decoder")
    func malformedPacketsAreRejected() throws {
        let packets = try MediaFixtures.readPackets("malformed-opus.packets")
        #expect(packets.count >= 10)
        #expect(packets.first == [], "the first case is the empty packet")
        let decoder = try OpusDecoder(channels: 1)
        for (index, packet) in packets.enumerated() {
            #expect(OpusPacket.info(packet) == nil, "malformed packet \(index) (\(packet.count) bytes) accepted")
            #expect(throws: OpusPacketRejection.self) { try OpusPacket.validate(packet) }
            do {
                _ = try OpusPacket.validate(packet)
            } catch {
                if packet.isEmpty {
                    #expect(error == .empty)
                } else {
                    #expect(error == .malformed(opusError: OpusError.invalidPacket.code), "packet \(index)")
                    #expect(error.label == "malformed")
                }
            }
            #expect(throws: OpusError.self, "libopus decodes malformed packet \(index)") { try decoder.decode(packet) }
        }
    }

    @Test("edge cases: TOC-only, 120 ms, the size limit")
    func edgeCases() throws {
        // A lone TOC byte is a valid (empty, DTX) 20 ms SILK frame.
        let tocOnly = try OpusPacket.validate([0x08])
        #expect(tocOnly == OpusPacketInfo(frameCount: 1, samplesPerChannel: 960, channels: 1))
        // Stereo bit.
        #expect(try OpusPacket.validate([0x08 | 0x04, 0x00]).channels == 2)
        // Code 3 with 6 × 20 ms = 120 ms, the longest allowed packet.
        let longest = try OpusPacket.validate([0x0B, 6] + [UInt8](repeating: 0, count: 12))
        #expect(longest.frameCount == 6)
        #expect(longest.samplesPerChannel == 5760)
        #expect(longest.durationMicroseconds == 120_000)
        // 48 frames of 2.5 ms (CELT, config 16): 120 ms too.
        let many = try OpusPacket.validate([0x83, 48] + [UInt8](repeating: 0, count: 48 * 2))
        #expect(many.frameCount == 48)
        #expect(many.durationMicroseconds == 120_000)
        // Padding makes a packet libopus accepts arbitrarily large; Airwave caps it at 3 825.
        let atLimit = paddedPacket(totalLength: OpusPacket.maximumByteCount)
        #expect(atLimit.count == 3825)
        #expect(OpusPacket.info(atLimit)?.frameCount == 1)
        let overLimit = paddedPacket(totalLength: OpusPacket.maximumByteCount + 1)
        #expect(throws: OpusPacketRejection.tooLarge(byteCount: 3826)) { try OpusPacket.validate(overLimit) }
        #expect(OpusPacketRejection.tooLarge(byteCount: 1).label == "too_large")
    }

    /// A code-3 packet (one 20 ms SILK frame of 3 bytes) padded to `totalLength` bytes.
    private func paddedPacket(totalLength: Int) -> [UInt8] {
        let frameLength = 3
        for continuations in 0..<32 {
            let padding = totalLength - 2 - (continuations + 1) - frameLength
            let last = padding - 254 * continuations
            if (0...254).contains(last) {
                return [0x0B, 0x40 | 1] + [UInt8](repeating: 255, count: continuations) + [UInt8(last)]
                    + [UInt8](repeating: 0x11, count: frameLength) + [UInt8](repeating: 0, count: padding)
            }
        }
        fatalError("no padding layout for \(totalLength)")
    }

    @Test("100 000 random buffers never crash the validator, and accepted ones are consistent")
    func fuzz() throws {
        var random = SplitMix64(seed: 0xA1B_3A7E)
        var buffer = [UInt8](repeating: 0, count: 2000 + 8)
        var accepted = 0
        var rejected = 0
        var decoded = 0
        let decoder = try OpusDecoder(channels: 2)
        var output = [Int16](repeating: 0, count: OpusDecoder.maximumSamplesPerChannel * 2)
        for round in 0..<100_000 {
            let length = Int.random(in: 0...2000, using: &random)
            buffer.withUnsafeMutableBytes { raw in
                var offset = 0
                while offset < length {
                    raw.storeBytes(of: random.next(), toByteOffset: offset, as: UInt64.self)
                    offset += 8
                }
            }
            // A third of the buffers get a code-3 TOC and a small frame count, to reach deeper
            // into the parser than uniformly random bytes do.
            if round % 3 == 0, length >= 2 {
                buffer[0] |= 0x03
                buffer[1] = (buffer[1] & 0xC0) | UInt8.random(in: 0...49, using: &random)
            }
            let result = buffer.withUnsafeBytes { raw in
                Result { () throws(OpusPacketRejection) -> OpusPacketInfo in
                    try OpusPacket.validate(UnsafeRawBufferPointer(rebasing: raw[0..<length]))
                }
            }
            switch result {
            case .success(let info):
                accepted += 1
                #expect((1...48).contains(info.frameCount))
                #expect(info.samplesPerChannel <= 5760 && info.samplesPerChannel % 120 == 0)
                #expect(info.samplesPerChannel % info.frameCount == 0)
                #expect(info.channels == (buffer[0] & 0x04 == 0 ? 1 : 2))
                #expect(length > 0 && length <= OpusPacket.maximumByteCount)
                if decoded < 3000 {
                    // A packet the validator accepts decodes to exactly its duration.
                    let samples = buffer.withUnsafeBytes { raw in
                        output.withUnsafeMutableBufferPointer { out in
                            try? decoder.decode(UnsafeRawBufferPointer(rebasing: raw[0..<length]), into: out)
                        }
                    }
                    #expect(samples == info.samplesPerChannel)
                    decoded += 1
                }
            case .failure(let rejection):
                rejected += 1
                if length == 0 { #expect(rejection == .empty) }
            }
        }
        #expect(accepted + rejected == 100_000)
        #expect(accepted > 1000, "the fuzzer should reach both outcomes")
        #expect(rejected > 1000)
    }
}
