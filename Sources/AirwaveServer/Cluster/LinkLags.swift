import AirwaveCore
import AirwaveProtocol
import Metrics
import NIOConcurrencyHelpers
import NIOCore

/// How far behind the origin each edge's link is (issue 16), measured on the origin: the age of
/// the oldest frame still waiting in the link socket's send queue (`OutboundQueue.lag`), zero
/// when that queue is drained. Each open link is sampled once a second on its socket's event
/// loop, so a frame costs nothing more than it did. What the socket already took (NIO's 64 KiB
/// and the kernel's send buffer) is not counted: the queue only fills once those are full.
/// A sample is both the gauge `airwave_link_lag_seconds{edge,event_id}` and the `lag_ms` of
/// `GET /api/cluster`'s cascade; the series goes when the link closes.
final class LinkLags: Sendable {
    /// How often an open link's queue is sampled.
    static let interval: TimeAmount = .seconds(1)

    private struct Key: Hashable {
        let eventID: String
        let edge: String
    }

    private struct Watch {
        /// The link's socket; a newer link of the same edge for the event replaces it.
        let connection: ConnectionID
        let task: RepeatedTask
        let gauge: Metrics.Gauge
        var lag: Duration = .zero
    }

    private let metrics: ServerMetrics
    private let watches = NIOLockedValueBox<[Key: Watch]>([:])

    init(metrics: ServerMetrics) {
        self.metrics = metrics
    }

    /// Samples `connection`, the edge's link for the event, until `unwatch`. The series starts
    /// at 0 at once, so an open link always has one.
    func watch(_ connection: ClientConnection, eventID: String, edge: String) {
        let key = Key(eventID: eventID, edge: edge)
        let id = connection.id
        let task = connection.channel.eventLoop.scheduleRepeatedTask(initialDelay: Self.interval, delay: Self.interval) {
            [weak self] _ in
            self?.sampled(key, id, lag: connection.queueLag(now: .now()))
        }
        let gauge = metrics.linkLagGauge(edge: edge, eventID: eventID)
        let replaced = watches.withLockedValue { watches in
            gauge.record(0)
            return watches.updateValue(Watch(connection: id, task: task, gauge: gauge), forKey: key)
        }
        replaced?.task.cancel()
    }

    /// The link's socket closed: its series goes, unless a newer link of the edge took over.
    func unwatch(_ connection: ConnectionID, eventID: String, edge: String) {
        let key = Key(eventID: eventID, edge: edge)
        let gone = watches.withLockedValue { watches -> Watch? in
            guard watches[key]?.connection == connection, let gone = watches.removeValue(forKey: key) else { return nil }
            gone.gauge.destroy()
            return gone
        }
        gone?.task.cancel()
    }

    /// The last sample of the edge's link for the event; nil when no link of it is open.
    func lag(eventID: String, edge: String) -> Duration? {
        watches.withLockedValue { $0[Key(eventID: eventID, edge: edge)]?.lag }
    }

    /// Under the lock with `unwatch`, so a sample that comes late never brings a series back.
    private func sampled(_ key: Key, _ connection: ConnectionID, lag: Duration) {
        watches.withLockedValue { watches in
            guard var watch = watches[key], watch.connection == connection else { return }
            watch.lag = lag
            watch.gauge.record(Double(lag.milliseconds) / 1000)
            watches[key] = watch
        }
    }
}
