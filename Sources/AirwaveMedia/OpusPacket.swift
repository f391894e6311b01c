import COpus

/// What ``OpusPacket/validate(_:)`` learned about a well-formed Opus packet.
public struct OpusPacketInfo: Sendable, Hashable {
    /// Number of Opus frames in the packet, 1…48.
    public let frameCount: Int
    /// Audio samples per channel the packet decodes to, at 48 kHz (120…5760).
    public let samplesPerChannel: Int
    /// 1 or 2, from the stereo bit (0x04) of the TOC byte.
    public let channels: Int
    /// The packet's duration in microseconds (2 500…120 000); exact, since every Opus frame
    /// size is a multiple of 2.5 ms.
    public var durationMicroseconds: Int { samplesPerChannel * 125 / 6 }

    /// Creates a description; normally produced by ``OpusPacket/validate(_:)``.
    public init(frameCount: Int, samplesPerChannel: Int, channels: Int) {
        self.frameCount = frameCount
        self.samplesPerChannel = samplesPerChannel
        self.channels = channels
    }
}

/// Why ``OpusPacket/validate(_:)`` refused a packet.
public enum OpusPacketRejection: Error, Sendable, Hashable {
    /// The packet has no bytes at all (not even a TOC byte).
    case empty
    /// The packet is larger than ``OpusPacket/maximumByteCount``.
    case tooLarge(byteCount: Int)
    /// `opus_packet_parse` refused it; the associated value is the libopus error code.
    case malformed(opusError: Int32)
    /// The packet parses but holds more than 120 ms (5 760 samples per channel at 48 kHz).
    case tooLong(samplesPerChannel: Int)

    /// A short, fixed, snake_case name for metric labels and logs: `empty`, `too_large`,
    /// `malformed` or `too_long`.
    public var label: String {
        switch self {
        case .empty: "empty"
        case .tooLarge: "too_large"
        case .malformed: "malformed"
        case .tooLong: "too_long"
        }
    }
}

/// Validation of single Opus packets (RFC 6716 section 3) as they arrive from clients.
///
/// The check runs on every ingress audio packet, so it is allocation-free: it reads the
/// caller's bytes in place and keeps libopus's 48-entry frame tables on the stack. It never
/// traps on any input (the tests feed it 100 000 random buffers).
public enum OpusPacket {
    /// The largest packet accepted: 3 × 1 275 bytes (three maximum-size frames), 3 825 bytes.
    /// libopus itself would accept a code-3 packet with more padding; Airwave does not.
    public static let maximumByteCount = 1275 * 3

    /// The longest packet accepted, in samples per channel at 48 kHz: 120 ms.
    public static let maximumSamplesPerChannel = 5760

    /// Checks that `bytes` is one well-formed Opus packet and describes it.
    ///
    /// A packet is refused when it is empty, larger than ``maximumByteCount``, refused by
    /// libopus's `opus_packet_parse` (bad frame count, frame lengths that do not fit the
    /// data, a frame over 1 275 bytes, a truncated length, bad padding, …) or longer than
    /// 120 ms.
    /// - Throws: ``OpusPacketRejection`` saying why.
    public static func validate(_ bytes: UnsafeRawBufferPointer) throws(OpusPacketRejection) -> OpusPacketInfo {
        guard let base = bytes.baseAddress, bytes.count > 0 else { throw .empty }
        guard bytes.count <= maximumByteCount else { throw .tooLarge(byteCount: bytes.count) }
        let data = base.assumingMemoryBound(to: UInt8.self)
        let length = Int32(bytes.count)
        let frameCount = withUnsafeTemporaryAllocation(of: Int16.self, capacity: 48) { sizes in
            withUnsafeTemporaryAllocation(of: UnsafePointer<UInt8>?.self, capacity: 48) { frames in
                opus_packet_parse(data, length, nil, frames.baseAddress, sizes.baseAddress!, nil)
            }
        }
        guard frameCount > 0 else { throw .malformed(opusError: frameCount < 0 ? frameCount : OPUS_INVALID_PACKET) }
        let samplesPerFrame = Int(opus_packet_get_samples_per_frame(data, 48_000))
        let samples = Int(frameCount) * samplesPerFrame
        guard samples <= maximumSamplesPerChannel else { throw .tooLong(samplesPerChannel: samples) }
        return OpusPacketInfo(
            frameCount: Int(frameCount),
            samplesPerChannel: samples,
            channels: data[0] & 0x04 != 0 ? 2 : 1
        )
    }

    /// ``validate(_:)`` for an array; no copy is made.
    public static func validate(_ bytes: [UInt8]) throws(OpusPacketRejection) -> OpusPacketInfo {
        try bytes.withUnsafeBytes { raw in
            Result { () throws(OpusPacketRejection) -> OpusPacketInfo in try validate(raw) }
        }.get()
    }

    /// The packet's description, or `nil` when ``validate(_:)`` would refuse it.
    public static func info(_ bytes: UnsafeRawBufferPointer) -> OpusPacketInfo? {
        try? validate(bytes)
    }

    /// The packet's description, or `nil` when ``validate(_:)`` would refuse it.
    public static func info(_ bytes: [UInt8]) -> OpusPacketInfo? {
        try? validate(bytes)
    }
}
