/// The last packets sent on one stream, by sequence number, for answering NACKs (RFC 4585
/// §6.2.1). A fixed ring: an entry is overwritten `capacity` packets later, and one older than
/// `maximumAge` is not resent (the listener's jitter buffer has moved on).
public struct RTPRetransmissionHistory: Sendable {
    private struct Entry: Sendable {
        var sequenceNumber: UInt16
        var sentAt: ContinuousClock.Instant
        var packet: [UInt8]
    }

    public let capacity: Int
    public let maximumAge: Duration
    private var entries: [Entry?]

    public init(capacity: Int = 512, maximumAge: Duration = .milliseconds(1000)) {
        precondition(capacity > 0 && capacity <= 65536)
        self.capacity = capacity
        self.maximumAge = maximumAge
        self.entries = Array(repeating: nil, count: capacity)
    }

    /// Remembers a sent (plain, not yet protected) RTP packet.
    public mutating func store(_ packet: [UInt8], sequenceNumber: UInt16, now: ContinuousClock.Instant) {
        entries[Int(sequenceNumber) % capacity] = Entry(sequenceNumber: sequenceNumber, sentAt: now, packet: packet)
    }

    /// The packet with this sequence number, if still held and recent enough.
    public func packet(sequenceNumber: UInt16, now: ContinuousClock.Instant) -> [UInt8]? {
        guard let entry = entries[Int(sequenceNumber) % capacity], entry.sequenceNumber == sequenceNumber,
              now - entry.sentAt <= maximumAge
        else { return nil }
        return entry.packet
    }
}
