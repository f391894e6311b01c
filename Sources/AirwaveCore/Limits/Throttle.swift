import AirwaveProtocol

/// Leading- and trailing-edge throttle: the first change goes out at once, later changes
/// within `interval` are coalesced into one at the end of the window.
public struct Throttle: Sendable, Hashable {
    /// The window; may change between fires (it applies from the last fire).
    public var interval: Duration
    private var lastFired: Timestamp?
    /// A change is waiting to go out.
    public private(set) var isPending = false

    public init(interval: Duration) { self.interval = interval }

    /// Notes that something changed.
    public mutating func markChanged() { isPending = true }

    /// When the pending change may go out, or nil if nothing is pending.
    public var dueAt: Timestamp? {
        guard isPending else { return nil }
        guard let lastFired else { return Timestamp(milliseconds: .min) }
        return lastFired + interval
    }

    /// True (and the change taken) if a pending change may go out at `now`.
    public mutating func fire(now: Timestamp) -> Bool {
        guard let due = dueAt, due <= now else { return false }
        isPending = false
        lastFired = now
        return true
    }
}
