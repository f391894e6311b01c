/// One encoded video frame of a `.frames` file (see ``MediaRecordFile``).
public struct VideoFrame: Sendable, Hashable {
    /// True when the frame is a keyframe (flag 0x01 of the record).
    public var isKeyframe: Bool
    /// Presentation time on a 90 kHz clock.
    public var timestamp: UInt32
    /// The encoded frame (for VP8: one VP8 frame, RFC 6386).
    public var payload: [UInt8]

    /// Creates a frame record.
    public init(isKeyframe: Bool, timestamp: UInt32, payload: [UInt8]) {
        self.isKeyframe = isKeyframe
        self.timestamp = timestamp
        self.payload = payload
    }
}

/// A `.opus-packets` or `.frames` file that is not well formed.
public struct MediaRecordFileError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The byte offset of the record that could not be read.
    public let offset: Int
    /// What is wrong with it.
    public let reason: String

    /// Describes the offset and the reason.
    public var description: String { "media record file: \(reason) at byte \(offset)" }
}

/// The two simple record containers of `Fixtures/media` (its README describes them), read and
/// written here because the test suite, the broadcaster client and the load generator all
/// stream them:
///
/// - packet records (`.opus-packets`, `.packets`): repeated `[u32 BE length][packet bytes]`;
/// - video frame records (`.frames`): repeated
///   `[u32 BE payload length][u8 flags, 0x01 keyframe][u32 BE timestamp, 90 kHz][payload]`.
///
/// Both hold no header; an empty file holds no records.
public enum MediaRecordFile {
    /// The largest record accepted when reading, 16 MiB, so a corrupt length fails cleanly.
    public static let maximumRecordLength = 16 << 20

    /// Splits packet records into packets. Zero-length packets are allowed.
    /// - Throws: ``MediaRecordFileError`` for a truncated length or packet.
    public static func readPackets(_ bytes: [UInt8]) throws(MediaRecordFileError) -> [[UInt8]] {
        var packets: [[UInt8]] = []
        var offset = 0
        while offset < bytes.count {
            let length = try readLength(bytes, at: offset)
            let start = offset + 4
            guard bytes.count - start >= length else {
                throw MediaRecordFileError(offset: offset, reason: "packet of \(length) bytes runs past the end")
            }
            packets.append(Array(bytes[start..<start + length]))
            offset = start + length
        }
        return packets
    }

    /// Writes packets as packet records.
    public static func writePackets(_ packets: [[UInt8]]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(packets.reduce(0) { $0 + 4 + $1.count })
        for packet in packets {
            appendBigEndian(UInt32(packet.count), to: &bytes)
            bytes += packet
        }
        return bytes
    }

    /// Splits video frame records into frames.
    /// - Throws: ``MediaRecordFileError`` for a truncated header or payload.
    public static func readVideoFrames(_ bytes: [UInt8]) throws(MediaRecordFileError) -> [VideoFrame] {
        var frames: [VideoFrame] = []
        var offset = 0
        while offset < bytes.count {
            guard bytes.count - offset >= 9 else {
                throw MediaRecordFileError(offset: offset, reason: "truncated 9-byte frame header")
            }
            let length = try readLength(bytes, at: offset)
            let flags = bytes[offset + 4]
            let timestamp = bytes[offset + 5..<offset + 9].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            let start = offset + 9
            guard bytes.count - start >= length else {
                throw MediaRecordFileError(offset: offset, reason: "frame of \(length) bytes runs past the end")
            }
            frames.append(VideoFrame(
                isKeyframe: flags & 0x01 != 0, timestamp: timestamp, payload: Array(bytes[start..<start + length])))
            offset = start + length
        }
        return frames
    }

    /// Writes frames as video frame records.
    public static func writeVideoFrames(_ frames: [VideoFrame]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(frames.reduce(0) { $0 + 9 + $1.payload.count })
        for frame in frames {
            appendBigEndian(UInt32(frame.payload.count), to: &bytes)
            bytes.append(frame.isKeyframe ? 0x01 : 0x00)
            appendBigEndian(frame.timestamp, to: &bytes)
            bytes += frame.payload
        }
        return bytes
    }

    private static func readLength(_ bytes: [UInt8], at offset: Int) throws(MediaRecordFileError) -> Int {
        guard bytes.count - offset >= 4 else {
            throw MediaRecordFileError(offset: offset, reason: "truncated 4-byte length")
        }
        let length = Int(bytes[offset..<offset + 4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
        guard length <= maximumRecordLength else {
            throw MediaRecordFileError(offset: offset, reason: "record length \(length) over the limit")
        }
        return length
    }

    private static func appendBigEndian(_ value: UInt32, to bytes: inout [UInt8]) {
        bytes += [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
    }
}

/// VP8 payload inspection (RFC 6386).
public enum VP8 {
    /// True when `payload` starts a VP8 keyframe: bit 0 of the first byte of the frame tag
    /// (`P`, "inverse key frame") is 0, and the keyframe start code `9d 01 2a` follows the
    /// 3-byte tag. False for an empty or truncated payload.
    public static func isKeyframe(_ payload: UnsafeRawBufferPointer) -> Bool {
        guard payload.count >= 10 else { return false }
        return payload[0] & 0x01 == 0 && payload[3] == 0x9D && payload[4] == 0x01 && payload[5] == 0x2A
    }

    /// ``isKeyframe(_:)`` for an array.
    public static func isKeyframe(_ payload: [UInt8]) -> Bool {
        payload.withUnsafeBytes { isKeyframe($0) }
    }
}
