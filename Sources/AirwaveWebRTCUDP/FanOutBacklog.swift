/// How many fan-outs (one media packet for a shard's listeners) may wait for a shard's event
/// loop. Past the bound a new one is dropped instead of queued: a loop that falls behind (its
/// core shared with more work than it can do) then sends fresh media again as soon as it
/// catches up, instead of seconds of stale packets, and between two fan-outs it still reads its
/// socket, so consent checks and handshakes are answered and no session expires because media
/// was late. Locked by its shard: admitted on the sending thread, finished on the loop.
struct FanOutBacklog {
    /// Fan-outs that may wait at once.
    let limit: Int
    /// Fan-outs admitted and not started yet.
    private(set) var waiting = 0
    /// Datagrams of dropped fan-outs not yet counted by the shard.
    private(set) var unreportedDrops = 0

    init(limit: Int) {
        self.limit = max(1, limit)
    }

    /// Whether a fan-out of `datagrams` datagrams may wait; if not, they count as dropped.
    mutating func admit(datagrams: Int) -> Bool {
        guard waiting < limit else {
            unreportedDrops += datagrams
            return false
        }
        waiting += 1
        return true
    }

    /// An admitted fan-out starts on the loop.
    mutating func started() {
        waiting -= 1
    }

    /// The drops since the last call.
    mutating func takeDrops() -> Int {
        defer { unreportedDrops = 0 }
        return unreportedDrops
    }
}
