/// Limits on sockets and WebSocket messages (PROTOCOL.md section 10), enforced by the
/// transport before a connection reaches any event or room.
public struct ConnectionLimits: Sendable, Hashable {
    /// A connection must complete its first HTTP request head (and a WebSocket its upgrade)
    /// within this, counted from the accept; later requests on a keep-alive connection are
    /// bounded by `idleTimeout`.
    public var requestHeadTimeout: Duration = .seconds(10)
    /// An HTTP keep-alive connection idle this long is closed (never while a response is being
    /// written; WebSocket connections are watched by pings instead).
    public var idleTimeout: Duration = .seconds(60)
    /// Most open client connections (HTTP and WebSocket); further ones are answered `503`
    /// `server_busy` and closed. The server lowers it at start to the open-file limit less a
    /// reserve (`max(64, limit / 8)`), so `accept` never fails with EMFILE.
    public var maxConnections = 20_000
    /// Most open client connections from one IP address (raise it behind a reverse proxy,
    /// where every client has the proxy's address).
    public var maxConnectionsPerIP = 1_000
    /// A WebSocket message must be complete within this from its first byte: a fragmented
    /// message, and a frame whose payload stalls; else close 1008 (policy violation).
    public var fragmentTimeout: Duration = .seconds(10)
    /// Largest text message on every socket (close 1009 beyond).
    public var maxTextMessage = 64 * 1024
    /// Largest binary message on a socket that may publish media: the host's, and a verified
    /// listener's (it may become a co-host without reconnecting).
    public var maxSpeakerBinaryMessage = 1024 * 1024
    /// Largest binary message on every other socket (unverified listeners, the directory, rooms).
    public var maxBinaryMessage = 64 * 1024

    public init() {}
}
