import AirwaveAuth
import AirwaveCore
import AirwaveProtocol
import AirwaveStore
import AsyncHTTPClient
import Foundation
import Hummingbird
import HummingbirdCore
import NIOCore
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle
import UnixSignals

/// A configuration problem found before serving: one clear sentence (the CLI exits with 2).
public struct ServerStartError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The Airwave server: store, auth, live-event registry, directory and the Hummingbird
/// application that serves them.
public final class AirwaveServer: Sendable {
    public let configuration: ServerConfiguration
    let logger: Logger
    let store: any EventStore & RoomStore & ClusterStore
    let verifier: TokenVerifier
    let metrics: ServerMetrics
    let registry: LiveEventRegistry
    let rooms: ListeningRoomRegistry
    let directory: ActiveStreamsDirectory
    let writer: StoreWriter
    /// WHEP and WHIP over the WebRTC UDP port; nil when turned off.
    let webRTC: WebRTCGateway?
    /// This server as a node of a cluster; nil when it serves alone.
    let cluster: ClusterNode?
    /// The events this node serves as an edge (PROTOCOL.md 8); nil when it serves alone.
    let edges: EdgeRegistry?
    /// Counts and bounds the open connections.
    let gate: ConnectionGate
    /// How far behind this node each edge's link is, where this node is an event's origin.
    let linkLags: LinkLags
    private let draining = NIOLockedValueBox(false)
    private let nextConnectionID = NIOLockedValueBox<UInt64>(0)
    private let serviceGroup = NIOLockedValueBox<ServiceGroup?>(nil)

    private init(configuration: ServerConfiguration, logger: Logger, store: any EventStore & RoomStore & ClusterStore,
                 verifier: TokenVerifier, metrics: ServerMetrics, webRTC: WebRTCGateway?, node: ClusterNodeStart?) {
        self.configuration = configuration
        self.logger = logger
        self.store = store
        self.verifier = verifier
        self.metrics = metrics
        self.webRTC = webRTC
        linkLags = LinkLags(metrics: metrics)
        let registry = LiveEventRegistry(configuration: configuration.liveEvent, metrics: metrics)
        let gate = ConnectionGate(limits: configuration.connections)
        self.registry = registry
        self.gate = gate
        rooms = ListeningRoomRegistry(store: store, metrics: metrics, logger: logger)
        let directory = ActiveStreamsDirectory(interval: configuration.directoryInterval)
        self.directory = directory
        let writer = StoreWriter(store: store, logger: logger, metrics: metrics)
        self.writer = writer
        let cluster = node.map { node in
            ClusterNode(identity: node.identity, settings: node.settings, store: store, listener: node.listener,
                        directory: directory, logger: logger) {
                (await registry.liveCount, gate.open)
            }
        }
        self.cluster = cluster
        edges = cluster.map {
            EdgeRegistry(metrics: metrics, logger: logger, writer: writer, cluster: $0, hostGrace: configuration.liveEvent.hostGrace,
                         webRTC: webRTC)
        }
    }

    /// What `make` found out about the node before the server exists.
    private struct ClusterNodeStart {
        let identity: ClusterNode.Identity
        let settings: ClusterSettings
        let listener: PostgresNotificationListener
    }

