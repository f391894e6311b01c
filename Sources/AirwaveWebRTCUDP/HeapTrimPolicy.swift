/// When a shard gives freed heap back to the kernel (`malloc_trim`): after a join storm every
/// session's DTLS connection (about 77 KB during the handshake) is freed 10 s later, but glibc
/// keeps the freed pages in its arenas, so the process would stay at the storm's peak. Trimming
/// walks every arena, so it runs only after at least `minimumReleases` sessions released their
/// connection, and at most once per `interval`.
struct HeapTrimPolicy {
    let minimumReleases: Int
    let interval: Duration
    private var releasedSinceTrim = 0
    private var lastTrim: ContinuousClock.Instant?

    init(minimumReleases: Int = 64, interval: Duration = .seconds(10)) {
        self.minimumReleases = minimumReleases
        self.interval = interval
    }

    /// Counts sessions that released their DTLS connection.
    mutating func released(_ count: Int) {
        releasedSinceTrim += count
    }

    /// Whether to trim now; if so, counts from zero again.
    mutating func shouldTrim(now: ContinuousClock.Instant) -> Bool {
        guard releasedSinceTrim >= minimumReleases else { return false }
        if let lastTrim, now < lastTrim + interval { return false }
        releasedSinceTrim = 0
        lastTrim = now
        return true
    }
}
