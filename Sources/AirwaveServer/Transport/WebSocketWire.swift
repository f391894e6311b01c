import AirwaveProtocol
import NIOCore

/// Server-to-client WebSocket frames built as raw bytes (RFC 6455 5.2: FIN, opcode, length,
/// no mask), so a fan-out encodes a frame once and writes the very same buffer to every
/// connection, below NIO's per-write frame encoder.
enum WebSocketWire {
    static let text: UInt8 = 0x1
    static let binary: UInt8 = 0x2
    static let close: UInt8 = 0x8
    static let ping: UInt8 = 0x9
    static let pong: UInt8 = 0xA

    /// One final frame holding `payload`, built with a single copy of it.
    static func frame(opcode: UInt8, payload: ByteBuffer, allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: payload.readableBytes + 10)
        writeHeader(opcode: opcode, length: payload.readableBytes, into: &buffer)
        buffer.writeImmutableBuffer(payload)
        return buffer
    }

    /// A binary frame holding a media frame: WebSocket header, relay header and payload in one buffer.
    static func frame(_ media: MediaFrame, allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: media.size + 10)
        writeHeader(opcode: binary, length: media.size, into: &buffer)
        media.header.write(into: &buffer)
        buffer.writeImmutableBuffer(media.payload)
        return buffer
    }

    /// A close frame with `code` and a reason cut to fit a control frame (RFC 6455 5.5: 125 bytes).
    static func close(code: UInt16, reason: String?) -> ByteBuffer {
        var payload = ByteBufferAllocator().buffer(capacity: 125)
        payload.writeInteger(code)
        if let reason {
            var cut = Substring(reason)
            while cut.utf8.count > 123 { cut = cut.dropLast() }
            payload.writeString(String(cut))
        }
        return frame(opcode: close, payload: payload)
    }

    private static func writeHeader(opcode: UInt8, length: Int, into buffer: inout ByteBuffer) {
        buffer.writeInteger(0x80 | opcode)
        if length < 126 {
            buffer.writeInteger(UInt8(length))
        } else if length <= Int(UInt16.max) {
            buffer.writeInteger(UInt8(126))
            buffer.writeInteger(UInt16(length))
        } else {
            buffer.writeInteger(UInt8(127))
            buffer.writeInteger(UInt64(length))
        }
    }
}
