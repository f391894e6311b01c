/// What a datagram on the shared UDP port carries, from its first byte (RFC 7983 §7) and, for
/// RTP versus RTCP, its second (RFC 5761 §4: RTCP packet types 192–223 fall in that range of
/// the RTP marker/payload-type byte).
public enum PacketKind: Equatable, Sendable {
    case stun
    case dtls
    case rtp
    case rtcp
    /// ZRTP, TURN channel data, or anything else: dropped.
    case unknown

    public init(datagram: ArraySlice<UInt8>) {
        guard let first = datagram.first else {
            self = .unknown
            return
        }
        switch first {
        case 0...3:
            self = .stun
        case 20...63:
            self = .dtls
        case 128...191:
            guard datagram.count >= 2 else {
                self = .unknown
                return
            }
            let second = datagram[datagram.startIndex + 1]
            self = (192...223).contains(second) ? .rtcp : .rtp
        default:
            self = .unknown
        }
    }

    public init(datagram: [UInt8]) {
        self.init(datagram: datagram[...])
    }
}
