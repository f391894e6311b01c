import AirwaveCore
import AirwaveMedia
import AirwaveProtocol
import NIOCore

/// The one media ingress check of every transport (a WebSocket's binary frames, a WHIP
/// session's RTP audio): the frame is validated (PROTOCOL.md 4: the header, then the payload by
/// kind — Opus must parse with libopus, PCM must be whole samples and at most
/// `maxPCMFrameMilliseconds` long, PROTOCOL.md 10), then charged to the sender's budgets (frames,
/// bytes, milliseconds of PCM to encode), before it costs the event any work. Counters carry the
/// same labels whatever the transport: `airwave_media_in_total{kind}` for a valid frame,
/// `airwave_media_dropped_total{reason}` with `malformed`, `rate_limited`, `byte_rate_limited`,
/// `pcm_rate_limited`. One per sender, used on one thread at a time.
struct MediaIngress: Sendable {
    struct Rejection: Error, Sendable {
        var message: String
        var reason: String
    }

    /// What became of one frame.
    enum Verdict {
        case accepted(MediaFrame)
        /// Invalid: dropped, and the sender may be told why.
        case malformed(Rejection)
        /// Over a budget: dropped.
        case overLimit
    }

    /// PCM is 48 kHz s16le: 48 samples a millisecond per channel.
    static let pcmSamplesPerMillisecond = 48

    private let maxPCMMilliseconds: Int
    private let metrics: ServerMetrics
    private var frames: TokenBucket
    private var bytes: TokenBucket
    /// Milliseconds of PCM the server encodes for this sender (the encoder's CPU budget).
    private var pcm: TokenBucket

    init(limits: MediaLimits, metrics: ServerMetrics) {
        maxPCMMilliseconds = limits.maxPCMFrameMilliseconds
        self.metrics = metrics
        frames = TokenBucket(rate: limits.frameRate.perSecond, burst: limits.frameRate.burst)
        bytes = TokenBucket(rate: limits.byteRate.perSecond, burst: limits.byteRate.burst)
        pcm = TokenBucket(rate: limits.pcmRate.perSecond, burst: limits.pcmRate.burst)
    }

    /// A binary frame as received (16-byte header and payload).
    mutating func admit(_ buffer: ByteBuffer, now: Timestamp) -> Verdict {
        let frame: MediaFrame
        do {
            frame = try MediaFrame(parsing: buffer)
        } catch {
            return malformed(Rejection(message: error.message, reason: error.reason))
        }
        return admit(frame, wireBytes: buffer.readableBytes, now: now)
    }

    /// A frame another transport built (a WHIP packet's payload behind a made-up header);
    /// `wireBytes` is what the byte budget charges.
    mutating func admit(_ frame: MediaFrame, wireBytes: Int, now: Timestamp) -> Verdict {
        do {
            try Self.validatePayload(frame, maxPCMMilliseconds: maxPCMMilliseconds)
        } catch {
            return malformed(error)
        }
        metrics.mediaIn(kind: frame.header.kind)
        // Frames, bytes and (for PCM) encoder time are budgeted separately: many small frames,
        // a few huge ones and long PCM each cost the server differently.
        guard frames.take(now: now) else { return overLimit("rate_limited") }
        guard bytes.take(Double(wireBytes), now: now) else { return overLimit("byte_rate_limited") }
        guard frame.header.kind != .pcm || pcm.take(frame.pcmMilliseconds, now: now) else { return overLimit("pcm_rate_limited") }
        return .accepted(frame)
    }

    private func malformed(_ rejection: Rejection) -> Verdict {
        metrics.mediaDropped(reason: "malformed")
        return .malformed(rejection)
    }

    private func overLimit(_ reason: String) -> Verdict {
        metrics.mediaDropped(reason: reason)
        return .overLimit
    }

    static func validatePayload(_ frame: MediaFrame, maxPCMMilliseconds: Int) throws(Rejection) {
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
