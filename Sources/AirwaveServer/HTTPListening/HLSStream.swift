import AirwaveMedia
import Foundation
import NIOConcurrencyHelpers
import NIOCore

/// One event's HLS media playlist and its segments (PROTOCOL.md 9), as the HTTP routes serve
/// them: the event's driver adds segments (``HLSSegmenter``), any number of requests read them
/// under a lock without touching the event. Segments never change once listed; the last
/// ``listedSegments`` are listed (40 s), a few more stay fetchable for players that read an
/// older playlist.
final class HLSStream: Sendable {
    /// Segments listed in the playlist: 20 of 2 s, 40 s (PROTOCOL.md 9 asks for 30 s at least).
    static let listedSegments = 20
    /// Segments kept: a player that read a playlist just before it slid can still fetch them.
    static let keptSegments = 30

    struct Segment: Sendable {
        let number: Int
        /// Seconds.
        let duration: Double
        let bytes: ByteBuffer
    }

    private struct State {
        var segments: [Segment] = []
        var ended = false
        var playlist = ByteBuffer()
    }

    let eventID: String
    /// `init.mp4`.
    let initialization: ByteBuffer
    private let state = NIOLockedValueBox(State())

    init(eventID: String, head: OpusHead = OpusHead(channels: 1)) {
        self.eventID = eventID
        initialization = ByteBuffer(bytes: FragmentedMP4Writer.initializationSegment(head: head))
    }

    /// Lists a new segment (and forgets the oldest beyond what is kept).
    func add(_ segment: Segment) {
        state.withLockedValue { state in
            state.segments.append(segment)
            if state.segments.count > Self.keptSegments { state.segments.removeFirst(state.segments.count - Self.keptSegments) }
            state.playlist = Self.playlist(state)
        }
    }

    /// The event ended: `#EXT-X-ENDLIST`.
    func end() {
        state.withLockedValue { state in
            state.ended = true
            state.playlist = Self.playlist(state)
        }
    }

    var isEnded: Bool { state.withLockedValue(\.ended) }

    /// The playlist, or nil while no segment exists yet.
    var playlist: ByteBuffer? {
        state.withLockedValue { $0.segments.isEmpty ? nil : $0.playlist }
    }

    func segment(_ number: Int) -> ByteBuffer? {
        state.withLockedValue { state in state.segments.first { $0.number == number }?.bytes }
    }

    /// RFC 8216, version 7 (`EXT-X-MAP` in a media playlist): the sliding window, then
    /// `EXT-X-ENDLIST` once the event is over.
    private static func playlist(_ state: State) -> ByteBuffer {
        let listed = state.segments.suffix(listedSegments)
        let target = Int((listed.map(\.duration).max() ?? 2).rounded(.up))
        var text = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:\(target)\n"
        text += "#EXT-X-MEDIA-SEQUENCE:\(listed.first?.number ?? 0)\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"init.mp4\"\n"
        for segment in listed {
            text += "#EXTINF:\(String(format: "%.3f", segment.duration)),\n\(segment.number).m4s\n"
        }
        if state.ended { text += "#EXT-X-ENDLIST\n" }
        return ByteBuffer(string: text)
    }
}

/// The HLS streams of this process by event id. A stream outlives its event by
/// ``retention`` so that players (and caches) polling the playlist see `#EXT-X-ENDLIST` rather
/// than a 410.
final class HLSStreams: Sendable {
    static let shared = HLSStreams()
    /// How long an ended event's playlist and segments stay.
    static let retention: Duration = .seconds(60)

    private let streams = NIOLockedValueBox<[String: HLSStream]>([:])

    subscript(eventID: String) -> HLSStream? {
        streams.withLockedValue { $0[eventID] }
    }

    /// The event's stream, made if it has none; `made` says whether this call made it.
    func stream(for eventID: String) -> (stream: HLSStream, made: Bool) {
        streams.withLockedValue { streams in
            if let existing = streams[eventID] { return (existing, false) }
            let stream = HLSStream(eventID: eventID)
            streams[eventID] = stream
            return (stream, true)
        }
    }

    /// Forgets an ended event's stream after the retention.
    func retire(_ stream: HLSStream) {
        Task { [streams] in
            try? await Task.sleep(for: Self.retention)
            streams.withLockedValue { if $0[stream.eventID] === stream { $0[stream.eventID] = nil } }
        }
    }

    /// Forgets a stream whose event was never told about it (it had ended meanwhile).
    func remove(_ stream: HLSStream) {
        streams.withLockedValue { if $0[stream.eventID] === stream { $0[stream.eventID] = nil } }
    }
}

/// Cuts an output of the mix into HLS segments of ``packetsPerSegment`` packets (2 s), each
/// a fragmented MP4 built once, and ends the playlist when the event ends. Owned by
/// ``EventMix`` in the event's driver task.
struct HLSSegmenter {
    static let packetsPerSegment = 100
    let stream: HLSStream
    private var packets: [[UInt8]] = []
    private var number = 0
    /// 48 kHz samples before the segment being cut.
    private var baseTime: UInt64 = 0

    init(stream: HLSStream) {
        self.stream = stream
    }

    /// Takes one 20 ms packet; a completed segment is listed at once.
    mutating func append(_ packet: [UInt8]) {
        packets.append(packet)
        if packets.count >= Self.packetsPerSegment { cut() }
    }

    /// The event ended: what is left becomes the last segment, then `#EXT-X-ENDLIST`.
    mutating func end() {
        if !packets.isEmpty { cut() }
        stream.end()
        HLSStreams.shared.retire(stream)
    }

    private mutating func cut() {
        let samples = UInt32(AudioMixer.frameSamples)
        let bytes = FragmentedMP4Writer.mediaSegment(sequence: UInt32(number + 1), baseTime: baseTime, packets: packets, samplesPerPacket: samples)
        stream.add(HLSStream.Segment(number: number, duration: Double(packets.count) * Double(samples) / 48_000, bytes: ByteBuffer(bytes: bytes)))
        baseTime += UInt64(packets.count) * UInt64(samples)
        number += 1
        packets.removeAll(keepingCapacity: true)
    }
}
