/// The VP8 payload descriptor that starts every VP8 RTP payload (RFC 7741 §4.2).
public struct VP8PayloadDescriptor: Equatable, Sendable {
    /// N: the frame is not used as a reference.
    public var nonReference: Bool
    /// S: the packet starts a VP8 partition.
    public var startOfPartition: Bool
    /// PID: the partition index (0 for the first).
    public var partitionIndex: UInt8
    /// I: a 7- or 15-bit picture ID.
    public var pictureID: UInt16?
    /// L: TL0PICIDX.
    public var tl0PictureIndex: UInt8?
    /// T/K: the TID/Y/KEYIDX byte, kept whole.
    public var temporalByte: UInt8?
    /// Bytes the descriptor occupies.
    public var length: Int

    /// Parses the descriptor at the start of an RTP payload; nil if truncated.
    public static func parse(_ payload: ArraySlice<UInt8>) -> VP8PayloadDescriptor? {
        var reader = ByteReader(payload)
        guard let first = reader.readUInt8() else { return nil }
        var descriptor = VP8PayloadDescriptor(
            nonReference: first & 0x20 != 0, startOfPartition: first & 0x10 != 0, partitionIndex: first & 0x07,
            pictureID: nil, tl0PictureIndex: nil, temporalByte: nil, length: 1)
        if first & 0x80 != 0 {
            guard let extended = reader.readUInt8() else { return nil }
            if extended & 0x80 != 0 {
                guard let high = reader.readUInt8() else { return nil }
                if high & 0x80 != 0 {
                    guard let low = reader.readUInt8() else { return nil }
                    descriptor.pictureID = UInt16(high & 0x7F) << 8 | UInt16(low)
                } else {
                    descriptor.pictureID = UInt16(high)
                }
            }
            if extended & 0x40 != 0 {
                guard let index = reader.readUInt8() else { return nil }
                descriptor.tl0PictureIndex = index
            }
            if extended & 0x30 != 0 {
                guard let byte = reader.readUInt8() else { return nil }
                descriptor.temporalByte = byte
            }
        }
        descriptor.length = reader.index - payload.startIndex
        return descriptor
    }
}

/// Splits VP8 frames into RTP payloads (RFC 7741): each payload carries a descriptor with a
/// 15-bit picture ID that increases per frame, S=1 and PID=0 on the first payload of a frame.
/// The caller sets the RTP marker bit on the last payload of each frame.
public struct VP8Packetizer: Sendable {
    /// Largest RTP payload produced (descriptor included).
    public let maximumPayloadSize: Int
    public private(set) var pictureID: UInt16

    public init(maximumPayloadSize: Int = 1100, initialPictureID: UInt16 = 0) {
        precondition(maximumPayloadSize > 4)
        self.maximumPayloadSize = maximumPayloadSize
        self.pictureID = initialPictureID & 0x7FFF
    }

    /// The payloads of one frame, in order; the last one ends the frame.
    public mutating func packetize(frame: [UInt8]) -> [[UInt8]] {
        guard !frame.isEmpty else { return [] }
        defer { pictureID = (pictureID &+ 1) & 0x7FFF }
        let chunk = maximumPayloadSize - 4
        var payloads: [[UInt8]] = []
        var offset = 0
        while offset < frame.count {
            let end = min(offset + chunk, frame.count)
            var payload: [UInt8] = []
            payload.reserveCapacity(4 + end - offset)
            payload.append(offset == 0 ? 0x90 : 0x80)  // X, and S on the first
            payload.append(0x80)  // I: picture ID present
            payload.append(0x80 | UInt8(pictureID >> 8))  // M: 15-bit picture ID
            payload.append(UInt8(pictureID & 0xFF))
            payload += frame[offset..<end]
            payloads.append(payload)
            offset = end
        }
        return payloads
    }
}

/// Keyframe detection for VP8 (RFC 6386 §9.1): the frame tag's P bit is 0 on a keyframe, and
/// a keyframe has the start code 9d 01 2a after the 3-byte tag.
public enum VP8Frame {
    public static func isKeyframe(_ frame: ArraySlice<UInt8>) -> Bool {
        guard frame.count >= 10 else { return false }
        let start = frame.startIndex
        return frame[start] & 0x01 == 0 && frame[start + 3] == 0x9D && frame[start + 4] == 0x01 && frame[start + 5] == 0x2A
    }

    public static func isKeyframe(_ frame: [UInt8]) -> Bool {
        isKeyframe(frame[...])
    }

    /// Whether an RTP payload (descriptor included) starts a keyframe.
    public static func payloadStartsKeyframe(_ payload: [UInt8]) -> Bool {
        guard let descriptor = VP8PayloadDescriptor.parse(payload[...]),
              descriptor.startOfPartition, descriptor.partitionIndex == 0
        else { return false }
        return isKeyframe(payload[descriptor.length...])
    }
}