    /// Opens and migrates the store, ends events a crash left live, and loads the keys.
    public static func make(configuration: ServerConfiguration, logger: Logger) async throws(ServerStartError) -> AirwaveServer {
        guard (0...65535).contains(configuration.port) else {
            throw ServerStartError("--port must be between 0 and 65535, not \(configuration.port).")
        }
        // Keys first: a bad key must not leave a database behind.
        let verifier: TokenVerifier
        do {
            let needsHTTP = configuration.auth.userLookupURL != nil || (configuration.auth.jwks?.hasPrefix("http") ?? false)
            verifier = try await TokenVerifier.make(configuration: configuration.auth, httpClient: needsHTTP ? HTTPClient.shared : nil, logger: logger)
        } catch {
            throw ServerStartError("\(error)")
        }
        var nodeID: String?
        if let settings = configuration.cluster { nodeID = try checkCluster(settings, configuration) }
        let store = try await openStore(configuration, logger: logger)
        var node: ClusterNodeStart?
        if let settings = configuration.cluster, let nodeID, let postgres = store as? PostgresEventStore {
            node = ClusterNodeStart(
                identity: ClusterNode.Identity(nodeID: nodeID, url: settings.nodeURL, startedAt: .now()), settings: settings,
                listener: postgres.makeNotificationListener(channels: [ClusterNode.Channel.directory, ClusterNode.Channel.rooms],
                                                            logger: logger))
        }
        let metrics = ServerMetrics()
        var webRTC: WebRTCGateway?
        if configuration.webRTC.enabled {
            do {
                webRTC = try await WebRTCGateway.start(settings: configuration.webRTC, httpHost: configuration.host, httpPort: configuration.port,
                                                       mediaLimits: configuration.media, controlRate: configuration.controlRate,
                                                       metrics: metrics, logger: logger)
            } catch {
                try? await store.shutdown()
                throw error
            }
        }
        let server = AirwaveServer(configuration: configuration, logger: logger, store: store, verifier: verifier,
                                   metrics: metrics, webRTC: webRTC, node: node)
        do {
            // Events a crash left live, except those of the other live nodes.
            let sparing = try await server.cluster?.otherLiveNodeIDs() ?? []
            let ended = try await store.endInterruptedEvents(reason: "server_restart", at: Timestamp.now().milliseconds, sparing: sparing)
            if ended > 0 { logger.info("ended events left live by the last run", metadata: ["count": "\(ended)"]) }
            try await server.cluster?.register()
        } catch {
            await webRTC?.shutdown()
            try? await store.shutdown()
            throw ServerStartError("Cannot prepare the database: \(error)")
        }
        await server.registry.attach(writer: server.writer, directory: server.directory, logger: logger,
                                     recordingsDirectory: server.recordingsDirectory, webRTC: webRTC,
                                     newConnectionID: { [unowned server] in server.newConnectionID() },
                                     claimOrigin: { [cluster = server.cluster] eventID, summary in await cluster?.claim(eventID, summary) })
        await server.rooms.attach()
        return server
    }

    /// The cluster's settings checked (PROTOCOL.md 8: PostgreSQL only, a secret of 32 bytes or
    /// more, an http(s) URL); returns this node's id.
    private static func checkCluster(_ settings: ClusterSettings, _ configuration: ServerConfiguration) throws(ServerStartError) -> String {
        guard let database = configuration.databaseURL, isPostgres(database) else {
            throw ServerStartError("--node-url needs --database postgres://…: the nodes of a cluster share one PostgreSQL database, and SQLite is one node's file.")
        }
        guard settings.secret.utf8.count >= ClusterSettings.minimumSecretBytes else {
            throw ServerStartError("--cluster-secret must be at least \(ClusterSettings.minimumSecretBytes) bytes, not \(settings.secret.utf8.count).")
        }
        guard let url = URL(string: settings.nodeURL), ["http", "https"].contains(url.scheme ?? ""), url.host?.isEmpty == false else {
            throw ServerStartError("--node-url must be this node's base URL as the other nodes reach it, like http://10.0.0.2:8000, not \(settings.nodeURL).")
        }
        let nodeID: String
        if let given = settings.nodeID { nodeID = given } else { nodeID = try NodeID.loadOrCreate(in: configuration.dataDirectory) }
        guard Identifier.isValid(nodeID) else {
            throw ServerStartError("--node-id must be 1–64 characters of A–Z, a–z, 0–9, _ . @ -, not \(nodeID).")
        }
        return nodeID
    }

    private static func isPostgres(_ url: String) -> Bool {
        url.hasPrefix("postgres://") || url.hasPrefix("postgresql://")
    }

