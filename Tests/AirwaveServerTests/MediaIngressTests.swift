import AirwaveCore
import AirwaveProtocol
import NIOCore
import Testing

@testable import AirwaveServer

/// The one media ingress check: a WebSocket's binary frame and a WHIP packet get the same
/// validation, the same budgets and the same counter labels.
@Suite("Media ingress")
struct MediaIngressTests {
    static func metricsText(_ metrics: ServerMetrics) -> String {
        var bytes: [UInt8] = []
        metrics.registry.emit(into: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    static func wire(_ frame: MediaFrame) -> ByteBuffer { frame.encoded() }

    /// An Opus frame whose payload libopus refuses (an empty code-3 packet).
    static let badOpus = MediaFrame(header: MediaFrameHeader(kind: .opus, sequence: 1, timestamp: 960), payload: ByteBuffer(bytes: [0x03]))

    @Test("malformed Opus: the same rejection and label from both transports")
    func malformedOpus() {
        let metrics = ServerMetrics()
        var socket = MediaIngress(limits: MediaLimits(), metrics: metrics)
        var whip = MediaIngress(limits: MediaLimits(), metrics: metrics)
        let now = Timestamp(milliseconds: 1000)
        guard case .malformed(let fromSocket) = socket.admit(Self.wire(Self.badOpus), now: now),
              case .malformed(let fromWHIP) = whip.admit(Self.badOpus, wireBytes: 17, now: now)
        else {
            Issue.record("a bad Opus packet was accepted")
            return
        }
        #expect(fromSocket.reason == "bad_opus")
        #expect(fromWHIP.reason == fromSocket.reason)
        #expect(Self.metricsText(metrics).contains(#"airwave_media_frames_dropped_total{reason="malformed"} 2"#), "\(Self.metricsText(metrics))")
    }

    @Test("budgets: frames over the rate are dropped with the same label from both transports")
    func frameBudget() {
        var limits = MediaLimits()
        limits.frameRate = RateLimit(perSecond: 1, burst: 1)
        let metrics = ServerMetrics()
        var socket = MediaIngress(limits: limits, metrics: metrics)
        var whip = MediaIngress(limits: limits, metrics: metrics)
        let now = Timestamp(milliseconds: 1000)
        let packet: [UInt8] = [0x08, 0x00]  // TOC of one 20 ms SILK frame, then its byte: libopus parses it
        let frame = MediaFrame(header: MediaFrameHeader(kind: .opus, sequence: 1, timestamp: 960), payload: ByteBuffer(bytes: packet))
        if case .accepted = socket.admit(Self.wire(frame), now: now) {} else { Issue.record("first socket frame refused") }
        if case .accepted = whip.admit(frame, wireBytes: 16 + packet.count, now: now) {} else { Issue.record("first WHIP frame refused") }
        if case .overLimit = socket.admit(Self.wire(frame), now: now) {} else { Issue.record("socket frame over the rate accepted") }
        if case .overLimit = whip.admit(frame, wireBytes: 16 + packet.count, now: now) {} else { Issue.record("WHIP frame over the rate accepted") }
        let text = Self.metricsText(metrics)
        #expect(text.contains(#"airwave_media_frames_dropped_total{reason="rate_limited"} 2"#), "\(text)")
        #expect(text.contains(#"airwave_media_frames_in_total{kind="opus"} 4"#), "\(text)")
    }
}
