import AirwaveServer
import ArgumentParser

/// Flags that make this server one node of several (PROTOCOL.md section 8).
struct ClusterOptions: ParsableArguments {
    @Option(name: .customLong("node-url"), help: "This node's base URL as the other nodes reach it; joins the cluster of the --database (PostgreSQL only).") var nodeURL: String?
    @Option(name: .customLong("cluster-secret"), help: "Secret shared by every node of the cluster (at least 32 bytes).") var clusterSecret: String?
    @Option(name: .customLong("node-id"), help: "This node's id (default: a stable id kept in --data-dir).") var nodeID: String?

    /// The cluster settings, nil when `--node-url` is not given. The checks that need the
    /// database URL (PostgreSQL only) are the server's, so that embedding code gets them too.
    func settings(_ settings: Settings) throws(ConfigurationError) -> ClusterSettings? {
        let url = settings.string("node-url", nodeURL)
        let secret = settings.string("cluster-secret", clusterSecret)
        let id = settings.string("node-id", nodeID)
        guard let url else {
            if secret != nil || id != nil {
                throw ConfigurationError("--cluster-secret and --node-id need --node-url (this node's URL as the other nodes reach it).")
            }
            return nil
        }
        guard let secret else {
            throw ConfigurationError("--node-url needs --cluster-secret (at least \(ClusterSettings.minimumSecretBytes) bytes, the same on every node).")
        }
        return ClusterSettings(nodeURL: url, secret: secret, nodeID: id)
    }
}
