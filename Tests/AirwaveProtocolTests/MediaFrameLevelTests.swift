import AirwaveProtocol
import NIOCore
import Testing

/// The audio-level extension of the reserved header byte (docs/protocol.md): `0x80 | level` in,
/// always 0 out.
@Suite("MediaFrameHeader audio level")
struct MediaFrameLevelTests {
    static func frame(reserved: UInt8) -> ByteBuffer {
        ByteBuffer(bytes: [1, 1, 0, reserved, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 3, 0xC0, 0xF8])
    }

    @Test("0x80 | level carries a level; 0 carries none; bit 7 clear is no level")
    func parsesLevel() throws {
        #expect(try MediaFrame(parsing: Self.frame(reserved: 0)).header.audioLevel == nil)
        #expect(try MediaFrame(parsing: Self.frame(reserved: 0x80 | 42)).header.audioLevel == 42)
        #expect(try MediaFrame(parsing: Self.frame(reserved: 0x80)).header.audioLevel == 0)
        #expect(try MediaFrame(parsing: Self.frame(reserved: 0xFF)).header.audioLevel == 127)
        #expect(try MediaFrame(parsing: Self.frame(reserved: 0x05)).header.audioLevel == nil)
    }

    @Test("the server writes the reserved byte as 0 whatever level came in")
    func writesZero() throws {
        let header = try MediaFrame(parsing: Self.frame(reserved: 0x80 | 42)).header
        var out = ByteBuffer()
        header.write(into: &out)
        #expect(out.getInteger(at: 3, as: UInt8.self) == 0)
        #expect(out.getInteger(at: 8, as: UInt32.self) == 7)
    }
}
