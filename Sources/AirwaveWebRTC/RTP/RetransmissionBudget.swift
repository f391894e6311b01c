/// How much one session may resend on NACK (RFC 4585): a token bucket of packets and one of
/// bytes, both refilled per second and holding at most one second's worth. A NACK compound
/// asks for many packets in few bytes; this keeps what it costs the server, and what a forged
/// one can aim at a listener, proportional to time rather than to the NACK's size.
public struct RetransmissionBudget: Sendable, Equatable {
    /// Packets resent per second (and at once).
    public let packetsPerSecond: Int
    /// Bytes (protected datagrams) resent per second (and at once).
    public let bytesPerSecond: Int
    /// Tokens in units of 1/1e9 (packet-nanoseconds at one packet a second): integer refills,
    /// so that equal times always give equal budgets.
    private var packets: Int64
    private var bytes: Int64
    private var updatedAt: ContinuousClock.Instant
    private static let scale: Int64 = 1_000_000_000

    public init(packetsPerSecond: Int, bytesPerSecond: Int, now: ContinuousClock.Instant) {
        precondition((1...1 << 30).contains(packetsPerSecond) && (1...1 << 30).contains(bytesPerSecond))
        self.packetsPerSecond = packetsPerSecond
        self.bytesPerSecond = bytesPerSecond
        packets = Int64(packetsPerSecond) * Self.scale
        bytes = Int64(bytesPerSecond) * Self.scale
        updatedAt = now
    }

    /// Spends one packet of `size` bytes if both buckets hold enough; false spends nothing.
    public mutating func spend(bytes size: Int, now: ContinuousClock.Instant) -> Bool {
        if now > updatedAt {
            // Both buckets are full after a second: a longer pause refills no more.
            let elapsed = min(now - updatedAt, .seconds(1))
            let nanoseconds = elapsed.components.seconds * Self.scale + elapsed.components.attoseconds / 1_000_000_000
            packets = min(Int64(packetsPerSecond) * Self.scale, packets + nanoseconds * Int64(packetsPerSecond))
            bytes = min(Int64(bytesPerSecond) * Self.scale, bytes + nanoseconds * Int64(bytesPerSecond))
            updatedAt = now
        }
        let cost = Int64(size) * Self.scale
        guard packets >= Self.scale, bytes >= cost else { return false }
        packets -= Self.scale
        bytes -= cost
        return true
    }
}
