import COpus

/// One Opus packet produced by ``PCMOpusEncoder``.
public struct EncodedPacket: Sendable, Hashable {
    /// The Opus packet (RFC 6716), 20 ms of audio.
    public var bytes: [UInt8]
    /// Timestamp of the packet's first sample on a 48 kHz clock: 0 for the encoder's first
    /// packet, then +960 per packet (wrapping at 2³²).
    public var timestamp: UInt32
    /// Sequence number: 0 for the encoder's first packet, then +1 per packet (wrapping).
    public var sequence: UInt32

    /// Creates a packet record.
    public init(bytes: [UInt8], timestamp: UInt32, sequence: UInt32) {
        self.bytes = bytes
        self.timestamp = timestamp
        self.sequence = sequence
    }
}

/// Errors of ``PCMOpusEncoder``.
public enum PCMEncoderError: Error, Sendable, Equatable {
    /// Only 1 (mono) and 2 (stereo) channels are supported.
    case unsupportedChannelCount(Int)
    /// The bitrate is outside libopus's 500…512 000 b/s.
    case unsupportedBitrate(Int)
    /// libopus could not create the encoder.
    case opus(OpusError)
}

/// Encodes raw PCM (s16le, 48 kHz, interleaved) arriving in pieces of any size into 20 ms
/// Opus packets, as the server does for PROTOCOL.md's kind-2 (PCM) media frames.
///
/// - Framing: every 960 samples per channel (20 ms) become one packet. Input of any length
///   is accepted, including odd byte counts: a dangling low byte waits for the next call.
///   The partial frame waits for more input, or is padded with silence by ``flush()``.
/// - Clock: packets carry ``EncodedPacket/timestamp`` (48 kHz, starting at 0, +960 per
///   packet) and ``EncodedPacket/sequence`` (starting at 0, +1 per packet). Both keep
///   counting across flushes, resets and channel switches.
/// - Application: ``Application/voip`` by default (the encoder favours speech
///   intelligibility, which is what live audio rooms carry); ``Application/audio`` is there
///   for music-first rooms.
/// - Bitrate: 32 kb/s for mono and 64 kb/s for stereo unless set explicitly.
/// - Channel switches: PCM frames say per frame whether they are stereo (PROTOCOL.md flag
///   0x08). Either call ``switchChannels(to:)``, which flushes the buffered partial frame
///   (padded with silence, encoded with the old layout) and then replaces the libopus
///   encoder, or make a new encoder with ``init(channels:continuing:application:bitrate:complexity:)``,
///   which continues the old one's sequence and timestamp but does not take over its
///   buffered input (flush the old one first to keep it).
/// - Memory: input is encoded as soon as a frame is complete, so at most one frame minus one
///   sample stays buffered between calls (``maximumBufferedByteCount``); a client cannot make
///   an encoder grow. The returned packets are proportional to the input of the call.
/// - Failures: ``append(_:)-(UnsafeRawBufferPointer)`` does not throw. libopus cannot fail
///   to encode a frame with the parameters checked at creation; if it ever did, that 20 ms is
///   skipped (the clock still advances) and counted in ``droppedFrameCount``.
///
/// Not thread-safe and deliberately not `Sendable`: each PCM source owns one encoder and
/// uses it from one task (its event's driver).
public final class PCMOpusEncoder {
    /// libopus's application mode (`OPUS_APPLICATION_*`).
    public enum Application: Sendable, Hashable {
        /// `OPUS_APPLICATION_VOIP`: speech intelligibility first (the default).
        case voip
        /// `OPUS_APPLICATION_AUDIO`: fidelity to the input first (music).
        case audio
        /// `OPUS_APPLICATION_RESTRICTED_LOWDELAY`: CELT only, lowest algorithmic delay.
        case restrictedLowDelay

        var opusValue: Int32 {
            switch self {
            case .voip: OPUS_APPLICATION_VOIP
            case .audio: OPUS_APPLICATION_AUDIO
            case .restrictedLowDelay: OPUS_APPLICATION_RESTRICTED_LOWDELAY
            }
        }
    }

    /// The sample rate of input and output, 48 000 Hz.
    public static let sampleRate = 48_000
    /// Samples per channel in one packet: 960 (20 ms at 48 kHz).
    public static let samplesPerFrame = 960
    /// The most input bytes an encoder ever holds between calls: one stereo frame minus one
    /// byte (3 839).
    public static let maximumBufferedByteCount = samplesPerFrame * 2 * 2 - 1
    /// The default bitrate for a channel count: 32 000 b/s mono, 64 000 b/s stereo.
    public static func defaultBitrate(channels: Int) -> Int { channels == 2 ? 64_000 : 32_000 }

