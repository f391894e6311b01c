import AirwaveCore
import AirwaveProtocol
import AirwaveWebRTC
import Logging

/// Knows every live event: finds an event by id, a host's event by user, starts and forgets
/// drivers. A host has at most one live event.
actor LiveEventRegistry {
    private var drivers: [String: LiveEventDriver] = [:]
    private var eventByHost: [String: String] = [:]
    private var tasks: [String: Task<Void, Never>] = [:]
    private let configuration: LiveEventConfiguration
    private var services: LiveEventDriver.Services?
    private let metrics: ServerMetrics

    init(configuration: LiveEventConfiguration, metrics: ServerMetrics) {
        self.configuration = configuration
        self.metrics = metrics
    }

    func attach(writer: StoreWriter, directory: ActiveStreamsDirectory, logger: Logger, recordingsDirectory: String,
                webRTC: WebRTCGateway?, newConnectionID: @escaping @Sendable () -> ConnectionID,
                claimOrigin: @escaping @Sendable (String, LiveServerMessage.StreamSummary) async -> Void = { _, _ in }) {
        services = LiveEventDriver.Services(
            writer: writer, directory: directory, metrics: metrics, logger: logger, recordingsDirectory: recordingsDirectory,
            onEnded: { [weak self] eventID in await self?.forget(eventID) }, webRTC: webRTC,
            newConnectionID: newConnectionID, claimOrigin: claimOrigin)
    }

    /// The live event's driver, if the event is live.
    func driver(for eventID: String) -> LiveEventDriver? { drivers[eventID] }

    /// Whether the host runs a live event here.
    func hasEvent(hostedBy userID: String) -> Bool {
        eventByHost[userID].flatMap { drivers[$0] } != nil
    }

    /// The edges of this node's events and their clients (`GET /api/cluster`), by event id.
    func cascade() -> [(eventID: String, edges: [String: Int])] {
        drivers.keys.sorted().compactMap { eventID in
            let edges = drivers[eventID]!.linkClients.withLockedValue { $0 }
            return edges.isEmpty ? nil : (eventID, edges)
        }
    }

    /// How many events are live.
    var liveCount: Int { drivers.count }

    /// Hands the host's connection to its live event (resume) or starts a new event, or, with
    /// `interrupted`, continues the host's event whose origin node died (PROTOCOL.md 8).
    func connectHost(
        _ host: UserIdentity, connection: ClientConnection, mixed: Bool = false,
        interrupted: (eventID: String, LiveEvent.Resumption)? = nil, joinURL: @Sendable (String) -> String
    ) -> LiveEventDriver {
        if let eventID = eventByHost[host.userID], let driver = drivers[eventID],
            driver.submit(.hostConnected(connection.id, joinURL: joinURL(eventID)), connection: connection, mixed: mixed)
        {
            return driver
        }
        guard let services else { preconditionFailure("registry used before attach") }
        let eventID = interrupted?.eventID ?? Self.newEventID()
        let driver = LiveEventDriver(eventID: eventID, host: host)
        let engine = interrupted.map { LiveEvent(resuming: eventID, host: host, $0.1, now: .now(), configuration: configuration) }
            ?? LiveEvent(eventID: eventID, host: host, now: .now(), configuration: configuration)
        drivers[eventID] = driver
        eventByHost[host.userID] = eventID
        metrics.eventsLive.record(drivers.count)
        services.logger.info(interrupted == nil ? "event started" : "event resumed after its origin died",
                             metadata: ["event_id": "\(eventID)", "host": "\(host.userID)"])
        driver.submit(.hostConnected(connection.id, joinURL: joinURL(eventID)), connection: connection, mixed: mixed)
        tasks[eventID] = Task { await driver.run(engine: engine, services: services) }
        return driver
    }

    private func forget(_ eventID: String) {
        guard let driver = drivers.removeValue(forKey: eventID) else { return }
        if eventByHost[driver.host.userID] == eventID { eventByHost[driver.host.userID] = nil }
        tasks[eventID] = nil
        metrics.eventsLive.record(drivers.count)
    }

    /// Sends `server_shutdown` through every event and waits for their drivers to stop. On a
    /// node of a cluster (`handOver`) the events do not end: another node may resume them.
    func shutdownAll(handOver: Bool = false) async {
        for driver in drivers.values {
            if handOver { driver.handOver() } else { driver.shutdown() }
        }
        let running = Array(tasks.values)
        for task in running { await task.value }
    }

    /// A fresh event id: 16 random characters of `[a-z0-9]`.
    static func newEventID() -> String {
        RandomToken.make(length: 16, alphabet: RandomToken.lowercaseAlphanumerics)
    }
}
