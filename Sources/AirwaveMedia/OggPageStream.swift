/// Builds a live Ogg Opus stream (RFC 7845) in memory, page by page, for listeners who join at
/// any time: the two header pages are made once (``headerPages``), then ``append(_:samples:)``
/// returns a complete page every ``packetsPerPage`` packets, and ``endPage()`` is the page that
/// ends the stream where it stands. Each page is one `[UInt8]` that the caller can send to every
/// listener unchanged.
///
/// - A listener who joins late gets the header pages, then the next page: the page sequence
///   numbers jump (Icecast's live Ogg streams do the same) and the first page's granule position
///   is not zero, which RFC 7845 section 4.3 allows for a stream that starts mid-way.
/// - Granule positions count the samples of every packet appended, from 0. The event mix's
///   encoder delays its output by its look-ahead, which is the header's pre-skip (as
///   ``MixRecorder`` writes it), so a page's granule is the number of samples decoded up to it.
/// - Pages are cut on packet boundaries only and never hold more than 255 lacing values.
///
/// Sans-IO and deterministic (the serial number is an argument); one stream per event output,
/// used from one task.
public struct OggPageStream: Sendable {
    /// The Ogg logical stream's serial number.
    public let serialNumber: UInt32
    /// Audio packets per page: 10 packets of 20 ms make pages of 200 ms.
    public let packetsPerPage: Int
    /// `OpusHead` alone on the first page (beginning of stream), `OpusTags` on the second.
    public let headerPages: [UInt8]
    /// Samples (48 kHz) of every packet appended so far.
    public private(set) var granulePosition: Int64 = 0
    /// Audio pages made so far (the end page not included).
    public private(set) var audioPageCount = 0

    private var pending: [[UInt8]] = []
    private var pendingSegments = 0
    /// The next page's sequence number (0 and 1 are the header pages).
    private var sequence: UInt32 = 2

    /// Makes the stream and its header pages.
    /// - Parameters:
    ///   - serialNumber: the stream's serial number (random per stream in practice).
    ///   - head: the `OpusHead` (mono, the mixer's pre-skip by default).
    ///   - tags: the `OpusTags`.
    ///   - packetsPerPage: audio packets on one page, 1…255.
    public init(serialNumber: UInt32, head: OpusHead = OpusHead(channels: 1), tags: OpusTags = OpusTags(vendor: "airwave"),
                packetsPerPage: Int = 10) {
        precondition((1...255).contains(packetsPerPage), "packetsPerPage must be 1…255")
        self.serialNumber = serialNumber
        self.packetsPerPage = packetsPerPage
        var headers = Self.page([head.encoded], granule: 0, serial: serialNumber, sequence: 0, flags: Self.beginningOfStream)
        headers += Self.page([tags.encoded], granule: 0, serial: serialNumber, sequence: 1, flags: 0)
        headerPages = headers
    }

    /// Appends one Opus packet of `samples` 48 kHz samples; returns the page it completes, if any.
    public mutating func append(_ packet: [UInt8], samples: Int) -> [UInt8]? {
        let segments = Self.lacingCount(packet.count)
        var completed: [UInt8]?
        if pendingSegments + segments > 255 { completed = flush(flags: 0) }
        pending.append(packet)
        pendingSegments += segments
        granulePosition += Int64(max(0, samples))
        if pending.count >= packetsPerPage { completed = (completed ?? []) + flush(flags: 0) }
        return completed
    }

    /// The page that ends the stream now: the packets not yet on a page, with the end-of-stream
    /// flag. At a page boundary it holds one 20 ms TOC-only packet (a zero-length frame that
    /// decoders conceal), so the flag always sits on a packet as demuxers expect. Does not change
    /// the stream, so every listener closed at this point gets the same bytes.
    public func endPage() -> [UInt8] {
        if pending.isEmpty {
            return Self.page([[Self.concealedFrame]], granule: granulePosition + 960, serial: serialNumber, sequence: sequence,
                             flags: Self.endOfStream)
        }
        return Self.page(pending, granule: granulePosition, serial: serialNumber, sequence: sequence, flags: Self.endOfStream)
    }

    /// CELT fullband, 20 ms, mono, code 0 and no frame data.
    static let concealedFrame: UInt8 = 0xF8

    private mutating func flush(flags: UInt8) -> [UInt8] {
        let page = Self.page(pending, granule: granulePosition, serial: serialNumber, sequence: sequence, flags: flags)
        sequence &+= 1
        audioPageCount += 1
        pending.removeAll(keepingCapacity: true)
        pendingSegments = 0
        return page
    }

    // MARK: - Page format (RFC 3533 section 6)

    static let beginningOfStream: UInt8 = 0x02
    static let endOfStream: UInt8 = 0x04

    /// Lacing values a packet of `length` bytes takes: 255s, then the remainder (0 included).
    static func lacingCount(_ length: Int) -> Int { length / 255 + 1 }

    /// One page holding `packets` whole, granule position `granule`.
    static func page(_ packets: [[UInt8]], granule: Int64, serial: UInt32, sequence: UInt32, flags: UInt8) -> [UInt8] {
        var lacing: [UInt8] = []
        var bodyLength = 0
        for packet in packets {
            lacing += [UInt8](repeating: 255, count: packet.count / 255)
            lacing.append(UInt8(packet.count % 255))
            bodyLength += packet.count
        }
        precondition(lacing.count <= 255, "an Ogg page holds at most 255 lacing values")
        var page: [UInt8] = []
        page.reserveCapacity(27 + lacing.count + bodyLength)
        page += Array("OggS".utf8)
        page.append(0)  // stream structure version
        page.append(flags)
        page += littleEndian(UInt64(bitPattern: granule))
        page += littleEndian(serial)
        page += littleEndian(sequence)
        page += [0, 0, 0, 0]  // CRC, filled in below
        page.append(UInt8(lacing.count))
        page += lacing
        for packet in packets { page += packet }
        let crc = OggCRC.checksum(page)
        page.replaceSubrange(22..<26, with: littleEndian(crc))
        return page
    }

    private static func littleEndian<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        (0..<(T.bitWidth / 8)).map { UInt8(truncatingIfNeeded: value >> ($0 * 8)) }
    }
}

/// The Ogg page checksum: CRC-32 with polynomial 0x04C11DB7, initial value 0, no reflection.
enum OggCRC {
    private static let table: [UInt32] = (0..<256).map { index in
        var r = UInt32(index) << 24
        for _ in 0..<8 { r = r & 0x8000_0000 != 0 ? (r << 1) ^ 0x04C1_1DB7 : r << 1 }
        return r
    }

    static func checksum(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0
        for byte in bytes {
            crc = (crc << 8) ^ table[Int(((crc >> 24) ^ UInt32(byte)) & 0xFF)]
        }
        return crc
    }
}
