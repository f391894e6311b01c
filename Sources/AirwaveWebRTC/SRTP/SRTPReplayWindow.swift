/// Replay protection for one SSRC's SRTCP (RFC 3711 3.3.2): the highest index accepted and a
/// bitmap of the 64 before it. An index is checked before its packet is authenticated and
/// recorded only after, so a forged packet cannot move the window.
struct SRTPReplayWindow: Sendable {
    /// How far behind the highest index a packet may arrive (64 RTCP intervals: minutes).
    static let size: UInt64 = 64
    private var highest: UInt64?
    /// Bit n set: index `highest - n` was accepted (bit 0 is `highest` itself).
    private var seen: UInt64 = 0

    /// Whether `index` is new and not too old to tell.
    func allows(_ index: UInt64) -> Bool {
        guard let highest, index <= highest else { return true }
        let behind = highest - index
        return behind < Self.size && seen & (1 << behind) == 0
    }

    /// Records an authenticated `index` (`allows` was true).
    mutating func record(_ index: UInt64) {
        guard let last = highest, index <= last else {
            let ahead = highest.map { index - $0 } ?? Self.size
            seen = ahead >= Self.size ? 1 : seen << ahead | 1
            highest = index
            return
        }
        seen |= 1 << (last - index)
    }
}
