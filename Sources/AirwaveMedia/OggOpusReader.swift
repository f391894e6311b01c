import COgg

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One audio packet of an Ogg Opus stream.
public struct OggOpusPacket: Sendable, Hashable {
    /// The Opus packet (RFC 6716).
    public var bytes: [UInt8]
    /// Its duration in 48 kHz samples per channel, from the TOC byte (0 when unreadable).
    public var samplesPerChannel: Int
    /// The granule position of the page this packet ends, when it is the last packet to end
    /// on that page; `nil` otherwise (RFC 7845 only stamps pages).
    public var granulePosition: Int64?
    /// True for the last packet of the stream (end-of-stream page).
    public var isEndOfStream: Bool

    public init(bytes: [UInt8], samplesPerChannel: Int, granulePosition: Int64? = nil, isEndOfStream: Bool = false) {
        self.bytes = bytes
        self.samplesPerChannel = samplesPerChannel
        self.granulePosition = granulePosition
        self.isEndOfStream = isEndOfStream
    }

    /// Its duration in microseconds.
    public var durationMicroseconds: Int { samplesPerChannel * 125 / 6 }
}

/// Reads an Ogg Opus file (RFC 7845) through libogg, streaming: the headers on creation, then
/// the audio packets one by one, in order, with packets that span pages reassembled.
///
/// Only the first logical stream is read (a chained or multiplexed file's other streams are
/// skipped); a gap in the page sequence (lost or corrupt pages) is skipped over.
///
/// Not thread-safe: one reader per file, used from one task.
public final class OggOpusReader {
    /// The identification header.
    public private(set) var head: OpusHead
    /// The comment header.
    public private(set) var tags: OpusTags
    /// The stream's serial number.
    public private(set) var serialNumber: Int32 = 0
    /// Audio packets returned so far.
    public private(set) var packetCount = 0

    private enum Source {
        case file(Int32)
        case memory([UInt8], Int)
    }

    private var source: Source
    private let sync: UnsafeMutablePointer<ogg_sync_state>
    private let stream: UnsafeMutablePointer<ogg_stream_state>
    private var streamStarted = false
    private var endOfStream = false
    private var endOfInput = false
    private let path: String

    /// Opens `path` and reads the two header packets.
    /// - Throws: ``OggOpusError``.
    public convenience init(path: String) throws(OggOpusError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .io(path: path, errno: errno) }
        try self.init(source: .file(fd), path: path)
    }

    /// Reads an Ogg Opus file held in memory.
    /// - Throws: ``OggOpusError``.
    public convenience init(bytes: [UInt8]) throws(OggOpusError) {
        try self.init(source: .memory(bytes, 0), path: "<memory>")
    }

    private init(source: Source, path: String) throws(OggOpusError) {
        self.source = source
        self.path = path
        sync = .allocate(capacity: 1)
        stream = .allocate(capacity: 1)
        ogg_sync_init(sync)
        head = OpusHead()
        tags = OpusTags()
        guard let headPacket = try nextRawPacket() else {
            throw streamStarted ? .truncatedHeaders : .notOgg
        }
        head = try OpusHead(parsing: headPacket.bytes)
        guard let tagsPacket = try nextRawPacket() else { throw .truncatedHeaders }
        tags = try OpusTags(parsing: tagsPacket.bytes)
    }

    deinit {
        if streamStarted { ogg_stream_clear(stream) }
        ogg_sync_clear(sync)
        sync.deallocate()
        stream.deallocate()
        if case .file(let fd) = source { _ = close(fd) }
    }

    /// The next audio packet, or `nil` at the end of the stream.
    /// - Throws: ``OggOpusError/io(path:errno:)`` when reading fails.
    public func nextPacket() throws(OggOpusError) -> OggOpusPacket? {
        guard let raw = try nextRawPacket() else { return nil }
        packetCount += 1
        return OggOpusPacket(
            bytes: raw.bytes, samplesPerChannel: OggOpusWriter.duration(of: raw.bytes),
            granulePosition: raw.granule >= 0 ? raw.granule : nil, isEndOfStream: raw.end)
    }

    /// Every remaining audio packet.
    public func readAll() throws(OggOpusError) -> [OggOpusPacket] {
        var packets: [OggOpusPacket] = []
        while let packet = try nextPacket() { packets.append(packet) }
        return packets
    }

    /// Reads a whole file: headers and packets.
    public static func read(path: String) throws(OggOpusError) -> (head: OpusHead, tags: OpusTags, packets: [OggOpusPacket]) {
        let reader = try OggOpusReader(path: path)
        let packets = try reader.readAll()
        return (reader.head, reader.tags, packets)
    }

    // MARK: - libogg

    private func nextRawPacket() throws(OggOpusError) -> (bytes: [UInt8], granule: Int64, end: Bool)? {
        var packet = ogg_packet()
        while true {
            if streamStarted {
                let status = ogg_stream_packetout(stream, &packet)
                if status == 1 {
                    let bytes = packet.packet.map { Array(UnsafeBufferPointer(start: $0, count: packet.bytes)) } ?? []
                    return (bytes, packet.granulepos, packet.e_o_s != 0)
                }
                if status == -1 { continue } // a hole in the data: skip to the next packet
                if endOfStream { return nil }
            }
            var page = ogg_page()
            guard try nextPage(&page) else { return nil }
            if !streamStarted {
                guard ogg_page_bos(&page) != 0 else { continue }
                serialNumber = ogg_page_serialno(&page)
                guard ogg_stream_init(stream, serialNumber) == 0 else { throw .ogg("ogg_stream_init failed") }
                streamStarted = true
            }
            guard ogg_page_serialno(&page) == serialNumber else { continue }
            if ogg_page_eos(&page) != 0 { endOfStream = true }
            _ = ogg_stream_pagein(stream, &page)
        }
    }

    private func nextPage(_ page: inout ogg_page) throws(OggOpusError) -> Bool {
        while true {
            let status = ogg_sync_pageout(sync, &page)
            if status == 1 { return true }
            if status == -1 { continue } // skipped bytes while resynchronising
            if endOfInput { return false }
            try feed()
        }
    }

    private func feed() throws(OggOpusError) {
        let chunk = 65_536
        guard let buffer = ogg_sync_buffer(sync, chunk) else { throw .ogg("ogg_sync_buffer failed") }
        var count = 0
        switch source {
        case .file(let fd):
            while true {
                let n = posixRead(fd, buffer, chunk)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw .io(path: path, errno: errno)
                }
                count = n
                break
            }
        case .memory(let bytes, let offset):
            count = min(chunk, bytes.count - offset)
            if count > 0 {
                bytes.withUnsafeBufferPointer { source in
                    UnsafeMutableRawPointer(buffer).copyMemory(from: source.baseAddress! + offset, byteCount: count)
                }
            }
            self.source = .memory(bytes, offset + count)
        }
        if count == 0 { endOfInput = true }
        ogg_sync_wrote(sync, count)
    }
}

private func posixRead(_ fd: Int32, _ buffer: UnsafeMutablePointer<CChar>, _ count: Int) -> Int { read(fd, buffer, count) }

@available(*, unavailable, message: "an OggOpusReader belongs to one task")
extension OggOpusReader: Sendable {}
