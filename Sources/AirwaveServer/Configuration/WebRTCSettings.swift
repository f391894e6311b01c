/// The WebRTC transport (`/whep`, `/whip`): one UDP port for every session.
public struct WebRTCSettings: Sendable {
    /// False turns the transport off: no UDP port, and the routes answer 404.
    public var enabled = true
    /// UDP port; nil uses the HTTP port's number (0 there: a free port).
    public var port: Int?
    /// IP addresses the answers announce as host candidates (NAT, containers); empty: the
    /// address the server listens on, or every interface's address when that is 0.0.0.0.
    public var announcedAddresses: [String] = []
    /// Most WebRTC sessions at once; further offers get 503.
    public var maximumSessions = 10_000

    public init() {}
}
