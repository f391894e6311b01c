import AirwaveWebRTC

/// The SDP offer of a load-generator WHEP listener: one `m=audio` section (Opus 111/48000/2),
/// this listener's ICE credentials and host candidate, the generator's certificate fingerprint,
/// `a=setup:actpass`, `a=rtcp-mux` and a BUNDLE group — what a browser's audio-only WHEP offer
/// carries (compare `Fixtures/webrtc/aiortc-whep-offer.sdp`), without the codecs Airwave
/// never picks. All candidates are in the offer: WHEP here is not trickled.
public struct WHEPOffer: Sendable, Equatable {
    /// Receive-only (what WHEP players send) or `sendrecv` (what some browsers send).
    public enum Direction: String, Sendable {
        case recvonly, sendrecv
    }

    /// The listener's ICE credentials (`a=ice-ufrag`, `a=ice-pwd`).
    public var ufrag: String
    public var password: String
    /// The listener's certificate (`a=fingerprint`), which the server checks after DTLS.
    public var fingerprint: CertificateFingerprint
    /// The listener's own UDP address (its only candidate).
    public var candidate: TransportAddress
    /// The `o=` session id.
    public var sessionID: UInt64
    public var direction: Direction

    /// An offer; `sdp` is its text.
    public init(ufrag: String, password: String, fingerprint: CertificateFingerprint, candidate: TransportAddress,
                sessionID: UInt64, direction: Direction = .recvonly) {
        self.ufrag = ufrag
        self.password = password
        self.fingerprint = fingerprint
        self.candidate = candidate
        self.sessionID = sessionID
        self.direction = direction
    }

    /// The SDP text (CRLF line ends).
    public var sdp: String {
        let family = candidate.isIPv6Address ? "IP6" : "IP4"
        let lines = [
            "v=0",
            "o=- \(sessionID) 2 IN IP4 127.0.0.1",
            "s=-",
            "t=0 0",
            "a=group:BUNDLE 0",
            "a=msid-semantic:WMS *",
            "m=audio \(candidate.port) UDP/TLS/RTP/SAVPF 111",
            "c=IN \(family) \(candidate.host)",
            "a=\(direction.rawValue)",
            "a=mid:0",
            "a=rtcp:9 IN IP4 0.0.0.0",
            "a=rtcp-mux",
            "a=rtpmap:111 opus/48000/2",
            "a=fmtp:111 minptime=10;useinbandfec=1",
            "a=candidate:1 1 udp \(Self.hostPriority) \(candidate.host) \(candidate.port) typ host",
            "a=end-of-candidates",
            "a=ice-ufrag:\(ufrag)",
            "a=ice-pwd:\(password)",
            "a=fingerprint:\(fingerprint.attributeValue)",
            "a=setup:actpass",
        ]
        return lines.joined(separator: "\r\n") + "\r\n"
    }

    /// The priority of the offer's host candidate, also sent in every check's PRIORITY
    /// (RFC 8445 §5.1.2.1: type preference 126, local preference 65535, component 1).
    public static let hostPriority: UInt32 = UInt32(126) << 24 | UInt32(65535) << 8 | 255
}

extension TransportAddress {
    var isIPv6Address: Bool {
        if case .v6 = ip { return true }
        return false
    }
}
