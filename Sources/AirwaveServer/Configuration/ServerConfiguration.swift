import AirwaveAuth
import AirwaveCore

/// Everything `airwave serve` can be told (PROTOCOL.md section 7), with its defaults.
public struct ServerConfiguration: Sendable {
    /// Address to listen on.
    public var host = "127.0.0.1"
    /// Port; 0 picks a free one (tests).
    public var port = 8000
    /// Folder for the SQLite database and the development secret.
    public var dataDirectory = "./data"
    /// A store URL; nil or `sqlite://PATH` selects SQLite.
    public var databaseURL: String?
    /// Keys, claims and user lookup.
    public var auth = AuthConfiguration()
    /// Refuse joins without a token.
    public var requireJoinToken = false
    /// Per-event tunables (grace period, coalescing, limits).
    public var liveEvent = LiveEventConfiguration()
    /// Sockets, request deadlines and WebSocket message sizes (PROTOCOL.md 10).
    public var connections = ConnectionLimits()
    /// Chat messages a connection may send: rate per second and burst.
    public var chatRate = RateLimit(perSecond: 5, burst: 10)
    /// Other control messages a connection may send: rate per second and burst.
    public var controlRate = RateLimit(perSecond: 20, burst: 40)
    /// Each connection's send queue (PROTOCOL.md 6: 512 KiB).
    public var sendQueueLimit = 512 * 1024
    /// What media a connection may send (PROTOCOL.md 10).
    public var media = MediaLimits()
    /// Listening rooms' bounds (PROTOCOL.md 10).
    public var rooms = RoomLimits()
    /// How often the server pings every connection.
    public var pingInterval: Duration = .seconds(15)
    /// How long shutdown waits for connections to close after `server_shutdown`.
    public var drainTimeout: Duration = .seconds(5)
    /// At most one `active_streams` update per this interval.
    public var directoryInterval: Duration = .seconds(1)
    /// Folder of the browser client served at `/`; nil serves none (`/` answers 404).
    public var webDirectory: String?
    /// WHEP listeners and WHIP publishers over UDP.
    public var webRTC = WebRTCSettings()
    /// Set when this node joins a cluster on a shared PostgreSQL database (PROTOCOL.md 8).
    public var cluster: ClusterSettings?

    public init() {}
}

/// A token-bucket setting.
public struct RateLimit: Sendable, Hashable {
    public var perSecond: Double
    public var burst: Double

    public init(perSecond: Double, burst: Double) {
        self.perSecond = perSecond
        self.burst = burst
    }
}
