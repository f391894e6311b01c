import COgg
import COpus

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes an Ogg Opus file (RFC 7845) through libogg: `OpusHead` alone on the first page
/// (beginning of stream), `OpusTags` on the next page(s), then the audio packets.
///
/// - Granule positions: every packet's granule is the pre-skip plus the 48 kHz samples of all
///   packets up to and including it (as RFC 7845 section 4 requires); libogg stamps each page
///   with the granule of the last packet that ends on it. ``close(endTrim:)`` can lower the
///   final granule to trim encoder padding at the end.
/// - Durability: pages are written to the file as soon as libogg emits them, and a page is
///   forced at least every ``maximumPageDuration`` samples (1 s by default), so a process that
///   dies leaves a file that is readable up to its last complete page. The most recent packet
///   is held back until the next one (or ``close(endTrim:)``) so that it can carry the
///   end-of-stream flag.
/// - Gaps: ``writeLoss(samplesPerChannel:)`` fills a gap with 20 ms zero-length-frame Opus
///   packets (a bare TOC byte, which decoders conceal), keeping the timeline.
///
/// Not thread-safe: one writer per file, used from one task.
public final class OggOpusWriter {
    /// The identification header written.
    public let head: OpusHead
    /// The path written to (for messages).
    public let path: String
    /// The longest stretch of audio (48 kHz samples) kept in memory before a page is forced.
    public let maximumPageDuration: Int
    /// The granule position after the last packet handed to ``write(_:samplesPerChannel:)``:
    /// pre-skip plus every packet's samples.
    public private(set) var granulePosition: Int64
    /// Audio packets accepted so far (loss-filler packets included).
    public private(set) var packetCount = 0
    /// True once ``close(endTrim:)`` ran.
    public private(set) var isClosed = false

    private var fd: Int32
    private let stream: UnsafeMutablePointer<ogg_stream_state>
    private var pending: (bytes: [UInt8], granule: Int64)?
    private var lastPageGranule: Int64
    private var packetNumber: Int64 = 0