    private static func openStore(_ configuration: ServerConfiguration, logger: Logger) async throws(ServerStartError) -> any EventStore & RoomStore & ClusterStore {
        let store: any EventStore & RoomStore & ClusterStore
        let described: String
        if let url = configuration.databaseURL, isPostgres(url) {
            described = PostgresEventStore.redactingPassword(url)
            // The pool logs every failed connection attempt as an error; a failed start must be
            // one line (PROTOCOL.md 7), and later outages show in the requests' own warnings.
            var poolLogger = logger
            poolLogger.logLevel = .critical
            do {
                let postgres = try await PostgresEventStore.open(url: url, logger: poolLogger)
                do {
                    try await postgres.ping()
                } catch {
                    try? await postgres.shutdown()
                    throw ServerStartError("Cannot reach the PostgreSQL database \(described): is it running, and are host, port, user, password and database right?")
                }
                store = postgres
            } catch let error as ServerStartError {
                throw error
            } catch {
                throw ServerStartError("--database \(described): \(error)")
            }
        } else {
            let path: String
            switch configuration.databaseURL {
            case nil, "": path = URL(fileURLWithPath: configuration.dataDirectory).appendingPathComponent("airwave.sqlite").path
            case let url? where url.hasPrefix("sqlite://"): path = String(url.dropFirst("sqlite://".count))
            case let url?: throw ServerStartError("--database must be postgres://USER:PASS@HOST:PORT/DB, sqlite://PATH or empty (SQLite in --data-dir), not \(url).")
            }
            described = path
            do {
                store = try await SQLiteEventStore.open(path: path, logger: logger)
            } catch {
                throw ServerStartError("Cannot open the database at \(path): \(error)")
            }
        }
        do {
            try await store.migrate()
            return store
        } catch {
            try? await store.shutdown()
            throw ServerStartError("Cannot prepare the database \(described): \(error)")
        }
    }

    /// True once shutdown has begun: no new connections are accepted.
    var isDraining: Bool { draining.withLockedValue { $0 } }

    /// A connection on `channel`, its writer in place. Call on the channel's event loop.
    func makeConnection(_ channel: any Channel) throws -> ClientConnection {
        try ClientConnection(id: newConnectionID(), channel: channel, metrics: metrics, queueLimit: configuration.sendQueueLimit)
    }

    /// A connection id no other connection of this process has (WebSocket or WebRTC).
    func newConnectionID() -> ConnectionID {
        ConnectionID(nextConnectionID.withLockedValue { next in
            next += 1
            return next
        })
    }

    /// `<data-dir>/recordings`: one folder per event, one Ogg Opus file per recording.
    var recordingsDirectory: String {
        URL(fileURLWithPath: configuration.dataDirectory).appendingPathComponent("recordings").path
    }

    /// The edge serving `eventID` here when its origin is another live node: the running one,
    /// or a new one. Nil when this server is no node or the event has no live origin elsewhere.
    func edge(for eventID: String) async throws -> EdgeEventDriver? {
        guard let cluster, let edges else { return nil }
        if let edge = await edges.existing(eventID) { return edge }
        // The origin row is written before the host hears `stream_link` (`ClusterNode.claim`), so
        // whoever knows the event's id finds it here.
        guard let origin = try await cluster.origin(of: eventID), origin.nodeID != cluster.identity.nodeID else { return nil }
        return await edges.edge(for: eventID)
    }

    /// The error for a join to an event that is not live here: ended, never existed, or live on
    /// another node of the cluster (`server_busy` naming that node).
    func eventGone(_ eventID: String) async throws -> ProtocolError {
        if let event = try await store.event(id: eventID, withParticipants: false) {
            if event.isLive, let cluster, try await cluster.origin(of: eventID) == nil {
                // Its origin died and its host may resume it on any node within the grace period
                // (PROTOCOL.md 8): not over until then; after it, recorded as over here.
                let now = Timestamp.now()
                let departure = try await store.originDeparture(of: eventID)
                // Its origin row was ended: over, though the `events` row may not say so yet (its
                // origin's writer records the end).
                if departure?.endedAt != nil {
                    return ProtocolError(.eventEnded, "This event has ended.")
                }
                if let departure, resumable(departure, now: now) {
                    return ProtocolError(.serverBusy, "This event's node is gone; it may resume shortly. Try again.",
                                         details: ["reason": "no_origin"])
                }
                writer.enqueue([StoreRecord(.eventEnded(eventID: eventID, reason: "host_timeout", at: now))])
                return ProtocolError(.eventEnded, "This event has ended.")
            }
            if event.isLive, let cluster, let origin = try await cluster.origin(of: eventID), origin.nodeID != cluster.identity.nodeID {
                // Until edges relay events (the cascade), its listeners connect to its origin.
                return ProtocolError(.serverBusy, "This event is served by node \(origin.nodeID); connect to \(origin.url).",
                                     details: ["reason": "other_node", "origin_node": .string(origin.nodeID), "origin_url": .string(origin.url)])
            }
            return ProtocolError(.eventEnded, "This event has ended.")
        }
        return ProtocolError(.eventNotFound, "There is no event \(eventID).")
    }

