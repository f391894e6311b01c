/// The last packets sent on one stream, by sequence number, for answering NACKs (RFC 4585
/// §6.2.1). A fixed ring: an entry is overwritten `capacity` packets later, and one older than
/// `maximumAge` is not resent (the listener's jitter buffer has moved on).
///
/// It keeps the packet's header fields and a reference to its payload, not a copy of its
/// bytes: the mix's payload is one array shared by every listener's history, and a resent
/// packet is serialized and protected again anyway.
public struct RTPRetransmissionHistory: Sendable {
    private struct Entry: Sendable {
        var sentAt: ContinuousClock.Instant
        var packet: RTPPacket
        /// When it was last resent: a NACK storm gets each packet once per interval.
        var resentAt: ContinuousClock.Instant?
    }

    public let capacity: Int
    public let maximumAge: Duration
    private var entries: [Entry?]

    /// `capacity` should cover `maximumAge` at the stream's packet rate (audio: 50 a second).
    public init(capacity: Int = 512, maximumAge: Duration = .milliseconds(1000)) {
        precondition(capacity > 0 && capacity <= 65536)
        self.capacity = capacity
        self.maximumAge = maximumAge
        self.entries = Array(repeating: nil, count: capacity)
    }

    /// Remembers a sent (plain, not yet protected) RTP packet.
    public mutating func store(_ packet: RTPPacket, now: ContinuousClock.Instant) {
        entries[Int(packet.sequenceNumber) % capacity] = Entry(sentAt: now, packet: packet)
    }

    /// The packet with this sequence number, if still held and recent enough.
    public func packet(sequenceNumber: UInt16, now: ContinuousClock.Instant) -> RTPPacket? {
        guard let entry = entries[Int(sequenceNumber) % capacity], entry.packet.sequenceNumber == sequenceNumber,
              now - entry.sentAt <= maximumAge
        else { return nil }
        return entry.packet
    }

    /// The packet to resend for a NACK of `sequenceNumber`: nil if it is not held, too old, or
    /// was resent (`markResent`) less than `minimumInterval` ago (listed twice in one NACK
    /// compound, or NACKed again faster than a resend can arrive).
    public func retransmission(sequenceNumber: UInt16, now: ContinuousClock.Instant,
                               minimumInterval: Duration) -> RTPPacket? {
        guard let packet = packet(sequenceNumber: sequenceNumber, now: now) else { return nil }
        if let resentAt = entries[Int(sequenceNumber) % capacity]?.resentAt, now - resentAt < minimumInterval { return nil }
        return packet
    }

    /// Records that the held packet `sequenceNumber` was resent `now`.
    public mutating func markResent(sequenceNumber: UInt16, now: ContinuousClock.Instant) {
        let index = Int(sequenceNumber) % capacity
        guard entries[index]?.packet.sequenceNumber == sequenceNumber else { return }
        entries[index]?.resentAt = now
    }
}
