/// An RTP packet (RFC 3550 §5.1), with its header extension and padding split off.
public struct RTPPacket: Equatable, Sendable {
    /// A header extension (RFC 3550 §5.3.1): the 16-bit profile word and its data, whose
    /// length is a multiple of four. RFC 8285 one-byte (0xBEDE) and two-byte (0x100x) element
    /// lists are inside `data`.
    public struct Extension: Equatable, Sendable {
        public var profile: UInt16
        public var data: [UInt8]

        public init(profile: UInt16, data: [UInt8]) {
            self.profile = profile
            self.data = data
        }
    }

    public var marker: Bool
    public var payloadType: UInt8
    public var sequenceNumber: UInt16
    public var timestamp: UInt32
    public var ssrc: UInt32
    public var csrcs: [UInt32]
    public var headerExtension: Extension?
    public var payload: [UInt8]
    /// Padding bytes to append when serialized (the count byte included); 0 for none.
    public var paddingCount: UInt8

    public init(marker: Bool = false, payloadType: UInt8, sequenceNumber: UInt16, timestamp: UInt32, ssrc: UInt32,
                csrcs: [UInt32] = [], headerExtension: Extension? = nil, payload: [UInt8], paddingCount: UInt8 = 0) {
        self.marker = marker
        self.payloadType = payloadType
        self.sequenceNumber = sequenceNumber
        self.timestamp = timestamp
        self.ssrc = ssrc
        self.csrcs = csrcs
        self.headerExtension = headerExtension
        self.payload = payload
        self.paddingCount = paddingCount
    }
}

/// Why bytes are not an RTP (or RTCP) packet.
public enum RTPError: Error, Equatable, Sendable {
    case tooShort
    case badVersion
    case truncatedCSRCs
    case truncatedExtension
    case badPadding
    case badLength
    case truncatedFeedback
}

extension RTPPacket {
    /// Offsets of the fixed header fields, for rewriting a packet in place.
    public static let sequenceNumberOffset = 2
    public static let timestampOffset = 4
    public static let ssrcOffset = 8

    /// Parses an RTP packet, checking the version, the CSRC count, the extension length and
    /// the padding count against the packet's size.
    public static func parse(_ bytes: ArraySlice<UInt8>) throws(RTPError) -> RTPPacket {
        var reader = ByteReader(bytes)
        guard let first = reader.readUInt8(), let second = reader.readUInt8(), let sequenceNumber = reader.readUInt16(),
              let timestamp = reader.readUInt32(), let ssrc = reader.readUInt32()
        else { throw .tooShort }
        guard first >> 6 == 2 else { throw .badVersion }
        let hasPadding = first & 0x20 != 0
        let hasExtension = first & 0x10 != 0
        var csrcs: [UInt32] = []
        for _ in 0..<Int(first & 0x0F) {
            guard let csrc = reader.readUInt32() else { throw .truncatedCSRCs }
            csrcs.append(csrc)
        }
        var headerExtension: Extension?
        if hasExtension {
            guard let profile = reader.readUInt16(), let words = reader.readUInt16(),
                  let data = reader.readBytes(Int(words) * 4)
            else { throw .truncatedExtension }
            headerExtension = Extension(profile: profile, data: Array(data))
        }
        var payloadLength = reader.remaining
        var paddingCount: UInt8 = 0
        if hasPadding {
            guard let last = bytes.last, last > 0, Int(last) <= payloadLength else { throw .badPadding }
            paddingCount = last
            payloadLength -= Int(last)
        }
        let payload = reader.readBytes(payloadLength).map(Array.init) ?? []
        return RTPPacket(
            marker: second & 0x80 != 0, payloadType: second & 0x7F, sequenceNumber: sequenceNumber,
            timestamp: timestamp, ssrc: ssrc, csrcs: csrcs, headerExtension: headerExtension,
            payload: payload, paddingCount: paddingCount)
    }

    public static func parse(_ bytes: [UInt8]) throws(RTPError) -> RTPPacket {
        try parse(bytes[...])
    }

    /// The packet's bytes. `reservingCapacity` extra bytes are reserved at the end (SRTP's
    /// authentication tag) so protecting it does not reallocate.
    public func serialized(reservingCapacity extra: Int = 0) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(12 + csrcs.count * 4 + (headerExtension.map { 4 + $0.data.count } ?? 0)
            + payload.count + Int(paddingCount) + extra)
        var first: UInt8 = 0x80 | UInt8(min(csrcs.count, 15))
        if paddingCount > 0 { first |= 0x20 }
        if headerExtension != nil { first |= 0x10 }
        bytes.append(first)
        bytes.append((marker ? 0x80 : 0) | (payloadType & 0x7F))
        bytes.appendUInt16(sequenceNumber)
        bytes.appendUInt32(timestamp)
        bytes.appendUInt32(ssrc)
        for csrc in csrcs.prefix(15) { bytes.appendUInt32(csrc) }
        if let headerExtension {
            var data = headerExtension.data
            data.padToFourBytes()
            bytes.appendUInt16(headerExtension.profile)
            bytes.appendUInt16(UInt16(truncatingIfNeeded: data.count / 4))
            bytes += data
        }
        bytes += payload
        if paddingCount > 0 {
            bytes += [UInt8](repeating: 0, count: Int(paddingCount) - 1)
            bytes.append(paddingCount)
        }
        return bytes
    }
}