    /// Creates (or truncates) `path` and writes the two header packets.
    /// - Parameters:
    ///   - path: the file to write.
    ///   - head: the `OpusHead`; its channel count should match the packets'.
    ///   - tags: the `OpusTags`.
    ///   - serialNumber: the Ogg stream serial number; random by default.
    ///   - maximumPageDuration: force a page after this many 48 kHz samples (48 000 = 1 s).
    /// - Throws: ``OggOpusError``.
    public init(
        path: String,
        head: OpusHead = OpusHead(),
        tags: OpusTags = OpusTags(),
        serialNumber: Int32 = Int32.random(in: 1...Int32.max),
        maximumPageDuration: Int = 48_000
    ) throws(OggOpusError) {
        guard (1...255).contains(head.channels), head.mappingFamily != 0 || head.channels <= 2 else {
            throw .badArgument("unsupported channel count \(head.channels)")
        }
        guard (0...65_535).contains(head.preSkip) else { throw .badArgument("pre-skip \(head.preSkip) out of range") }
        guard maximumPageDuration > 0 else { throw .badArgument("maximumPageDuration must be positive") }
        self.head = head
        self.path = path
        self.maximumPageDuration = maximumPageDuration
        granulePosition = Int64(head.preSkip)
        lastPageGranule = Int64(head.preSkip)
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw .io(path: path, errno: errno)
        }
        stream = .allocate(capacity: 1)
        guard ogg_stream_init(stream, serialNumber) == 0 else {
            stream.deallocate()
            _ = posixClose(fd)
            throw .ogg("ogg_stream_init failed")
        }
        do throws(OggOpusError) {
            // OpusHead must sit alone on the first page; OpusTags ends its own page(s).
            try submit(head.encoded, granule: 0, beginning: true, end: false)
            try flushPages()
            try submit(tags.encoded, granule: 0, beginning: false, end: false)
            try flushPages()
        } catch {
            ogg_stream_clear(stream)
            stream.deallocate()
            _ = posixClose(fd)
            throw error
        }
    }

    deinit {
        if !isClosed {
            try? close()
        }
        stream.deallocate()
    }

    /// Appends one Opus packet.
    /// - Parameters:
    ///   - packet: one Opus packet (RFC 6716).
    ///   - samplesPerChannel: its duration in 48 kHz samples; read from the packet's TOC when
    ///     `nil`.
    /// - Throws: ``OggOpusError/badPacket(byteCount:)`` when the duration cannot be read,
    ///   ``OggOpusError/io(path:errno:)`` when a page cannot be written.
    public func write(_ packet: [UInt8], samplesPerChannel: Int? = nil) throws(OggOpusError) {
        guard !isClosed else { throw .closed }
        let duration: Int
        if let samplesPerChannel {
            duration = samplesPerChannel
        } else {
            duration = Self.duration(of: packet)
            guard duration > 0 else { throw .badPacket(byteCount: packet.count) }
        }
        if let held = pending {
            pending = nil
            try submit(held.bytes, granule: held.granule, beginning: false, end: false)
        }
        granulePosition += Int64(max(0, duration))
        packetCount += 1
        pending = (packet, granulePosition)
        if granulePosition - lastPageGranule > Int64(maximumPageDuration) {
            // Everything submitted so far goes to disk; the held packet follows later.
            try flushPages()
        }
    }

    /// Fills `samplesPerChannel` samples of lost audio with 20 ms packets whose only byte is
    /// a TOC (a zero-length frame: decoders run packet loss concealment). A remainder under
    /// 20 ms is dropped. Returns the samples actually filled.
    @discardableResult
    public func writeLoss(samplesPerChannel: Int) throws(OggOpusError) -> Int {
        // Config 31 (CELT fullband 20 ms), code 0; stereo bit per the stream's layout.
        let toc: UInt8 = head.channels >= 2 ? 0xFC : 0xF8
        var filled = 0
        while samplesPerChannel - filled >= 960 {
            try write([toc], samplesPerChannel: 960)
            filled += 960
        }
        return filled
    }

    /// Writes the held packet with the end-of-stream flag, flushes the last page and closes
    /// the file. Calling it again does nothing.
    /// - Parameter endTrim: samples of encoder padding to trim from the end (lowers the final
    ///   granule position; RFC 7845 section 4.5). Never below the start of the last packet.
    public func close(endTrim: Int = 0) throws(OggOpusError) {
        guard !isClosed else { return }
        isClosed = true
        defer {
            ogg_stream_clear(stream)
            _ = posixClose(fd)
            fd = -1
        }
        if let held = pending {
            pending = nil
            let granule = max(held.granule - Int64(max(0, endTrim)), Int64(head.preSkip))
            try submit(held.bytes, granule: granule, beginning: false, end: true)
        }
        try flushPages()
    }

    /// The 48 kHz duration of an Opus packet from its TOC, or 0 when it cannot be read.
    public static func duration(of packet: [UInt8]) -> Int {
        guard !packet.isEmpty else { return 0 }
        let samples = packet.withUnsafeBufferPointer { buffer in
            opus_packet_get_nb_samples(buffer.baseAddress!, Int32(buffer.count), 48_000)
        }
        return samples > 0 ? Int(samples) : 0
    }

    // MARK: - libogg

    private func submit(_ bytes: [UInt8], granule: Int64, beginning: Bool, end: Bool) throws(OggOpusError) {
        var copy = bytes
        let status = copy.withUnsafeMutableBufferPointer { buffer -> Int32 in
            var packet = ogg_packet()
            packet.packet = buffer.baseAddress
            packet.bytes = buffer.count
            packet.b_o_s = beginning ? 1 : 0
            packet.e_o_s = end ? 1 : 0
            packet.granulepos = granule
            packet.packetno = packetNumber
            return ogg_stream_packetin(stream, &packet)
        }
        packetNumber += 1
        guard status == 0 else { throw .ogg("ogg_stream_packetin failed") }
        var page = ogg_page()
        while ogg_stream_pageout(stream, &page) != 0 {
            try writePage(page)
        }
    }

    private func flushPages() throws(OggOpusError) {
        var page = ogg_page()
        while ogg_stream_flush(stream, &page) != 0 {
            try writePage(page)
        }
    }

    private func writePage(_ page: ogg_page) throws(OggOpusError) {
        // Header and body in one write(2): a process killed mid-page leaves no half page behind.
        var bytes = [UInt8]()
        bytes.reserveCapacity(page.header_len + page.body_len)
        if let header = page.header { bytes.append(contentsOf: UnsafeBufferPointer(start: header, count: page.header_len)) }
        if let body = page.body { bytes.append(contentsOf: UnsafeBufferPointer(start: body, count: page.body_len)) }
        var failure: OggOpusError?
        bytes.withUnsafeMutableBufferPointer { buffer in
            do throws(OggOpusError) {
                try writeAll(buffer.baseAddress, count: buffer.count)
            } catch {
                failure = error
            }
        }
        if let failure { throw failure }
        var mutablePage = page
        let granule = ogg_page_granulepos(&mutablePage)
        if granule >= 0 { lastPageGranule = granule }
    }

    private func writeAll(_ pointer: UnsafeMutablePointer<UInt8>?, count: Int) throws(OggOpusError) {
        guard var pointer, count > 0 else { return }
        var remaining = count
        while remaining > 0 {
            let written = posixWrite(fd, pointer, remaining)
            if written < 0 {
                if errno == EINTR { continue }
                throw .io(path: path, errno: errno)
            }
            remaining -= written
            pointer += written
        }
    }
}

private func posixClose(_ fd: Int32) -> Int32 { close(fd) }
private func posixWrite(_ fd: Int32, _ pointer: UnsafeMutablePointer<UInt8>, _ count: Int) -> Int { write(fd, pointer, count) }

@available(*, unavailable, message: "an OggOpusWriter belongs to one task")
extension OggOpusWriter: Sendable {}
