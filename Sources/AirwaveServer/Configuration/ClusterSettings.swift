/// Joining a cluster (PROTOCOL.md 8): where the other nodes reach this one, the secret they
/// share, and this node's id.
public struct ClusterSettings: Sendable {
    /// This node's base URL as the other nodes reach it (`--node-url`).
    public var nodeURL: String
    /// Authenticates the links between nodes (`--cluster-secret`, the same on every node).
    public var secret: String
    /// This node's id; nil: the one kept in `<data-dir>/node-id`, made on the first start.
    public var nodeID: String?
    /// How often the node writes its heartbeat row.
    public var heartbeatInterval: Duration = .seconds(2)
    /// A node whose last heartbeat is older than this is gone: it leaves `GET /api/cluster` and
    /// its events leave the directory (PROTOCOL.md 8 asks for 10 s at most, with the interval).
    public var nodeTimeout: Duration = .seconds(7)
    /// Most directory publications per second of one node: participant counts change with
    /// every join, starts and ends go out at once.
    public var publishInterval: Duration = .milliseconds(500)

    /// The shortest secret accepted (PROTOCOL.md 8).
    public static let minimumSecretBytes = 32

    public init(nodeURL: String, secret: String, nodeID: String? = nil) {
        self.nodeURL = nodeURL
        self.secret = secret
        self.nodeID = nodeID
    }
}
