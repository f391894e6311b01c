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
