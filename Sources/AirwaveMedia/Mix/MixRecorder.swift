import COgg

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes the event mix (``AudioMixer``'s full output) to an Ogg Opus file as it is produced.
///
/// - Granule positions count decoded samples, as RFC 7845 wants: the mixer's encoder delays its
///   output by its look-ahead (312 samples), which is the file's pre-skip, so the first packet
///   adds only 960 − 312 samples beyond the pre-skip and every page's granule is the number of
///   samples decoded up to it. Playback length = packets × 20 ms − 6.5 ms.
/// - Durability: a page reaches the disk at least every ``pageDuration`` samples (200 ms), in one
///   `write(2)`, so a crash leaves a file readable up to its last page.
/// - A recording stopped before any packet still gets one (concealed) packet and its
///   end-of-stream page.
///
/// Not thread-safe: one recorder per file, used from the event's driver task.
public final class MixRecorder {
    /// The encoder look-ahead of ``AudioMixer``'s encoders at 48 kHz, written as pre-skip.
    public static let preSkip = OpusHead.defaultPreSkip
    /// The longest stretch kept in memory before a page is written: 9 600 samples (200 ms).
    public static let pageDuration = 9_600

    private let writer: OggOpusWriter
    /// The file written.
    public var path: String { writer.path }
    /// Packets written so far.
    public var packetCount: Int { writer.packetCount }
    /// The granule position after the last packet: decoded samples, pre-skip included.
    public var granulePosition: Int64 { writer.granulePosition }

    /// Creates (or truncates) the file and writes the headers.
    public init(path: String, comments: [String] = []) throws(OggOpusError) {
        writer = try OggOpusWriter(
            path: path, head: OpusHead(channels: 1, preSkip: Self.preSkip), tags: OpusTags(vendor: "airwave", comments: comments),
            maximumPageDuration: Self.pageDuration)
    }

    /// Appends one 20 ms packet of the mix.
    public func write(_ packet: [UInt8]) throws(OggOpusError) {
        let samples = writer.packetCount == 0 ? AudioMixer.frameSamples - Self.preSkip : AudioMixer.frameSamples
        try writer.write(packet, samplesPerChannel: samples)
    }

    /// Finishes the file (end-of-stream page).
    public func close() throws(OggOpusError) {
        if writer.packetCount == 0 {
            // A TOC-only packet (decoders conceal it as silence) so the stream has an end.
            try writer.write([0xF8], samplesPerChannel: AudioMixer.frameSamples - Self.preSkip)
        }
        try writer.close()
    }
}

@available(*, unavailable, message: "a MixRecorder belongs to one task")
extension MixRecorder: Sendable {}

extension MixRecorder {
    /// The longest an Ogg page can be: header, 255 lacing values, 255 segments of 255 bytes.
    static let maximumPageLength = 27 + 255 + 255 * 255

    /// The playable length of a recording in milliseconds: the granule position of its last
    /// complete page minus the pre-skip, or nil for a file that is not Ogg Opus.
    ///
    /// Reads the headers and at most one page's worth of the file's end (the last page holds
    /// the final granule position), so listing recordings costs the same for long and short
    /// ones; a page cut short by a crash is skipped (libogg checks each page's CRC).
    public static func durationMilliseconds(ofFileAt path: String) -> Int? {
        guard let preSkip = try? OggOpusReader(path: path).head.preSkip else { return nil }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { closeDescriptor(fd) }
        let size = lseek(fd, 0, SEEK_END)
        guard size > 0 else { return nil }
        let start = max(0, size - off_t(maximumPageLength))
        let length = Int(size - start)
        var tail = [UInt8](repeating: 0, count: length)
        let read = tail.withUnsafeMutableBytes { pread(fd, $0.baseAddress, length, start) }
        guard read > 0 else { return nil }
        var last = Int64(preSkip)
        var sync = ogg_sync_state()
        ogg_sync_init(&sync)
        defer { ogg_sync_clear(&sync) }
        guard let buffer = ogg_sync_buffer(&sync, read) else { return nil }
        tail.withUnsafeBytes { bytes in
            buffer.update(from: bytes.bindMemory(to: CChar.self).baseAddress!, count: read)
        }
        ogg_sync_wrote(&sync, read)
        var page = ogg_page()
        // pageout skips the bytes before the first page boundary (-1) and returns whole pages (1).
        while true {
            let status = ogg_sync_pageout(&sync, &page)
            if status == 0 { break }
            if status < 0 { continue }
            let granule = ogg_page_granulepos(&page)
            if granule >= 0 { last = granule }
        }
        return Int(max(0, last - Int64(preSkip)) / 48)
    }
}

/// `close(2)`, which `MixRecorder.close()` hides inside the type.
private func closeDescriptor(_ fd: Int32) { _ = close(fd) }
