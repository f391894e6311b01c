import AirwaveProtocol
import Metrics
import NIOConcurrencyHelpers
import Prometheus

/// The server's Prometheus metrics, made through swift-metrics with a factory that belongs to
/// this server (no global bootstrap, so several servers can run in one test process).
final class ServerMetrics: Sendable {
    let registry: PrometheusCollectorRegistry
    private let factory: PrometheusMetricsFactory
    let eventsLive: Metrics.Gauge
    let storeWrites: Metrics.Counter
    let storeErrors: Metrics.Counter
    let noticesOut: Metrics.Counter
    private let cache = NIOLockedValueBox([String: Metrics.Counter]())
    private let gauges = NIOLockedValueBox([String: Metrics.Gauge]())
    private let openConnections = NIOLockedValueBox([String: Int]())

    init() {
        registry = PrometheusCollectorRegistry()
        factory = PrometheusMetricsFactory(registry: registry)
        eventsLive = Metrics.Gauge(label: "airwave_events_live", factory: factory)
        storeWrites = Metrics.Counter(label: "airwave_store_records_written_total", factory: factory)
        storeErrors = Metrics.Counter(label: "airwave_store_errors_total", factory: factory)
        noticesOut = Metrics.Counter(label: "airwave_frames_out_total", dimensions: [("kind", "text")], factory: factory)
    }

    private func counter(_ label: String, _ key: String, _ value: String) -> Metrics.Counter {
        let cacheKey = "\(label)|\(key)|\(value)"
        return cache.withLockedValue { cache in
            if let counter = cache[cacheKey] { return counter }
            let counter = Metrics.Counter(label: label, dimensions: [(key, value)], factory: factory)
            cache[cacheKey] = counter
            return counter
        }
    }

    /// A connection of `endpoint` (start, join, directory) opened (+1) or closed (-1).
    func connectionsChanged(endpoint: String, by delta: Int) {
        let gauge = gauges.withLockedValue { gauges in
            if let gauge = gauges[endpoint] { return gauge }
            let gauge = Metrics.Gauge(label: "airwave_connections_open", dimensions: [("endpoint", endpoint)], factory: factory)
            gauges[endpoint] = gauge
            return gauge
        }
        let now = openConnections.withLockedValue { open in
            open[endpoint, default: 0] += delta
            return open[endpoint]!
        }
        gauge.record(now)
    }

    func messageIn(type: String) { counter("airwave_messages_in_total", "type", type).increment() }
    func messageOut(type: String, count: Int) { counter("airwave_messages_out_total", "type", type).increment(by: Int64(count)) }
    func error(code: String) { counter("airwave_errors_total", "code", code).increment() }
    func authFailure(reason: String) { counter("airwave_auth_failures_total", "reason", reason).increment() }

    /// A media frame was received (before any check).
    func mediaIn(kind: String) { counter("airwave_media_frames_in_total", "kind", kind).increment() }
    /// A media frame went to `recipients` connections.
    func mediaForwarded(kind: MediaFrameHeader.Kind, recipients: Int, bytes: Int) {
        let label = kind == .screen ? "screen" : "audio"
        counter("airwave_media_frames_forwarded_total", "kind", label).increment(by: Int64(recipients))
        counter("airwave_media_bytes_out_total", "kind", label).increment(by: Int64(bytes))
    }
    /// A media frame was dropped: `gate`, `muted`, `inactive_pipeline`, `malformed`, `rate_limited`.
    func mediaDropped(reason: String, count: Int = 1) {
        counter("airwave_media_frames_dropped_total", "reason", reason).increment(by: Int64(count))
    }

    /// Prometheus text exposition.
    func render() -> String { registry.emitToString() }
}
