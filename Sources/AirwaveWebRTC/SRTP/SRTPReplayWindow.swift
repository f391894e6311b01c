/// Replay protection for one SSRC (RFC 3711 3.3.2): the highest index accepted and a bitmap of
/// the 64 before it, over SRTCP indices or SRTP's 48-bit packet indices. An index is checked
/// before its packet is authenticated and recorded only after, so a forged packet cannot move
/// the window.
struct SRTPReplayWindow: Sendable {
    /// How far behind the highest index a packet may arrive: 64 RTCP intervals (minutes), or
    /// 64 packets of 20 ms audio (1.28 s, longer than any jitter buffer waits).
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

    /// The 48-bit packet index (rollover counter and sequence number) of an SRTP packet: the
    /// one closest to the highest accepted (RFC 3711 3.3.1); for the first packet, rollover
    /// counter 0. Nil for a packet from before the first wrap that cannot have one.
    func estimatedIndex(sequence: UInt16) -> UInt64? {
        guard let highest else { return UInt64(sequence) }
        let rollover = highest >> 16, last = highest & 0xFFFF, sequence = UInt64(sequence)
        if last < 32768, sequence > last + 32768 {
            // From before the last wrap.
            guard rollover > 0 else { return nil }
            return (rollover - 1) << 16 | sequence
        }
        if last >= 32768, sequence < last - 32768 {
            return (rollover + 1) << 16 | sequence  // after the next wrap
        }
        return rollover << 16 | sequence
    }
}

/// The replay windows of a receiver, one per SSRC (each SSRC counts its own indices; RFC 3711
/// 3.3.2). Only authenticated packets add an SSRC.
struct SRTPReplayWindows: Sendable {
    private var windows: [UInt32: SRTPReplayWindow] = [:]

    /// An SRTP packet's header length, SSRC and estimated index, if it has room for its header
    /// and a `tagLength` tag and its index is not replayed (checked before authentication, so
    /// a replay costs no crypto; recorded only after).
    func check(_ packet: [UInt8], tagLength: Int) -> (headerLength: Int, ssrc: UInt32, index: UInt64)? {
        guard packet.count <= 65536, let headerLength = SRTPPacketLayout.rtpHeaderLength(packet),
              headerLength <= packet.count - tagLength
        else { return nil }
        let sequence = UInt16(packet[2]) << 8 | UInt16(packet[3])
        let ssrc = SRTPPacketLayout.word(packet, at: 8)
        guard let index = estimatedIndex(ssrc: ssrc, sequence: sequence), allows(ssrc: ssrc, index: index) else { return nil }
        return (headerLength, ssrc, index)
    }

    func allows(ssrc: UInt32, index: UInt64) -> Bool {
        windows[ssrc]?.allows(index) ?? true
    }

    mutating func record(ssrc: UInt32, index: UInt64) {
        windows[ssrc, default: SRTPReplayWindow()].record(index)
    }

    /// See `SRTPReplayWindow.estimatedIndex`.
    func estimatedIndex(ssrc: UInt32, sequence: UInt16) -> UInt64? {
        windows[ssrc].map { $0.estimatedIndex(sequence: sequence) } ?? UInt64(sequence)
    }
}
