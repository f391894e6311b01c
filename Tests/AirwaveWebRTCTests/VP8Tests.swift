import Testing

@testable import AirwaveWebRTC

@Suite struct VP8Tests {
    /// A frame whose tag says keyframe (P = 0) and has the start code.
    let keyframe: [UInt8] = [0x50, 0x2A, 0x01, 0x9D, 0x01, 0x2A, 0x80, 0x02, 0xE0, 0x01]
        + (0..<2490).map { UInt8(truncatingIfNeeded: $0) }
    let interframe: [UInt8] = [0x31, 0x05, 0x00] + [UInt8](repeating: 7, count: 300)

    @Test func framesAreSplitWithADescriptorAndReassemble() throws {
        var packetizer = VP8Packetizer(maximumPayloadSize: 1000, initialPictureID: 0x7FFF)
        let payloads = packetizer.packetize(frame: keyframe)
        #expect(payloads.count == 3)
        #expect(payloads.allSatisfy { $0.count <= 1000 })
        var reassembled: [UInt8] = []
        for (index, payload) in payloads.enumerated() {
            let descriptor = try #require(VP8PayloadDescriptor.parse(payload[...]))
            #expect(descriptor.startOfPartition == (index == 0))
            #expect(descriptor.partitionIndex == 0)
            #expect(descriptor.pictureID == 0x7FFF)
            #expect(descriptor.length == 4)
            reassembled += payload[descriptor.length...]
        }
        #expect(reassembled == keyframe)
        #expect(VP8Frame.payloadStartsKeyframe(payloads[0]))
        #expect(!VP8Frame.payloadStartsKeyframe(payloads[1]))
        // The picture ID wraps at 15 bits.
        let next = packetizer.packetize(frame: interframe)
        #expect(VP8PayloadDescriptor.parse(next[0][...])?.pictureID == 0)
        #expect(!VP8Frame.payloadStartsKeyframe(next[0]))
        #expect(packetizer.packetize(frame: []).isEmpty)
    }

    @Test func keyframesAreRecognizedFromTheFrameTag() {
        #expect(VP8Frame.isKeyframe(keyframe))
        #expect(!VP8Frame.isKeyframe(interframe))
        #expect(!VP8Frame.isKeyframe(Array(keyframe.prefix(9))))
        var noStartCode = keyframe
        noStartCode[4] = 0
        #expect(!VP8Frame.isKeyframe(noStartCode))
    }

    @Test(arguments: [
        ([UInt8](), false),
        ([0x90], false),  // X set, no extension byte
        ([0x90, 0x80], false),  // I set, no picture ID
        ([0x90, 0x80, 0x80], false),  // M set, second picture ID byte missing
        ([0x90, 0x40], false),  // L set, no TL0PICIDX
        ([0x90, 0x20], false),  // T set, no TID byte
        ([0x10], true),
        ([0x90, 0xF0, 0x05, 0x01, 0x02], true),
    ])
    func descriptorsAreBoundsChecked(bytes: [UInt8], parses: Bool) {
        #expect((VP8PayloadDescriptor.parse(bytes[...]) != nil) == parses)
    }

    @Test func allDescriptorFieldsParse() throws {
        let descriptor = try #require(VP8PayloadDescriptor.parse([0xB2, 0xF0, 0x85, 0x01, 0x07, 0x40, 0xAA][...]))
        #expect(descriptor.nonReference)
        #expect(descriptor.startOfPartition)
        #expect(descriptor.partitionIndex == 2)
        #expect(descriptor.pictureID == 0x0501)
        #expect(descriptor.tl0PictureIndex == 7)
        #expect(descriptor.temporalByte == 0x40)
        #expect(descriptor.length == 6)
    }
}
