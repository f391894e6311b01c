import NIOCore
import NIOEmbedded

/// A server frame as a test reads it back: opcode and payload.
struct WireFrame: Equatable, CustomStringConvertible {
    var opcode: UInt8
    var payload: [UInt8]

    var text: String { String(decoding: payload, as: UTF8.self) }
    /// The code of a close frame.
    var closeCode: UInt16? { opcode == 0x8 && payload.count >= 2 ? UInt16(payload[0]) << 8 | UInt16(payload[1]) : nil }
    var description: String { closeCode.map { "close \($0)" } ?? "\(opcode):\(text)" }

    /// Every frame written to `channel` since the last call (unmasked server frames, RFC 6455 5.2).
    static func written(_ channel: EmbeddedChannel) throws -> [WireFrame] {
        var frames: [WireFrame] = []
        while var buffer = try channel.readOutbound(as: ByteBuffer.self) {
            while buffer.readableBytes > 0 {
                let first = buffer.readInteger(as: UInt8.self)!
                var length = Int(buffer.readInteger(as: UInt8.self)! & 0x7F)
                if length == 126 {
                    length = Int(buffer.readInteger(as: UInt16.self)!)
                } else if length == 127 {
                    length = Int(buffer.readInteger(as: UInt64.self)!)
                }
                frames.append(WireFrame(opcode: first & 0x0F, payload: buffer.readBytes(length: length)!))
            }
        }
        return frames
    }
}
