import AirwaveProtocol

/// Who is talking and how loudly, for `active_speakers` (PROTOCOL.md 2.3): takes audio levels
/// per source (RFC 6464 style, 0 = 0 dBov … 127 = silence), smooths them (instant attack, slow
/// release), and hands out the list — loudest first — at most once per ``interval`` and only
/// when it changed.
///
/// Sans-IO: time is an input. A source whose last level is older than ``staleAfter`` counts as
/// silent, so a speaker who stops sending drops out of the list.
public struct ActiveSpeakerDetector: Sendable {
    /// One entry of the list: `level` 0…127, higher is louder (127 − the RFC 6464 value).
    public struct Entry: Sendable, Hashable {
        public var source: UInt32
        public var level: Int
    }

    /// Shortest time between two lists: 250 ms (at most 4 a second).
    public let interval: Duration
    /// A source without a level for this long is silent: 400 ms.
    public let staleAfter: Duration
    /// Levels below this (after smoothing) are not listed: 20, about −107 dBov.
    public let minimumLevel: Int

    private struct Smoothed: Sendable {
        var level: Double
        var updatedAt: Timestamp
    }

    private var sources: [UInt32: Smoothed] = [:]
    private var lastSent: [Entry] = []
    private var lastSentAt: Timestamp?

    public init(interval: Duration = .milliseconds(250), staleAfter: Duration = .milliseconds(400), minimumLevel: Int = 20) {
        self.interval = interval
        self.staleAfter = staleAfter
        self.minimumLevel = minimumLevel
    }

    /// Records a level of `source`: `rfc6464` is −dBov, 0 (loudest) … 127 (silence).
    public mutating func update(source: UInt32, rfc6464 value: UInt8, now: Timestamp) {
        let level = Double(127 - Int(min(value, 127)))
        if var current = sources[source], now - current.updatedAt < staleAfter {
            // Instant attack, release over a few packets (20 ms each: ~100 ms time constant).
            current.level = level >= current.level ? level : current.level + (level - current.level) * 0.2
            current.updatedAt = now
            sources[source] = current
        } else {
            sources[source] = Smoothed(level: level, updatedAt: now)
        }
    }

    /// Forgets a source at once (muted, demoted, gone); the next list leaves it out.
    public mutating func remove(source: UInt32) {
        sources[source] = nil
    }

    /// The list as it stands at `now`, loudest first (ties by source id).
    public func current(now: Timestamp) -> [Entry] {
        sources
            .filter { now - $0.value.updatedAt < staleAfter }
            .map { Entry(source: $0.key, level: Int($0.value.level.rounded())) }
            .filter { $0.level >= minimumLevel }
            .sorted { $0.level != $1.level ? $0.level > $1.level : $0.source < $1.source }
    }

    /// The list last sent: what everyone in the event currently believes. A joiner gets it, so
    /// it need not wait for the next change to see who is talking.
    public var announced: [Entry] { lastSent }

    /// The list to send now, if it changed and the interval allows; nil otherwise.
    public mutating func poll(now: Timestamp) -> [Entry]? {
        let list = current(now: now)
        guard list != lastSent else {
            pruneStale(now: now)
            return nil
        }
        if let lastSentAt, now - lastSentAt < interval { return nil }
        lastSent = list
        lastSentAt = now
        pruneStale(now: now)
        return list
    }

    /// When ``poll(now:)`` may have something: the end of the interval while a change waits,
    /// or the moment a listed source goes stale.
    public func nextDue(now: Timestamp) -> Timestamp? {
        if current(now: now) != lastSent {
            return max(now, lastSentAt.map { $0 + interval } ?? now)
        }
        return lastSent.compactMap { sources[$0.source].map { $0.updatedAt + staleAfter } }.min()
    }

    private mutating func pruneStale(now: Timestamp) {
        sources = sources.filter { now - $0.value.updatedAt < staleAfter }
    }
}