    /// The channel count of the PCM currently expected (1 or 2).
    public private(set) var channels: Int
    /// The libopus application mode.
    public let application: Application
    /// The bitrate in use, in bits per second.
    public var bitrate: Int { explicitBitrate ?? Self.defaultBitrate(channels: channels) }
    /// The libopus complexity, 0…10.
    public let complexity: Int
    /// The sequence number the next packet will carry.
    public private(set) var nextSequence: UInt32 = 0
    /// The timestamp (48 kHz) the next packet will carry.
    public private(set) var nextTimestamp: UInt32 = 0
    /// Input bytes held back, waiting for a complete 20 ms frame (always less than one frame).
    public var bufferedByteCount: Int { filledSamples * 2 + (pendingLowByte == nil ? 0 : 1) }
    /// Frames libopus failed to encode (expected to stay 0); each skipped 20 ms.
    public private(set) var droppedFrameCount = 0

    private let explicitBitrate: Int?
    private var encoder: OpaquePointer
    /// One frame of interleaved samples being filled; capacity for stereo.
    private let frame: UnsafeMutablePointer<Int16>
    private var filledSamples = 0
    private var pendingLowByte: UInt8?
    /// Output scratch: one 20 ms frame never exceeds 1 275 bytes plus the TOC byte.
    private let scratch: UnsafeMutablePointer<UInt8>
    private static let scratchCapacity = 1500

    /// Creates an encoder.
    /// - Parameters:
    ///   - channels: 1 (mono) or 2 (stereo, interleaved left/right).
    ///   - application: libopus's application mode; ``Application/voip`` by default.
    ///   - bitrate: bits per second; `nil` for ``defaultBitrate(channels:)`` (which then
    ///     follows channel switches).
    ///   - complexity: libopus complexity 0…10; 5 by default to keep server CPU modest.
    /// - Throws: ``PCMEncoderError``.
    public init(
        channels: Int = 1,
        application: Application = .voip,
        bitrate: Int? = nil,
        complexity: Int = 5
    ) throws(PCMEncoderError) {
        if let bitrate, !(500...512_000).contains(bitrate) { throw .unsupportedBitrate(bitrate) }
        self.channels = channels
        self.application = application
        self.explicitBitrate = bitrate
        self.complexity = min(max(complexity, 0), 10)
        self.encoder = try Self.makeEncoder(
            channels: channels, application: application,
            bitrate: bitrate ?? Self.defaultBitrate(channels: channels), complexity: self.complexity)
        frame = .allocate(capacity: Self.samplesPerFrame * 2)
        scratch = .allocate(capacity: Self.scratchCapacity)
    }

    /// Creates an encoder whose first packet continues `previous`'s clock: it carries
    /// `previous.nextSequence` and `previous.nextTimestamp` (or 0 and 0 when `previous` is
    /// `nil`). Input buffered in `previous` is not taken over; call its ``flush()`` first to
    /// keep it. Meant for a source that changes its channel count.
    /// - Throws: ``PCMEncoderError``.
    public convenience init(
        channels: Int,
        continuing previous: PCMOpusEncoder?,
        application: Application = .voip,
        bitrate: Int? = nil,
        complexity: Int = 5
    ) throws(PCMEncoderError) {
        try self.init(channels: channels, application: application, bitrate: bitrate, complexity: complexity)
        if let previous {
            nextSequence = previous.nextSequence
            nextTimestamp = previous.nextTimestamp
        }
    }

    deinit {
        opus_encoder_destroy(encoder)
        frame.deallocate()
        scratch.deallocate()
    }

    private static func makeEncoder(
        channels: Int, application: Application, bitrate: Int, complexity: Int
    ) throws(PCMEncoderError) -> OpaquePointer {
        guard channels == 1 || channels == 2 else { throw .unsupportedChannelCount(channels) }
        var error: Int32 = OPUS_OK
        guard let encoder = opus_encoder_create(Int32(sampleRate), Int32(channels), application.opusValue, &error),
              error == OPUS_OK
        else { throw .opus(OpusError(code: error == OPUS_OK ? OPUS_ALLOC_FAIL : error)) }
        var status = airwave_opus_encoder_set_bitrate(encoder, Int32(bitrate))
        if status == OPUS_OK { status = airwave_opus_encoder_set_complexity(encoder, Int32(complexity)) }
        guard status == OPUS_OK else {
            opus_encoder_destroy(encoder)
            throw .opus(OpusError(code: status))
        }
        return encoder
    }

