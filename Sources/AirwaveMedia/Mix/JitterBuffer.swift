/// The small jitter buffer of one speaker in the event mix: reorders packets by their 48 kHz
/// timestamp, holds back the start of a talk spurt for ``Configuration/delayFrames`` mixer
/// ticks so that a little network jitter does not cut the audio, and says for every piece of
/// playout what to do: decode this packet, conceal a gap, or nothing (the speaker is silent).
///
/// Sans-IO: time is the mixer's tick count (one tick = 20 ms); it holds no decoder. Memory is
/// bounded by ``Configuration/capacity`` packets whatever a client sends.
public struct JitterBuffer: Sendable {
    /// Tuning of the buffer.
    public struct Configuration: Sendable, Hashable {
        /// Ticks (20 ms each) a talk spurt waits before playout, unless that much audio is
        /// already buffered: 2 = 40 ms.
        public var delayFrames: Int
        /// Frames concealed after the last packet before the speaker counts as silent
        /// (the end of a talk spurt, or a late packet that never comes): 3 = 60 ms.
        public var maximumConcealedFrames: Int
        /// Packets held at most; the oldest is dropped beyond it.
        public var capacity: Int
        /// A packet this many samples ahead of the playout point restarts playout there
        /// (the speaker's clock jumped): 48 000 = 1 s.
        public var resyncSamples: Int

        public init(delayFrames: Int = 2, maximumConcealedFrames: Int = 3, capacity: Int = 25, resyncSamples: Int = 48_000) {
            self.delayFrames = delayFrames
            self.maximumConcealedFrames = maximumConcealedFrames
            self.capacity = capacity
            self.resyncSamples = resyncSamples
        }
    }

    /// What the mixer must do to get the next samples of this speaker.
    public enum Step: Sendable, Hashable {
        /// Decode this packet; its samples come next.
        case decode([UInt8])
        /// A packet is missing: conceal this many samples (a multiple of 120) with PLC.
        case conceal(Int)
        /// The speaker is not playing: it contributes silence to this tick.
        case idle
    }

    /// What became of a pushed packet.
    public enum PushResult: Sendable, Hashable {
        case accepted
        /// Its timestamp is behind the playout point: it came too late and is dropped.
        case late
        /// A packet with the same timestamp is already buffered.
        case duplicate
        /// Accepted, and the oldest buffered packet was dropped to stay within capacity.
        case overflow
    }

    struct Entry: Sendable {
        var timestamp: UInt32
        var samples: Int
        var payload: [UInt8]
        var arrivalTick: Int
    }

    public let configuration: Configuration
    /// Buffered packets, ordered by timestamp.
    private(set) var entries: [Entry] = []
    /// True while a talk spurt plays.
    public private(set) var isPlaying = false
    /// The timestamp of the next sample to play (meaningful while playing).
    public private(set) var playoutTimestamp: UInt32 = 0
    private var concealedRun = 0

    public init(configuration: Configuration = .init()) {
        self.configuration = configuration
    }

    /// Packets waiting.
    public var count: Int { entries.count }

    /// The signed distance from `b` to `a` on the wrapping 32-bit clock.
    static func distance(_ a: UInt32, from b: UInt32) -> Int { Int(Int32(bitPattern: a &- b)) }

    /// Adds a packet of `samples` samples (48 kHz) stamped `timestamp`, arrived at `tick`.
    @discardableResult
    public mutating func push(_ payload: [UInt8], timestamp: UInt32, samples: Int, tick: Int) -> PushResult {
        if isPlaying {
            let ahead = Self.distance(timestamp, from: playoutTimestamp)
            if ahead < 0 { return .late }
            if ahead > configuration.resyncSamples {
                // The speaker's clock jumped (a new stream, a long pause without packets): start over.
                entries.removeAll()
                isPlaying = false
            }
        }
        let reference = entries.first?.timestamp ?? timestamp
        let position = Self.distance(timestamp, from: reference)
        var index = entries.count
        while index > 0 {
            let other = Self.distance(entries[index - 1].timestamp, from: reference)
            if other == position { return .duplicate }
            if other < position { break }
            index -= 1
        }
        entries.insert(Entry(timestamp: timestamp, samples: samples, payload: payload, arrivalTick: tick), at: index)
        guard entries.count > configuration.capacity else { return .accepted }
        let dropped = entries.removeFirst()
        if isPlaying, Self.distance(dropped.timestamp, from: playoutTimestamp) >= 0, let first = entries.first {
            playoutTimestamp = first.timestamp
        }
        return .overflow
    }

    /// The next step of playout at `tick`. Call it again after each `decode`/`conceal` while
    /// the mixer still needs samples for this tick; `idle` means the rest of the tick is silence.
    public mutating func next(tick: Int) -> Step {
        if !isPlaying {
            guard let first = entries.first else { return .idle }
            let buffered = entries.reduce(0) { $0 + $1.samples }
            guard buffered >= configuration.delayFrames * 960 || tick - first.arrivalTick >= configuration.delayFrames else {
                return .idle
            }
            isPlaying = true
            playoutTimestamp = first.timestamp
            concealedRun = 0
        }
        while let first = entries.first, Self.distance(first.timestamp, from: playoutTimestamp) < 0 {
            entries.removeFirst()  // overlaps what was already played (a resent or odd-sized packet)
        }
        if let first = entries.first {
            let gap = Self.distance(first.timestamp, from: playoutTimestamp)
            if gap < 120 {
                // Due now (or stamped a fraction of a PLC step off): play it.
                entries.removeFirst()
                playoutTimestamp = first.timestamp &+ UInt32(first.samples)
                concealedRun = 0
                return .decode(first.payload)
            }
            let concealed = min(960, gap - gap % 120)
            playoutTimestamp &+= UInt32(concealed)
            concealedRun += 1
            return .conceal(concealed)
        }
        if concealedRun < configuration.maximumConcealedFrames {
            concealedRun += 1
            playoutTimestamp &+= 960
            return .conceal(960)
        }
        isPlaying = false
        return .idle
    }

    /// Forgets every packet and stops playout (the speaker was muted, demoted or left).
    public mutating func clear() {
        entries.removeAll()
        isPlaying = false
        concealedRun = 0
    }
}
