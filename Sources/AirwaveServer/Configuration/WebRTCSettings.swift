/// The WebRTC transport (`/whep`, `/whip`): one UDP port for every session.
public struct WebRTCSettings: Sendable {
    /// False turns the transport off: no UDP port, and the routes answer 503.
    public var enabled = true
    /// UDP port; nil uses the HTTP port's number (0 there: a free port).
    public var port: Int?
    /// IP addresses the answers announce as host candidates (NAT, containers); empty: the
    /// address the server listens on, or every interface's address when that is 0.0.0.0.
    public var announcedAddresses: [String] = []
    /// Most WebRTC sessions at once; further offers get 503.
    public var maximumSessions = 10_000
    /// Sessions anonymous WHEP listeners (no token) may not take: kept for WHIP publishers and
    /// listeners with a token. Nil: a tenth of `maximumSessions`.
    public var reservedSessions: Int?
    /// Most anonymous WHEP sessions from one IP address (IPv6: one /64) at once.
    public var anonymousSessionsPerIP = 50
    /// Anonymous WHEP offers one IP address (IPv6: one /64) may make per second, and at once.
    public var anonymousOfferRate = RateLimit(perSecond: 5, burst: 20)
    /// A session whose DTLS handshake has not completed this long after the answer is closed.
    public var handshakeDeadline: Duration = .seconds(10)
    /// Packets a session may resend on NACK per second (and at once).
    public var retransmitPacketsPerSecond = 250
    /// Bytes a session may resend on NACK per second (and at once).
    public var retransmitBytesPerSecond = 256 * 1024

    public init() {}

    /// The reserve in effect: `reservedSessions`, or a tenth of `maximumSessions`.
    public var effectiveReservedSessions: Int {
        min(maximumSessions, reservedSessions ?? maximumSessions / 10)
    }
}
