/// Extends 16-bit RTP sequence numbers to 32 bits (RFC 3550 A.1): a jump back by more than
/// half the space is a wrap, so a publisher's stream keeps counting up past 65,535 packets
/// (about 22 minutes of 20 ms audio) instead of starting over. Late packets from before a
/// wrap map to the cycle they belong to.
public struct RTPSequenceExtender: Sendable {
    private var highest: UInt16?
    private var cycles: UInt32 = 0

    public init() {}

    /// The extended sequence number of `sequence`.
    public mutating func extend(_ sequence: UInt16) -> UInt32 {
        guard let highest else {
            self.highest = sequence
            return UInt32(sequence)
        }
        let delta = Int16(bitPattern: sequence &- highest)
        if delta > 0 {
            if sequence < highest { cycles &+= 1 }  // forward across the wrap
            self.highest = sequence
            return cycles << 16 | UInt32(sequence)
        }
        // At or behind the highest: a duplicate or a late packet, maybe from the previous cycle.
        let cycle = sequence > highest && cycles > 0 ? cycles - 1 : cycles
        return cycle << 16 | UInt32(sequence)
    }
}
