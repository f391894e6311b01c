/// Errors of ``OggOpusReader`` and ``OggOpusWriter``.
public enum OggOpusError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The file could not be opened, read or written; `errno` says why.
    case io(path: String, errno: Int32)
    /// No Ogg page with a beginning-of-stream flag was found: not an Ogg file.
    case notOgg
    /// The first packet of the first logical stream is not a valid `OpusHead`.
    case badOpusHead(String)
    /// The second packet is not a valid `OpusTags`.
    case badOpusTags(String)
    /// The file ended before the two header packets.
    case truncatedHeaders
    /// A packet handed to the writer is not a valid Opus packet (its duration is unknown).
    case badPacket(byteCount: Int)
    /// An argument out of range (channel count, pre-skip, rate).
    case badArgument(String)
    /// The writer was already closed.
    case closed
    /// libogg reported an internal error.
    case ogg(String)

    public var description: String {
        switch self {
        case .io(let path, let errno): "ogg opus: I/O error on \(path) (errno \(errno))"
        case .notOgg: "ogg opus: not an Ogg stream"
        case .badOpusHead(let why): "ogg opus: bad OpusHead: \(why)"
        case .badOpusTags(let why): "ogg opus: bad OpusTags: \(why)"
        case .truncatedHeaders: "ogg opus: the file ends before its OpusHead and OpusTags"
        case .badPacket(let count): "ogg opus: not a valid Opus packet (\(count) bytes)"
        case .badArgument(let why): "ogg opus: \(why)"
        case .closed: "ogg opus: writer already closed"
        case .ogg(let why): "ogg opus: libogg: \(why)"
        }
    }
}

/// The identification header of an Ogg Opus stream (RFC 7845 section 5.1).
public struct OpusHead: Sendable, Hashable {
    /// The version byte; 1 when writing. Readers accept any version whose upper nibble is 0.
    public var version: UInt8
    /// Output channel count, 1…255 (1 or 2 for mapping family 0).
    public var channels: Int
    /// Samples (at 48 kHz) to discard from the decoder output at the start.
    public var preSkip: Int
    /// The sample rate of the original input (informational only; 0 = unspecified).
    public var inputSampleRate: Int
    /// Output gain in Q7.8 dB.
    public var outputGain: Int16
    /// Channel mapping family: 0 (mono/stereo, RTP order), 1 (Vorbis order), 255.
    public var mappingFamily: UInt8
    /// For mapping families other than 0: stream count, coupled count and mapping table.
    public var channelMappingTable: [UInt8]

    /// The pre-skip libopus encoders use at 48 kHz: 312 samples (6.5 ms).
    public static let defaultPreSkip = 312

    public init(
        channels: Int = 1, preSkip: Int = OpusHead.defaultPreSkip, inputSampleRate: Int = 48_000,
        outputGain: Int16 = 0, mappingFamily: UInt8 = 0, channelMappingTable: [UInt8] = [], version: UInt8 = 1
    ) {
        self.version = version
        self.channels = channels
        self.preSkip = preSkip
        self.inputSampleRate = inputSampleRate
        self.outputGain = outputGain
        self.mappingFamily = mappingFamily
        self.channelMappingTable = channelMappingTable
    }

    /// Parses an `OpusHead` packet.
    public init(parsing bytes: [UInt8]) throws(OggOpusError) {
        guard bytes.count >= 19 else { throw .badOpusHead("\(bytes.count) bytes, at least 19 needed") }
        guard Array(bytes[0..<8]) == Array("OpusHead".utf8) else { throw .badOpusHead("no OpusHead magic") }
        version = bytes[8]
        guard version & 0xF0 == 0 else { throw .badOpusHead("unsupported version \(version)") }
        channels = Int(bytes[9])
        guard channels > 0 else { throw .badOpusHead("zero channels") }
        preSkip = Int(bytes[10]) | Int(bytes[11]) << 8
        inputSampleRate = Int(UInt32(bytes[12]) | UInt32(bytes[13]) << 8 | UInt32(bytes[14]) << 16 | UInt32(bytes[15]) << 24)
        outputGain = Int16(bitPattern: UInt16(bytes[16]) | UInt16(bytes[17]) << 8)
        mappingFamily = bytes[18]
        if mappingFamily == 0 {
            guard channels <= 2 else { throw .badOpusHead("mapping family 0 with \(channels) channels") }
            channelMappingTable = []
        } else {
            guard bytes.count >= 21 + channels else { throw .badOpusHead("channel mapping table truncated") }
            channelMappingTable = Array(bytes[19..<21 + channels])
        }
    }

