/// Maps the packets of changing sources (speaker switches, the mix restarting, pauses) onto one
/// continuous outgoing stream per listener: one SSRC, sequence numbers without jumps, and
/// timestamps that advance with real time across a switch.
///
/// Within one source run, sequence numbers and timestamps keep their spacing (offsets), so loss
/// and reordering stay visible to the receiver. A run starts when the source SSRC changes or
/// after a pause longer than `pauseThreshold`: the first packet gets the next sequence number
/// and a timestamp advanced by the wall-clock time since the previous packet, and `marker`
/// (start of a talkspurt, RFC 3551 §4.1) is set. Packets older than the run's first one are
/// dropped: their numbers would collide with the previous run's.
public struct RTPStreamRewriter: Sendable {
    /// The outgoing header fields for one packet.
    public struct Rewritten: Equatable, Sendable {
        public var ssrc: UInt32
        public var sequenceNumber: UInt16
        public var timestamp: UInt32
        /// The first packet of a new run.
        public var startsRun: Bool
    }

    public let outputSSRC: UInt32
    /// RTP clock rate: 48000 for Opus, 90000 for VP8.
    public let clockRate: UInt32
    public var pauseThreshold: Duration

    private var source: UInt32?
    private var runFirstInputSequence: UInt16 = 0
    private var sequenceOffset: UInt16 = 0
    private var timestampOffset: UInt32 = 0
    private var lastOutputSequence: UInt16
    private var lastOutputTimestamp: UInt32
    private var lastPacketTime: ContinuousClock.Instant?

    /// `initialSequence` and `initialTimestamp` should be random (RFC 3550 §5.1).
    public init(outputSSRC: UInt32, clockRate: UInt32, initialSequence: UInt16, initialTimestamp: UInt32,
                pauseThreshold: Duration = .milliseconds(500)) {
        self.outputSSRC = outputSSRC
        self.clockRate = clockRate
        self.pauseThreshold = pauseThreshold
        self.lastOutputSequence = initialSequence &- 1
        self.lastOutputTimestamp = initialTimestamp
    }

    /// The outgoing fields for a packet of `sourceSSRC`, or `nil` if it must be dropped.
    public mutating func rewrite(sourceSSRC: UInt32, sequenceNumber: UInt16, timestamp: UInt32,
                                 now: ContinuousClock.Instant) -> Rewritten? {
        let paused = lastPacketTime.map { now - $0 > pauseThreshold } ?? true
        var startsRun = false
        if sourceSSRC != source || paused {
            let elapsed = lastPacketTime.map { ticks(now - $0) } ?? 0
            let firstSequence = lastOutputSequence &+ 1
            let firstTimestamp = lastPacketTime == nil ? lastOutputTimestamp : lastOutputTimestamp &+ max(elapsed, 1)
            source = sourceSSRC
            runFirstInputSequence = sequenceNumber
            sequenceOffset = firstSequence &- sequenceNumber
            timestampOffset = firstTimestamp &- timestamp
            startsRun = true
        } else if Int16(bitPattern: sequenceNumber &- runFirstInputSequence) < 0 {
            return nil
        }
        let outputSequence = sequenceNumber &+ sequenceOffset
        let outputTimestamp = timestamp &+ timestampOffset
        if startsRun || Int16(bitPattern: outputSequence &- lastOutputSequence) > 0 {
            lastOutputSequence = outputSequence
            lastOutputTimestamp = outputTimestamp
            lastPacketTime = now
        }
        return Rewritten(ssrc: outputSSRC, sequenceNumber: outputSequence, timestamp: outputTimestamp,
                         startsRun: startsRun)
    }

    /// Writes the rewritten fields into a serialized RTP packet in place (and sets the marker
    /// bit on a run's first packet).
    public static func apply(_ rewritten: Rewritten, to packet: inout [UInt8]) {
        guard packet.count >= 12 else { return }
        packet.setUInt16(rewritten.sequenceNumber, at: RTPPacket.sequenceNumberOffset)
        packet.setUInt32(rewritten.timestamp, at: RTPPacket.timestampOffset)
        packet.setUInt32(rewritten.ssrc, at: RTPPacket.ssrcOffset)
        if rewritten.startsRun { packet[1] |= 0x80 }
    }

    /// `duration` in clock ticks, rounded to the nearest (integer arithmetic, so 20 ms is
    /// exactly 960 ticks at 48 kHz).
    private func ticks(_ duration: Duration) -> UInt32 {
        let (seconds, attoseconds) = duration.components
        guard seconds >= 0, seconds < 1 << 31 else { return 0 }
        let microseconds = seconds * 1_000_000 + attoseconds / 1_000_000_000_000
        return UInt32(truncatingIfNeeded: (microseconds * Int64(clockRate) + 500_000) / 1_000_000)
    }
}
