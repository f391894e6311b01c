import AirwaveMedia
import AirwaveProtocol
import NIOCore

/// Checks a client's binary frame before it costs the event any work (PROTOCOL.md 4): the
/// header, then the payload by kind — Opus must parse with libopus, PCM must be whole samples.
enum MediaIngress {
    struct Rejection: Error {
        var message: String
        var reason: String
    }

    static func validate(_ buffer: ByteBuffer) throws(Rejection) -> MediaFrame {
        let frame: MediaFrame
        do {
            frame = try MediaFrame(parsing: buffer)
        } catch {
            throw Rejection(message: error.message, reason: error.reason)
        }
        switch frame.header.kind {
        case .opus:
            let valid = frame.payload.withUnsafeReadableBytes { OpusPacket.info($0) != nil }
            guard valid else { throw Rejection(message: "The Opus packet is malformed.", reason: "bad_opus") }
        case .pcm:
            let bytesPerSample = frame.header.flags.contains(.stereo) ? 4 : 2
            guard frame.payload.readableBytes > 0, frame.payload.readableBytes % bytesPerSample == 0 else {
                throw Rejection(message: "PCM payloads are whole s16le samples (\(bytesPerSample) bytes per frame).", reason: "bad_pcm")
            }
        case .screen:
            guard frame.payload.readableBytes > 0 else { throw Rejection(message: "A screen frame needs a payload.", reason: "empty") }
        }
        return frame
    }
}
