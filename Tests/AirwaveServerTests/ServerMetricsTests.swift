import Testing

@testable import AirwaveServer

@Suite struct ServerMetricsTests {
    /// The WebRTC driver's dropped datagrams are exported, at 0 from the start so the series exists.
    @Test func droppedWebRTCDatagramsAreExported() {
        let metrics = ServerMetrics()
        #expect(metrics.render().contains(#"airwave_webrtc_datagrams_dropped_total{reason="socket_full"} 0"#))
        metrics.webRTCDatagramsDropped(reason: .socketFull, count: 3)
        metrics.webRTCDatagramsDropped(reason: .socketFull, count: 2)
        #expect(metrics.render().contains(#"airwave_webrtc_datagrams_dropped_total{reason="socket_full"} 5"#))
    }
}
