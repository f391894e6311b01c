import AirwaveProtocol

/// Lets one thing through per interval and drops the rest (no trailing edge).
public struct IntervalGate: Sendable, Hashable {
    public let interval: Duration
    private var lastAllowed: Timestamp?

    public init(interval: Duration) { self.interval = interval }

    /// True if the thing may happen at `now`; then the window starts again.
    public mutating func allow(now: Timestamp) -> Bool {
        if let lastAllowed, now < lastAllowed + interval { return false }
        lastAllowed = now
        return true
    }
}
