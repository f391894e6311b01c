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
    let store: any EventStore & RoomStore
    let verifier: TokenVerifier
    let metrics: ServerMetrics
    let registry: LiveEventRegistry
    let rooms: ListeningRoomRegistry
    let directory: ActiveStreamsDirectory
    let writer: StoreWriter
    /// WHEP and WHIP over the WebRTC UDP port; nil when turned off.
    let webRTC: WebRTCGateway?
    private let draining = NIOLockedValueBox(false)
    private let nextConnectionID = NIOLockedValueBox<UInt64>(0)
    private let serviceGroup = NIOLockedValueBox<ServiceGroup?>(nil)

    private init(configuration: ServerConfiguration, logger: Logger, store: any EventStore & RoomStore, verifier: TokenVerifier,
                 metrics: ServerMetrics, webRTC: WebRTCGateway?) {
        self.configuration = configuration
        self.logger = logger
        self.store = store
        self.verifier = verifier
        self.metrics = metrics
        self.webRTC = webRTC
        registry = LiveEventRegistry(configuration: configuration.liveEvent, metrics: metrics)
        rooms = ListeningRoomRegistry(store: store, metrics: metrics)
        directory = ActiveStreamsDirectory(interval: configuration.directoryInterval)
        writer = StoreWriter(store: store, logger: logger, metrics: metrics)
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
        let store = try await openStore(configuration, logger: logger)
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
                                   metrics: metrics, webRTC: webRTC)
        await server.registry.attach(writer: server.writer, directory: server.directory, logger: logger,
                                     recordingsDirectory: server.recordingsDirectory, webRTC: webRTC)
        await server.rooms.attach(writer: server.writer)
        return server
    }

    private static func openStore(_ configuration: ServerConfiguration, logger: Logger) async throws(ServerStartError) -> any EventStore & RoomStore {
        let store: any EventStore & RoomStore
        let described: String
        if let url = configuration.databaseURL, url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") {
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
            let ended = try await store.endInterruptedEvents(reason: "server_restart", at: Timestamp.now().milliseconds)
            if ended > 0 { logger.info("ended events left live by the last run", metadata: ["count": "\(ended)"]) }
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

    /// The error for a join to an event that is not live: ended, or never existed.
    /// `<data-dir>/recordings`: one folder per event, one Ogg Opus file per recording.
    var recordingsDirectory: String {
        URL(fileURLWithPath: configuration.dataDirectory).appendingPathComponent("recordings").path
    }

    func eventGone(_ eventID: String) async throws -> ProtocolError {
        if try await store.event(id: eventID, withParticipants: false) != nil {
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
        WebClientRoutes(server: self).register(on: router)  // last: it serves what no route claims
        let limits = configuration.connections
        let gate = ConnectionGate(limits: limits)
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
            try? await gracefulShutdown()
            server.beginDraining()
            server.logger.info("shutting down: telling every connection")
            await server.registry.shutdownAll()
            await server.webRTC?.shutdown()
            await server.rooms.shutdownAll()
            await server.directory.shutdown()
            server.writer.finish()
            try await group.waitForAll()
        }
    }
}