    /// Appends s16le interleaved PCM in the current layout (``channels``) and returns the
    /// packets it completed, oldest first: none, one, or several.
    ///
    /// `pcm` may have any length, including an odd byte count; it continues the previous
    /// call's bytes.
    public func append(_ pcm: UnsafeRawBufferPointer) -> [EncodedPacket] {
        var packets: [EncodedPacket] = []
        guard var source = pcm.baseAddress, !pcm.isEmpty else { return packets }
        var remaining = pcm.count
        let frameSamples = Self.samplesPerFrame * channels
        packets.reserveCapacity((bufferedByteCount + remaining) / (frameSamples * 2))

        if let low = pendingLowByte {
            let high = source.load(as: UInt8.self)
            frame[filledSamples] = Int16(bitPattern: UInt16(low) | UInt16(high) << 8)
            filledSamples += 1
            pendingLowByte = nil
            source += 1
            remaining -= 1
            if filledSamples == frameSamples { encodeFrame(into: &packets) }
        }
        while remaining >= 2 {
            let count = min(remaining / 2, frameSamples - filledSamples)
            let destination = frame + filledSamples
            UnsafeMutableRawPointer(destination).copyMemory(from: source, byteCount: count * 2)
            #if _endian(big)
            for index in 0..<count { destination[index] = Int16(littleEndian: destination[index]) }
            #endif
            filledSamples += count
            source += count * 2
            remaining -= count * 2
            if filledSamples == frameSamples { encodeFrame(into: &packets) }
        }
        if remaining == 1 {
            pendingLowByte = source.load(as: UInt8.self)
        }
        return packets
    }

    /// ``append(_:)-(UnsafeRawBufferPointer)`` for any byte collection (an array, a slice,
    /// `Data`); contiguous storage is read in place, anything else is copied first.
    public func append(_ pcm: some Collection<UInt8>) -> [EncodedPacket] {
        if let packets = pcm.withContiguousStorageIfAvailable({ append(UnsafeRawBufferPointer($0)) }) {
            return packets
        }
        return Array(pcm).withUnsafeBytes { append($0) }
    }

    /// Changes the expected channel count. When it differs from ``channels``, the buffered
    /// partial frame is flushed first (padded with silence, encoded in the old layout; a
    /// dangling odd byte is dropped), then the libopus encoder is replaced by a fresh one for
    /// the new layout. Sequence numbers and timestamps continue.
    /// - Returns: the flushed packet, if any.
    /// - Throws: ``PCMEncoderError``; the encoder is then unchanged apart from the flush.
    public func switchChannels(to newChannels: Int) throws(PCMEncoderError) -> [EncodedPacket] {
        guard newChannels != channels else { return [] }
        guard newChannels == 1 || newChannels == 2 else { throw .unsupportedChannelCount(newChannels) }
        let replacement = try Self.makeEncoder(
            channels: newChannels, application: application,
            bitrate: explicitBitrate ?? Self.defaultBitrate(channels: newChannels), complexity: complexity)
        let packets = flush()
        opus_encoder_destroy(encoder)
        encoder = replacement
        channels = newChannels
        return packets
    }

    /// Pads the buffered partial frame with silence and encodes it; returns `[]` when nothing
    /// is buffered. A dangling odd byte is dropped. Use at the end of a stream or talk spurt.
    public func flush() -> [EncodedPacket] {
        pendingLowByte = nil
        guard filledSamples > 0 else { return [] }
        let frameSamples = Self.samplesPerFrame * channels
        (frame + filledSamples).initialize(repeating: 0, count: frameSamples - filledSamples)
        filledSamples = frameSamples
        var packets: [EncodedPacket] = []
        encodeFrame(into: &packets)
        return packets
    }

    /// Drops buffered input and resets the libopus state (as after a long gap); the sequence
    /// number and timestamp keep counting.
    public func reset() {
        filledSamples = 0
        pendingLowByte = nil
        _ = airwave_opus_encoder_reset(encoder)
    }

    private func encodeFrame(into packets: inout [EncodedPacket]) {
        filledSamples = 0
        let length = opus_encode(encoder, frame, Int32(Self.samplesPerFrame), scratch, Int32(Self.scratchCapacity))
        if length > 0 {
            packets.append(EncodedPacket(
                bytes: Array(UnsafeBufferPointer(start: scratch, count: Int(length))),
                timestamp: nextTimestamp,
                sequence: nextSequence))
            nextSequence &+= 1
        } else {
            droppedFrameCount += 1
        }
        nextTimestamp &+= UInt32(Self.samplesPerFrame)
    }
}

@available(*, unavailable, message: "a PCMOpusEncoder belongs to one task")
extension PCMOpusEncoder: Sendable {}
