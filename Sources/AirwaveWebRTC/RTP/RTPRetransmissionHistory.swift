/// The last packets sent on one stream, for answering NACKs (RFC 4585 §6.2.1): at most
/// `capacity` packets, the oldest dropped first, and none older than `maximumAge` resent (the
/// listener's jitter buffer has moved on).
///
/// Compact, because every listener holds one (issue 17): an entry is a packet's header fields
/// and a reference to its payload array, which the mix shares with every other listener's
/// history (no copy of the bytes); the entries are a ring that grows as packets come and
/// drops those past `maximumAge`, so an empty history holds none and an audio stream at 50
/// packets a second about 50, not `capacity`. Holds packets as `WebRTCSession` sends them: at
/// most one CSRC, no header extension, no padding.
public struct RTPRetransmissionHistory: Sendable {
    /// 40 bytes, against about 100 for an `RTPPacket` with its send times.
    private struct Entry: Sendable {
        var payload: [UInt8]
        /// Nanoseconds since `origin`.
        var sentAt: Int64
        /// When it was last resent (`Self.never` if not): a NACK storm gets each packet once per
        /// interval.
        var resentAt: Int64
        var timestamp: UInt32
        var ssrc: UInt32
        /// The one CSRC of a per-speaker packet, if `hasCSRC`.
        var csrc: UInt32
        var sequenceNumber: UInt16
        var payloadType: UInt8
        /// Bit 0 the marker, bit 1 whether `csrc` is present.
        var flags: UInt8

        var packet: RTPPacket {
            RTPPacket(marker: flags & 1 != 0, payloadType: payloadType, sequenceNumber: sequenceNumber,
                      timestamp: timestamp, ssrc: ssrc, csrcs: flags & 2 != 0 ? [csrc] : [], payload: payload)
        }
    }

    public let capacity: Int
    public let maximumAge: Duration
    /// `maximumAge` in nanoseconds, converted once: `Duration.components` divides 128-bit
    /// numbers, which per packet and listener showed in profiles.
    private let maximumAgeNanoseconds: Int64
    /// The ring, oldest entry at `head`; it grows up to `capacity` entries when full.
    private var ring: [Entry] = []
    private var head = 0
    /// Entries held (the rest of `ring` is free).
    public private(set) var count = 0
    /// The time entries are stored relative to: the first packet's.
    private var origin: ContinuousClock.Instant?
    private static let never = Int64.min

    /// `capacity` should cover `maximumAge` at the stream's packet rate (audio: 50 a second).
    public init(capacity: Int = 512, maximumAge: Duration = .milliseconds(1000)) {
        precondition(capacity > 0 && capacity <= 65536)
        self.capacity = capacity
        self.maximumAge = maximumAge
        maximumAgeNanoseconds = Self.nanoseconds(maximumAge)
    }

    /// Entries the history has memory for (0 until the first packet).
    public var allocatedEntries: Int { ring.capacity }

    /// Remembers a sent (plain, not yet protected) RTP packet: at most one CSRC, no header
    /// extension, no padding.
    public mutating func store(_ packet: RTPPacket, now: ContinuousClock.Instant) {
        precondition(packet.csrcs.count <= 1 && packet.headerExtension == nil && packet.paddingCount == 0,
                     "the history keeps what WebRTCSession sends")
        if origin == nil { origin = now }
        let sentAt = nanoseconds(now)
        dropExpired(now: sentAt)
        let entry = Entry(payload: packet.payload, sentAt: sentAt, resentAt: Self.never, timestamp: packet.timestamp,
                          ssrc: packet.ssrc, csrc: packet.csrcs.first ?? 0, sequenceNumber: packet.sequenceNumber,
                          payloadType: packet.payloadType,
                          flags: (packet.marker ? 1 : 0) | (packet.csrcs.isEmpty ? 0 : 2))
        if count == capacity {
            ring[head] = entry
            head = (head + 1) % ring.count
        } else if count < ring.count {
            ring[(head + count) % ring.count] = entry
            count += 1
        } else if head == 0, ring.count < ring.capacity {
            ring.append(entry)
            count += 1
        } else {
            // Full below capacity: twice the room (at most `capacity`), oldest first again so
            // that appending keeps the order.
            var grown: [Entry] = []
            grown.reserveCapacity(Swift.min(capacity, Swift.max(8, 2 * ring.count)))
            grown += ring[head...]
            grown += ring[..<head]
            grown.append(entry)
            ring = grown
            head = 0
            count += 1
        }
    }

    /// The packet with this sequence number, if still held and recent enough.
    public func packet(sequenceNumber: UInt16, now: ContinuousClock.Instant) -> RTPPacket? {
        position(of: sequenceNumber, now: now).map { ring[$0].packet }
    }

    /// The packet to resend for a NACK of `sequenceNumber`: nil if it is not held, too old, or
    /// was resent (`markResent`) less than `minimumInterval` ago (listed twice in one NACK
    /// compound, or NACKed again faster than a resend can arrive).
    public func retransmission(sequenceNumber: UInt16, now: ContinuousClock.Instant,
                               minimumInterval: Duration) -> RTPPacket? {
        guard let position = position(of: sequenceNumber, now: now) else { return nil }
        let resentAt = ring[position].resentAt
        if resentAt != Self.never, nanoseconds(now) - resentAt < Self.nanoseconds(minimumInterval) { return nil }
        return ring[position].packet
    }

    /// Records that the held packet `sequenceNumber` was resent `now`.
    public mutating func markResent(sequenceNumber: UInt16, now: ContinuousClock.Instant) {
        guard let position = position(of: sequenceNumber, now: nil) else { return }
        ring[position].resentAt = nanoseconds(now)
    }

    /// Where the newest entry with `sequenceNumber` is, if held (and, given `now`, not older
    /// than `maximumAge`).
    private func position(of sequenceNumber: UInt16, now: ContinuousClock.Instant?) -> Int? {
        guard count > 0 else { return nil }
        func slot(back: Int) -> Int { (head + count - 1 - back) % ring.count }
        // Sequence numbers are consecutive as sent: the distance from the newest finds it;
        // after a gap, a scan from the newest does.
        let distance = Int(ring[slot(back: 0)].sequenceNumber &- sequenceNumber)
        var found: Int?
        if distance < count, ring[slot(back: distance)].sequenceNumber == sequenceNumber {
            found = slot(back: distance)
        } else {
            found = (0..<count).lazy.map(slot(back:)).first { ring[$0].sequenceNumber == sequenceNumber }
        }
        guard let found else { return nil }
        if let now, nanoseconds(now) - ring[found].sentAt > maximumAgeNanoseconds { return nil }
        return found
    }

    /// Forgets entries that can no longer be resent, and their payload references.
    private mutating func dropExpired(now: Int64) {
        while count > 0, now - ring[head].sentAt > maximumAgeNanoseconds {
            ring[head].payload = []
            head = (head + 1) % ring.count
            count -= 1
        }
    }

    private func nanoseconds(_ instant: ContinuousClock.Instant) -> Int64 {
        Self.nanoseconds(instant - (origin ?? instant))
    }

    private static func nanoseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds &* 1_000_000_000 &+ attoseconds / 1_000_000_000
    }
}
