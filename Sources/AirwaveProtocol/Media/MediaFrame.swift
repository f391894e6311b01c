import NIOCore

/// The 16-byte header of every binary WebSocket frame (PROTOCOL.md section 4).
public struct MediaFrameHeader: Sendable, Hashable {
    /// Header length in bytes; the payload follows.
    public static let size = 16
    /// The only version this server speaks.
    public static let currentVersion: UInt8 = 1

    /// What the payload is.
    public enum Kind: UInt8, Sendable, Hashable {
        /// One Opus packet (RFC 6716).
        case opus = 1
        /// PCM s16le at 48 kHz, mono or stereo (flag 0x08).
        case pcm = 2
        /// One encoded screen video frame.
        case screen = 3

        /// Audio of either form.
        public var isAudio: Bool { self != .screen }
    }

    /// The flags byte.
    public struct Flags: OptionSet, Sendable, Hashable {
        public var rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        public static let keyframe = Flags(rawValue: 0x01)
        public static let config = Flags(rawValue: 0x02)
        public static let marker = Flags(rawValue: 0x04)
        public static let stereo = Flags(rawValue: 0x08)
    }

    public var kind: Kind
    public var flags: Flags
    /// 0 from clients; set by the server on the way out.
    public var sourceID: UInt32
    /// Per source and kind.
    public var sequence: UInt32
    /// 48 kHz for audio, 90 kHz for video.
    public var timestamp: UInt32
    /// Extension (docs/protocol.md): the audio level a client measured, RFC 6464 style
    /// (0 = 0 dBov … 127 = silence), carried in the reserved byte as `0x80 | level`; nil when
    /// the byte is 0. Read on the way in only: the server always writes the byte as 0.
    public var audioLevel: UInt8?

    public init(kind: Kind, flags: Flags = [], sourceID: UInt32 = 0, sequence: UInt32, timestamp: UInt32, audioLevel: UInt8? = nil) {
        self.kind = kind
        self.flags = flags
        self.sourceID = sourceID
        self.sequence = sequence
        self.timestamp = timestamp
        self.audioLevel = audioLevel
    }

    /// Why a binary frame is not a media frame.
    public enum ParseError: Error, Sendable, Hashable {
        case tooShort(Int)
        case unknownVersion(UInt8)
        case unknownKind(UInt8)

        /// A sentence for the `bad_message` error.
        public var message: String {
            switch self {
            case .tooShort(let n): "A media frame needs a 16-byte header; this one has \(n) bytes."
            case .unknownVersion(let v): "Unknown media frame version \(v); this server speaks version 1."
            case .unknownKind(let k): "Unknown media frame kind \(k); kinds are 1 (Opus), 2 (PCM) and 3 (screen)."
            }
        }

        /// A short metric label.
        public var reason: String {
            switch self {
            case .tooShort: "too_short"
            case .unknownVersion: "unknown_version"
            case .unknownKind: "unknown_kind"
            }
        }
    }

    /// Reads the header; the payload is what remains readable in `buffer` afterwards.
    public static func parse(_ buffer: inout ByteBuffer) throws(ParseError) -> MediaFrameHeader {
        guard buffer.readableBytes >= size else { throw .tooShort(buffer.readableBytes) }
        let start = buffer.readerIndex
        let version = buffer.getInteger(at: start, as: UInt8.self)!
        guard version == currentVersion else { throw .unknownVersion(version) }
        let kindByte = buffer.getInteger(at: start + 1, as: UInt8.self)!
        guard let kind = Kind(rawValue: kindByte) else { throw .unknownKind(kindByte) }
        let flags = Flags(rawValue: buffer.getInteger(at: start + 2, as: UInt8.self)!)
        let sourceID = buffer.getInteger(at: start + 4, as: UInt32.self)!
        let sequence = buffer.getInteger(at: start + 8, as: UInt32.self)!
        let timestamp = buffer.getInteger(at: start + 12, as: UInt32.self)!
        let reserved = buffer.getInteger(at: start + 3, as: UInt8.self)!
        buffer.moveReaderIndex(forwardBy: size)
        return MediaFrameHeader(kind: kind, flags: flags, sourceID: sourceID, sequence: sequence, timestamp: timestamp,
                                audioLevel: reserved & 0x80 != 0 ? reserved & 0x7F : nil)
    }

    /// Appends the 16 header bytes.
    public func write(into buffer: inout ByteBuffer) {
        buffer.writeInteger(Self.currentVersion)
        buffer.writeInteger(kind.rawValue)
        buffer.writeInteger(flags.rawValue)
        buffer.writeInteger(UInt8(0))
        buffer.writeInteger(sourceID)
        buffer.writeInteger(sequence)
        buffer.writeInteger(timestamp)
    }
}

/// A media frame: header and payload (a slice of the received buffer, never copied).
public struct MediaFrame: Sendable, Hashable {
    public var header: MediaFrameHeader
    public var payload: ByteBuffer

    public init(header: MediaFrameHeader, payload: ByteBuffer) {
        self.header = header
        self.payload = payload
    }

    /// Parses a whole binary WebSocket message.
    public init(parsing message: ByteBuffer) throws(MediaFrameHeader.ParseError) {
        var buffer = message
        header = try MediaFrameHeader.parse(&buffer)
        payload = buffer
    }

    /// Bytes on the wire without WebSocket framing.
    public var size: Int { MediaFrameHeader.size + payload.readableBytes }

    /// Header and payload in one new buffer.
    public func encoded(allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: size)
        header.write(into: &buffer)
        buffer.writeImmutableBuffer(payload)
        return buffer
    }
}
