import AirwaveMedia
import AirwaveProtocol
import NIOCore

/// Checks a client's binary frame before it costs the event any work (PROTOCOL.md 4): the
/// header, then the payload by kind — Opus must parse with libopus, PCM must be whole samples
/// and at most `maxPCMMilliseconds` long (PROTOCOL.md 10).
enum MediaIngress {
    struct Rejection: Error {
        var message: String
        var reason: String
    }

    /// PCM is 48 kHz s16le: 48 samples a millisecond per channel.
    static let pcmSamplesPerMillisecond = 48

    static func validate(_ buffer: ByteBuffer, maxPCMMilliseconds: Int) throws(Rejection) -> MediaFrame {
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
            guard frame.payload.readableBytes <= maxPCMMilliseconds * pcmSamplesPerMillisecond * bytesPerSample else {
                throw Rejection(message: "A PCM frame carries at most \(maxPCMMilliseconds) ms of audio.", reason: "too_long")
            }
        case .screen:
            guard frame.payload.readableBytes > 0 else { throw Rejection(message: "A screen frame needs a payload.", reason: "empty") }
        }
        return frame
    }
}

extension MediaFrame {
    /// Milliseconds of audio in a PCM frame (0 for other kinds): what the PCM budget counts.
    var pcmMilliseconds: Double {
        guard header.kind == .pcm else { return 0 }
        let bytesPerSample = header.flags.contains(.stereo) ? 4 : 2
        return Double(payload.readableBytes / bytesPerSample) / Double(MediaIngress.pcmSamplesPerMillisecond)
    }
}
