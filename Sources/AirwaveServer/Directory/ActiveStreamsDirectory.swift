import AirwaveCore
import AirwaveProtocol

/// The active-streams directory (PROTOCOL.md 2.5): the summary of every live event, sent to
/// each subscriber on connect and again whenever it changes, at most once per interval.
///
/// In a cluster (PROTOCOL.md 8) it lists this node's events and those the other nodes published
/// (``replaceRemote(_:)``); each change of a local event is also handed to ``onLocalChange``,
/// which publishes it for the others.
actor ActiveStreamsDirectory {
    /// This node's events.
    private var summaries: [String: LiveServerMessage.StreamSummary] = [:]
    /// Other nodes' events, as last read from the store.
    private var remote: [String: LiveServerMessage.StreamSummary] = [:]
    /// Told of every change of a local event: its summary, or nil when it ended.
    private var onLocalChange: (@Sendable (String, LiveServerMessage.StreamSummary?) -> Void)?
    private var subscribers = ConnectionGroups()
    private var throttle: Throttle
    private var timer: Task<Void, Never>?

    init(interval: Duration) {
        throttle = Throttle(interval: interval)
    }

    /// Live events of every node, oldest first.
    var streams: [LiveServerMessage.StreamSummary] {
        summaries.merging(remote) { local, _ in local }.values.sorted { ($0.startedAt, $0.eventID) < ($1.startedAt, $1.eventID) }
    }

    /// The summary of one live event of any node.
    func summary(of eventID: String) -> LiveServerMessage.StreamSummary? { summaries[eventID] ?? remote[eventID] }

    /// Whether the event is live on this node.
    func isLocal(_ eventID: String) -> Bool { summaries[eventID] != nil }

    /// Sends every later change of a local event to `publish` (once: the cluster node's).
    func publishLocalChanges(to publish: @escaping @Sendable (String, LiveServerMessage.StreamSummary?) -> Void) {
        onLocalChange = publish
        for (eventID, summary) in summaries { publish(eventID, summary) }
    }

    /// The other nodes' events now; subscribers hear of it if anything changed.
    func replaceRemote(_ summaries: [LiveServerMessage.StreamSummary]) {
        let next = Dictionary(summaries.map { ($0.eventID, $0) }, uniquingKeysWith: { _, last in last })
        guard next != remote else { return }
        remote = next
        changed()
    }

    func subscribe(_ connection: ClientConnection) {
        subscribers.insert(connection)
        connection.send(LiveServerMessage.activeStreams(streams))
    }

    func unsubscribe(_ id: ConnectionID) {
        subscribers.remove(id)
    }

    func update(_ summary: LiveServerMessage.StreamSummary) {
        guard summaries.updateValue(summary, forKey: summary.eventID) != summary else { return }
        onLocalChange?(summary.eventID, summary)
        changed()
    }

    /// The event is no longer live here. A `handedOver` one is not over: its origin row is left
    /// as it is, for another node to resume it (PROTOCOL.md 8).
    func remove(_ eventID: String, handedOver: Bool = false) {
        guard summaries.removeValue(forKey: eventID) != nil else { return }
        if !handedOver { onLocalChange?(eventID, nil) }
        changed()
    }

    /// Closes every subscriber with `server_shutdown`.
    func shutdown() {
        subscribers.broadcast(WebSocketWire.text(LiveServerMessage.serverShutdown))
        for connection in subscribers.all { connection.close(.goingAway, reason: "server_shutdown") }
        subscribers = ConnectionGroups()
        timer?.cancel()
    }

    private func changed() {
        throttle.markChanged()
        flush()
    }

    private func flush() {
        let now = Timestamp.now()
        if throttle.fire(now: now) {
            subscribers.broadcast(WebSocketWire.text(LiveServerMessage.activeStreams(streams)))
            return
        }
        guard timer == nil, let due = throttle.dueAt else { return }
        let delay = max(0, due.milliseconds - now.milliseconds)
        timer = Task {
            try? await Task.sleep(for: .milliseconds(delay))
            self.timerFired()
        }
    }

    private func timerFired() {
        timer = nil
        flush()
    }
}
