import AirwaveProtocol
import AirwaveWebRTCUDP
import Metrics
import NIOConcurrencyHelpers
import Prometheus

/// The server's Prometheus metrics, made through swift-metrics with a factory that belongs to
/// this server (no global bootstrap, so several servers can run in one test process).
final class ServerMetrics: Sendable {
    let registry: PrometheusCollectorRegistry
    private let factory: PrometheusMetricsFactory
    let eventsLive: Metrics.Gauge
    let roomsOpen: Metrics.Gauge
    let storeWrites: Metrics.Counter
    let storeErrors: Metrics.Counter
    private let cache = NIOLockedValueBox([String: Metrics.Counter]())
    private let gauges = NIOLockedValueBox([String: Metrics.Gauge]())
    private let openConnections = NIOLockedValueBox([String: Int]())
    private let eventGauges = NIOLockedValueBox([String: Metrics.Gauge]())
    /// `airwave_webrtc_datagrams_dropped_total{reason}`, made at start so the series exist at 0.
    private let webRTCDropped: [WebRTCUDPDropReason: Metrics.Counter]

    init() {
        registry = PrometheusCollectorRegistry()
        factory = PrometheusMetricsFactory(registry: registry)
        eventsLive = Metrics.Gauge(label: "airwave_events_live", factory: factory)
        roomsOpen = Metrics.Gauge(label: "airwave_rooms_open", factory: factory)
        storeWrites = Metrics.Counter(label: "airwave_store_records_written_total", factory: factory)
        storeErrors = Metrics.Counter(label: "airwave_store_errors_total", factory: factory)
        let factory = self.factory
        webRTCDropped = Dictionary(uniqueKeysWithValues: WebRTCUDPDropReason.allCases.map { reason in
            (reason, Metrics.Counter(label: "airwave_webrtc_datagrams_dropped_total", dimensions: [("reason", reason.rawValue)],
                                     factory: factory))
        })
        func make(_ label: String, _ kind: String) -> Metrics.Counter {
            Metrics.Counter(label: label, dimensions: [("kind", kind)], factory: factory)
        }
        media = MediaCounters(
            inOpus: make("airwave_media_frames_in_total", "opus"), inPCM: make("airwave_media_frames_in_total", "pcm"),
            inScreen: make("airwave_media_frames_in_total", "screen"),
            forwardedAudio: make("airwave_media_frames_forwarded_total", "audio"),
            forwardedScreen: make("airwave_media_frames_forwarded_total", "screen"),
            bytesAudio: make("airwave_media_bytes_out_total", "audio"), bytesScreen: make("airwave_media_bytes_out_total", "screen"))
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
    /// A message dropped unread because its sender was over a rate limit
    /// (`airwave_messages_dropped_total{reason="over_limit"}`).
    func droppedWhileOverLimit() { counter("airwave_messages_dropped_total", "reason", "over_limit").increment() }
    func authFailure(reason: String) { counter("airwave_auth_failures_total", "reason", reason).increment() }

    /// A message or frame on an edge link (PROTOCOL.md 8), `up` (edge to origin) or `down`.
    func linkFrames(direction: String, count: Int = 1) {
        counter("airwave_link_frames_total", "direction", direction).increment(by: Int64(count))
    }

    /// An edge opened its link again after it broke (`airwave_link_reconnects_total`).
    func linkReconnected() { counter("airwave_link_reconnects_total", "side", "edge").increment() }

    /// `airwave_link_lag_seconds{edge,event_id}` of one link on the origin (`LinkLags` samples
    /// it and destroys it when the link closes).
    func linkLagGauge(edge: String, eventID: String) -> Metrics.Gauge {
        Metrics.Gauge(label: "airwave_link_lag_seconds", dimensions: [("edge", edge), ("event_id", eventID)], factory: factory)
    }

    /// Per-frame counters, made once: the media path must not build labels per frame.
    private struct MediaCounters {
        let inOpus, inPCM, inScreen, forwardedAudio, forwardedScreen, bytesAudio, bytesScreen: Metrics.Counter
    }
    private let media: MediaCounters

    /// A media frame was received (after the header check).
    func mediaIn(kind: MediaFrameHeader.Kind) {
        switch kind {
        case .opus: media.inOpus.increment()
        case .pcm: media.inPCM.increment()
        case .screen: media.inScreen.increment()
        }
    }

    /// A media frame went to `recipients` connections.
    func mediaForwarded(kind: MediaFrameHeader.Kind, recipients: Int, bytes: Int) {
        let screen = kind == .screen
        (screen ? media.forwardedScreen : media.forwardedAudio).increment(by: Int64(recipients))
        (screen ? media.bytesScreen : media.bytesAudio).increment(by: Int64(bytes))
    }

    /// A media frame was dropped: `gate`, `muted`, `inactive_pipeline`, `malformed`, `rate_limited`.
    func mediaDropped(reason: String, count: Int = 1) {
        counter("airwave_media_frames_dropped_total", "reason", reason).increment(by: Int64(count))
    }

    /// `count` outgoing WebRTC datagrams were dropped for `reason` (the UDP driver reports them
    /// per timer pass through `WebRTCUDPConfiguration.onDroppedDatagrams`).
    func webRTCDatagramsDropped(reason: WebRTCUDPDropReason, count: Int) {
        webRTCDropped[reason]?.increment(by: Int64(count))
    }

    /// Listeners and co-hosts of one live event (`airwave_event_participants{event_id}`);
    /// nil removes the series when the event ends.
    func eventParticipants(_ eventID: String, count: Int?) {
        eventGauges.withLockedValue { gauges in
            guard let count else {
                gauges.removeValue(forKey: eventID)?.destroy()
                return
            }
            let gauge = gauges[eventID] ?? Metrics.Gauge(label: "airwave_event_participants", dimensions: [("event_id", eventID)], factory: factory)
            gauges[eventID] = gauge
            gauge.record(count)
        }
    }

    /// Prometheus text exposition.
    func render() -> String { registry.emitToString() }
}
