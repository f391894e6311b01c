/// Which speaker each audio track of a per-speaker WHEP listener (`?audio=speakers`) carries.
///
/// A speaker (an event source id) takes the lowest free track with its first packet and keeps
/// it until it stops speaking (`release`: muted, demoted, gone). With every track taken, a new
/// speaker takes the track whose speaker has sent nothing for `idleTakeover` (the longest idle
/// first); otherwise it is not heard on this session until a track frees. A track without a
/// speaker sends nothing. Pure and deterministic: time is an input.
public struct SpeakerTrackAssignment: Sendable {
    /// How long a track's speaker must have been silent before a speaker without a track may
    /// take it over.
    public var idleTakeover: Duration
    /// The source id on each track, nil while it is free.
    public private(set) var sources: [UInt32?]
    /// When each track last carried a packet.
    private var lastPacketAt: [ContinuousClock.Instant?]

    /// `tracks` tracks, all free.
    public init(tracks: Int, idleTakeover: Duration = .seconds(2)) {
        precondition(tracks > 0)
        self.idleTakeover = idleTakeover
        sources = Array(repeating: nil, count: tracks)
        lastPacketAt = Array(repeating: nil, count: tracks)
    }

    /// The track a packet of `source` goes out on at `now`, assigning one if needed; nil when
    /// every track is taken by a speaker heard within `idleTakeover`.
    public mutating func track(for source: UInt32, now: ContinuousClock.Instant) -> Int? {
        let track: Int
        if let held = sources.firstIndex(of: source) {
            track = held
        } else if let free = sources.firstIndex(of: nil) {
            track = free
        } else {
            // Tracks are few (at most 8): a scan is cheaper than keeping an order.
            var idlest: (track: Int, at: ContinuousClock.Instant)?
            for (index, at) in lastPacketAt.enumerated() {
                guard let at, now - at >= idleTakeover else { continue }
                if idlest == nil || at < idlest!.at { idlest = (index, at) }
            }
            guard let idlest else { return nil }
            track = idlest.track
        }
        sources[track] = source
        lastPacketAt[track] = now
        return track
    }

    /// `source` stopped speaking: its track is free.
    public mutating func release(_ source: UInt32) {
        guard let track = sources.firstIndex(of: source) else { return }
        sources[track] = nil
        lastPacketAt[track] = nil
    }
}
