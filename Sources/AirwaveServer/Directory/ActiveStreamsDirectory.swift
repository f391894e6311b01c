import AirwaveCore
import AirwaveProtocol

/// The active-streams directory (PROTOCOL.md 2.5): the summary of every live event, sent to
/// each subscriber on connect and again whenever it changes, at most once per interval.
actor ActiveStreamsDirectory {
    private var summaries: [String: LiveServerMessage.StreamSummary] = [:]
    private var subscribers = ConnectionGroups()
    private var throttle: Throttle
    private var timer: Task<Void, Never>?

    init(interval: Duration) {
        throttle = Throttle(interval: interval)
    }

    /// Live events, oldest first.
    var streams: [LiveServerMessage.StreamSummary] {
        summaries.values.sorted { ($0.startedAt, $0.eventID) < ($1.startedAt, $1.eventID) }
    }

    /// The summary of one live event.
    func summary(of eventID: String) -> LiveServerMessage.StreamSummary? { summaries[eventID] }

    func subscribe(_ connection: ClientConnection) {
        subscribers.insert(connection)
        connection.send(LiveServerMessage.activeStreams(streams))
    }

    func unsubscribe(_ id: ConnectionID) {
        subscribers.remove(id)
    }

    func update(_ summary: LiveServerMessage.StreamSummary) {
        summaries[summary.eventID] = summary
        changed()
    }

    func remove(_ eventID: String) {
        guard summaries.removeValue(forKey: eventID) != nil else { return }
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
