import AirwaveProtocol

/// A token bucket rate limiter: `rate` tokens a second, at most `burst` saved up.
/// Time is an input, so tests drive it with a fake clock.
public struct TokenBucket: Sendable, Hashable {
    public let rate: Double
    public let burst: Double
    private var tokens: Double
    private var updatedAt: Timestamp?

    public init(rate: Double, burst: Double) {
        precondition(rate > 0 && burst >= 1, "a bucket needs a positive rate and room for one token")
        self.rate = rate
        self.burst = burst
        self.tokens = burst
    }

    /// Takes `cost` tokens (one message, a frame's bytes, a PCM frame's milliseconds) if there
    /// are that many; false means the caller is over the limit and nothing is taken.
    public mutating func take(_ cost: Double = 1, now: Timestamp) -> Bool {
        if let updatedAt, now > updatedAt {
            tokens = min(burst, tokens + Double(now.milliseconds - updatedAt.milliseconds) * rate / 1000)
        }
        if updatedAt == nil || now > updatedAt! { updatedAt = now }
        guard tokens >= cost else { return false }
        tokens -= cost
        return true
    }
}
