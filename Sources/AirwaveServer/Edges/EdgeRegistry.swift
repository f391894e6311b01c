import AirwaveAuth
import AirwaveCore
import Logging

/// This node's edges (PROTOCOL.md 8): one `EdgeEventDriver` per event whose origin is another
/// node and that has clients here. A join for such an event finds its edge or starts it.
actor EdgeRegistry {
    private var edges: [String: EdgeEventDriver] = [:]
    private var tasks: [ObjectIdentifier: Task<Void, Never>] = [:]
    private let metrics: ServerMetrics
    private let logger: Logger
    private let writer: StoreWriter
    private let configuration: EdgeConfiguration
    private let webRTC: WebRTCGateway?
    private let linkURL: @Sendable (String, String) async -> (nodeID: String, url: String)?

    init(metrics: ServerMetrics, logger: Logger, writer: StoreWriter, cluster: ClusterNode, hostGrace: Duration, webRTC: WebRTCGateway?) {
        self.metrics = metrics
        self.webRTC = webRTC
        self.logger = logger
        self.writer = writer
        var configuration = EdgeConfiguration()
        configuration.orphanTimeout = hostGrace
        self.configuration = configuration
        let nodeID = cluster.identity.nodeID
        let secret = cluster.settings.secret
        linkURL = { eventID, session in
            // The origin is looked up at every attempt: after a failover it is another node, and
            // may be this one (the edge's clients then stay on a link to this node's own origin).
            guard let origin = try? await cluster.origin(of: eventID) else { return nil }
            let token = ClusterLinkToken.make(nodeID: nodeID, eventID: eventID, secret: secret)
            return (origin.nodeID, EdgeRegistry.linkURL(base: origin.url, eventID: eventID, nodeID: nodeID, session: session, token: token))
        }
    }

    /// The edge of `eventID`, started if there is none running.
    func edge(for eventID: String) -> EdgeEventDriver {
        if let edge = edges[eventID], !edge.hasFinished { return edge }
        let edge = EdgeEventDriver(eventID: eventID)
        edges[eventID] = edge
        let services = EdgeEventDriver.Services(
            metrics: metrics, logger: logger, writer: writer, configuration: configuration, webRTC: webRTC, linkURL: linkURL,
            onFinished: { [weak self] edge in await self?.forget(edge) })
        tasks[ObjectIdentifier(edge)] = Task { await edge.run(services) }
        return edge
    }

    /// The running edge of `eventID`, if any.
    func existing(_ eventID: String) -> EdgeEventDriver? {
        edges[eventID].flatMap { $0.hasFinished ? nil : $0 }
    }

    /// The events this node serves as an edge, with their links' state (`GET /api/cluster`).
    func statuses() -> [(eventID: String, status: EdgeEventDriver.Status)] {
        edges.keys.sorted().map { ($0, edges[$0]!.status.withLockedValue { $0 }) }
    }

    private func forget(_ edge: EdgeEventDriver) {
        tasks[ObjectIdentifier(edge)] = nil
        if edges[edge.eventID] === edge { edges[edge.eventID] = nil }
    }

    /// Closes every edge's clients (`server_shutdown`, 1001) and its link, and waits for them.
    func shutdownAll() async {
        for edge in edges.values { edge.submit(.shutdown) }
        for task in Array(tasks.values) { await task.value }
    }

    /// `ws://host:port/ws/cluster/link/{eventId}/?node=…&session=…&token=…` from the origin's node URL.
    static func linkURL(base: String, eventID: String, nodeID: String, session: String, token: String) -> String {
        var root = Substring(base)
        while root.hasSuffix("/") { root = root.dropLast() }
        let socketRoot = root.hasPrefix("https://") ? "wss://" + root.dropFirst(8) : root.hasPrefix("http://") ? "ws://" + root.dropFirst(7) : root
        return "\(socketRoot)/ws/cluster/link/\(eventID)/?node=\(nodeID)&session=\(session)&token=\(token)"
    }
}
