/// Limits on sockets and WebSocket messages (PROTOCOL.md section 10), enforced by the
/// transport before a connection reaches any event or room.
public struct ConnectionLimits: Sendable, Hashable {
    /// A connection must complete its HTTP request head (and a WebSocket its upgrade) within this.
    public var requestHeadTimeout: Duration = .seconds(10)
    /// An HTTP keep-alive connection idle this long is closed.
    public var idleTimeout: Duration = .seconds(60)
    /// Most open client connections (HTTP and WebSocket); further ones are refused. The
    /// server lowers it below the process's open-file limit at start.
    public var maxConnections = 20_000
    /// Most open client connections from one IP address.
    public var maxConnectionsPerIP = 1_000
    /// A fragmented WebSocket message must be complete within this.
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