    /// Serves until SIGTERM/SIGINT (or `shutdown()`), then drains: `server_shutdown` to every
    /// connection, closes, writes what is queued, and returns.
    /// - Parameter onListening: called with the bound port once the server accepts connections.
    public func run(signals: [UnixSignal] = [.sigterm, .sigint], onListening: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        let router = Router(context: AirwaveRequestContext.self)
        router.add(middleware: StoreFailureMiddleware(logger: logger))  // first: it covers every route below
        HTTPRoutes(server: self).register(on: router)
        RoomHTTPRoutes(server: self).register(on: router)
        RecordingHTTPRoutes(server: self).register(on: router)
        WebRTCHTTPRoutes(server: self).register(on: router)
        ListenHTTPRoutes(server: self).register(on: router)
        WebClientRoutes(server: self).register(on: router)  // last: it serves what no route claims
        let limits = configuration.connections
        let gate = self.gate
        let app = Application(
            router: router,
            server: HTTPServerBuilder { responder in AirwaveChildChannel(responder: responder, service: self, limits: limits, gate: gate) },
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "airwave"),
            onServerRunning: { [logger] channel in
                await onListening(channel.localAddress?.port ?? 0)
                if gate.maxConnections < limits.maxConnections {
                    logger.notice("max connections lowered to fit the open-file limit", metadata: ["max_connections": "\(gate.maxConnections)"])
                }
            },
            logger: logger)
        let relay = RelayService(server: self)
        // Reverse order on shutdown: the relay drains (server_shutdown to everyone) before the
        // HTTP server stops; the durations keep the whole exit within PROTOCOL.md's 10 s.
        var groupConfiguration = ServiceGroupConfiguration(
            services: [.init(service: app), .init(service: relay)],
            gracefulShutdownSignals: signals,
            cancellationSignals: [],
            logger: logger)
        groupConfiguration.maximumGracefulShutdownDuration = .seconds(8)
        groupConfiguration.maximumCancellationDuration = .seconds(1)
        let group = ServiceGroup(configuration: groupConfiguration)
        serviceGroup.withLockedValue { $0 = group }
        defer { serviceGroup.withLockedValue { $0 = nil } }
        do {
            try await group.run()
        } catch {
            try? await store.shutdown()
            throw ServerStartError(Self.describe(error, configuration))
        }
        try? await store.shutdown()
    }

    /// Starts the same graceful shutdown a SIGTERM does.
    public func shutdown() async {
        let group = serviceGroup.withLockedValue { $0 }
        await group?.triggerGracefulShutdown()
    }

    func beginDraining() {
        draining.withLockedValue { $0 = true }
    }

    private static func describe(_ error: any Error, _ configuration: ServerConfiguration) -> String {
        if let error = error as? IOError, error.errnoCode == EADDRINUSE {
            return "Port \(configuration.port) on \(configuration.host) is already in use."
        }
        return "The server stopped: \(error)"
    }
}

/// Runs the store writer, and on graceful shutdown (before the HTTP server stops) tells every
/// connection `server_shutdown`, closes them and writes what is left.
struct RelayService: Service {
    let server: AirwaveServer

    func run() async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await server.writer.run() }
            // Cancelled on its own at the end: the writer must drain, not be cancelled.
            let clusterTask = server.cluster.map { cluster in
                Task {
                    async let rooms: Void = server.rooms.follow(cluster.roomNotifications)
                    await cluster.run()
                    await rooms
                }
            }
            try? await gracefulShutdown()
            server.beginDraining()
            server.logger.info("shutting down: telling every connection")
            await server.registry.shutdownAll(handOver: server.cluster != nil)
            await server.edges?.shutdownAll()
            await server.webRTC?.shutdown()
            await server.rooms.shutdownAll()
            await server.directory.shutdown()
            server.writer.finish()
            await server.cluster?.leave()
            clusterTask?.cancel()
            await clusterTask?.value
            try await group.waitForAll()
        }
    }
}
