import AirwaveMedia
import Testing

@Suite("VP8 screen fixture and record files")
struct VideoFrameTests {
    @Test("screen-vp8.frames: 2 s at 15 fps, a keyframe every 10th frame, 90 kHz timestamps")
    func screenFrames() throws {
        let frames = try MediaFixtures.readVideoFrames("screen-vp8.frames")
        #expect(frames.count == 30)
        #expect(frames.first?.isKeyframe == true)
        for (index, frame) in frames.enumerated() {
            #expect(frame.isKeyframe == (index % 10 == 0), "frame \(index)")
            #expect(VP8.isKeyframe(frame.payload) == frame.isKeyframe, "frame \(index): flag and payload header agree")
            #expect(frame.timestamp == UInt32(index) * 6000, "frame \(index): 90 000 / 15")
            #expect(!frame.payload.isEmpty)
        }
        // A keyframe carries the 320x180 dimensions (RFC 6386 9.1: 14-bit width and height).
        let key = frames[0].payload
        #expect(Int(key[6]) | Int(key[7] & 0x3F) << 8 == 320)
        #expect(Int(key[8]) | Int(key[9] & 0x3F) << 8 == 180)
    }

    @Test("record files round-trip and truncation is reported")
    func recordFiles() throws {
        let frames = try MediaFixtures.readVideoFrames("screen-vp8.frames")
        let bytes = try MediaFixtures.bytes("screen-vp8.frames")
        #expect(MediaRecordFile.writeVideoFrames(frames) == bytes)
        let packets = try MediaFixtures.readPackets("speech.opus-packets")
        #expect(MediaRecordFile.writePackets(packets) == (try MediaFixtures.bytes("speech.opus-packets")))
        #expect(try MediaRecordFile.readPackets([]) == [])
        #expect(try MediaRecordFile.readPackets([0, 0, 0, 0]) == [[]])

        #expect(throws: MediaRecordFileError.self) { try MediaRecordFile.readPackets([0, 0, 0]) }
        #expect(throws: MediaRecordFileError.self) { try MediaRecordFile.readPackets([0, 0, 0, 5, 1, 2]) }
        #expect(throws: MediaRecordFileError.self) { try MediaRecordFile.readPackets([0xFF, 0xFF, 0xFF, 0xFF]) }
        #expect(throws: MediaRecordFileError.self) { try MediaRecordFile.readVideoFrames(Array(bytes.dropLast())) }
        #expect(throws: MediaRecordFileError.self) { try MediaRecordFile.readVideoFrames([0, 0, 0, 0, 1, 0]) }
        #expect(!VP8.isKeyframe([]))
        #expect(!VP8.isKeyframe([0x00, 0x00, 0x00]))
    }
}