    /// The `OpusHead` packet.
    public var encoded: [UInt8] {
        var bytes = Array("OpusHead".utf8)
        bytes.append(version)
        bytes.append(UInt8(truncatingIfNeeded: channels))
        appendLittleEndian(UInt16(truncatingIfNeeded: preSkip), to: &bytes)
        appendLittleEndian(UInt32(truncatingIfNeeded: inputSampleRate), to: &bytes)
        appendLittleEndian(UInt16(bitPattern: outputGain), to: &bytes)
        bytes.append(mappingFamily)
        if mappingFamily != 0 { bytes += channelMappingTable }
        return bytes
    }
}

/// The comment header of an Ogg Opus stream (RFC 7845 section 5.2).
public struct OpusTags: Sendable, Hashable {
    /// The encoder's vendor string.
    public var vendor: String
    /// User comments, normally `KEY=value`.
    public var comments: [String]

    public init(vendor: String = "airwave", comments: [String] = []) {
        self.vendor = vendor
        self.comments = comments
    }

    /// Parses an `OpusTags` packet (UTF-8 is decoded leniently).
    public init(parsing bytes: [UInt8]) throws(OggOpusError) {
        guard bytes.count >= 16, Array(bytes[0..<8]) == Array("OpusTags".utf8) else {
            throw .badOpusTags("no OpusTags magic")
        }
        var offset = 8
        func u32() throws(OggOpusError) -> Int {
            guard bytes.count - offset >= 4 else { throw .badOpusTags("truncated length at byte \(offset)") }
            let value = Int(UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8
                | UInt32(bytes[offset + 2]) << 16 | UInt32(bytes[offset + 3]) << 24)
            offset += 4
            return value
        }
        func string() throws(OggOpusError) -> String {
            let length = try u32()
            guard bytes.count - offset >= length else { throw .badOpusTags("string of \(length) bytes runs past the end") }
            defer { offset += length }
            return String(decoding: bytes[offset..<offset + length], as: UTF8.self)
        }
        vendor = try string()
        let count = try u32()
        guard count <= (bytes.count - offset) / 4 else { throw .badOpusTags("\(count) comments cannot fit") }
        var comments: [String] = []
        for _ in 0..<count { comments.append(try string()) }
        self.comments = comments
    }

    /// The `OpusTags` packet.
    public var encoded: [UInt8] {
        var bytes = Array("OpusTags".utf8)
        let vendorBytes = Array(vendor.utf8)
        appendLittleEndian(UInt32(vendorBytes.count), to: &bytes)
        bytes += vendorBytes
        appendLittleEndian(UInt32(comments.count), to: &bytes)
        for comment in comments {
            let commentBytes = Array(comment.utf8)
            appendLittleEndian(UInt32(commentBytes.count), to: &bytes)
            bytes += commentBytes
        }
        return bytes
    }
}

func appendLittleEndian(_ value: UInt16, to bytes: inout [UInt8]) {
    bytes += [UInt8(value & 0xFF), UInt8(value >> 8)]
}

func appendLittleEndian(_ value: UInt32, to bytes: inout [UInt8]) {
    bytes += [UInt8(value & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value >> 16 & 0xFF), UInt8(value >> 24)]
}
