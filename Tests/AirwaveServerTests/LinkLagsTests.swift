import AirwaveCore
import AirwaveProtocol
import NIOCore
import NIOEmbedded
import Testing

@testable import AirwaveServer

/// `LinkLags` on a link socket (a bare `ClientConnection` on an `EmbeddedChannel`) whose
/// writability is in hand: the lag an origin reports per edge, as a gauge and for the cascade.
@Suite struct LinkLagsTests {
    static let series = #"airwave_link_lag_seconds{edge="b",event_id="e1"}"#

    /// The gauge's value in the Prometheus text, nil when the series is not there.
    static func gauge(_ metrics: ServerMetrics) -> Double? {
        metrics.render().split(separator: "\n").first { $0.hasPrefix(series + " ") }.flatMap { Double($0.dropFirst(series.count + 1)) }
    }

    static func link(_ id: UInt64, metrics: ServerMetrics) throws -> (EmbeddedChannel, ClientConnection) {
        let channel = EmbeddedChannel()
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9)).wait()
        return (channel, try ClientConnection(id: ConnectionID(id), channel: channel, metrics: metrics, queueLimit: 1 << 20))
    }

    static func setWritable(_ channel: EmbeddedChannel, _ writable: Bool) {
        channel.isWritable = writable
        channel.pipeline.fireChannelWritabilityChanged()
    }

    @Test func aLinkReportsTheAgeOfItsOldestQueuedFrameZeroOnceDrainedAndNothingOnceClosed() throws {
        let metrics = ServerMetrics()
        let lags = LinkLags(metrics: metrics)
        let (channel, connection) = try Self.link(1, metrics: metrics)
        lags.watch(connection, eventID: "e1", edge: "b")
        #expect(Self.gauge(metrics) == 0, "the series is there from the link's first moment")
        #expect(lags.lag(eventID: "e1", edge: "b") == .zero)

        // The socket takes nothing more: a frame handed to the link 700 ms ago still waits.
        Self.setWritable(channel, false)
        let frame = WebSocketWire.frame(opcode: WebSocketWire.text, payload: ByteBuffer(string: "notice"))
        connection.deliver(frame, class: .control, now: Timestamp(milliseconds: Timestamp.now().milliseconds - 700))
        channel.embeddedEventLoop.advanceTime(by: LinkLags.interval)
        let lag = try #require(lags.lag(eventID: "e1", edge: "b"))
        #expect(lag >= .milliseconds(700) && lag < .seconds(60), "\(lag)")
        #expect(Self.gauge(metrics).map { $0 >= 0.7 } == true, "\(String(describing: Self.gauge(metrics)))")

        // The socket drains the queue: the next sample is 0.
        Self.setWritable(channel, true)
        channel.embeddedEventLoop.advanceTime(by: LinkLags.interval)
        #expect(lags.lag(eventID: "e1", edge: "b") == .zero)
        #expect(Self.gauge(metrics) == 0)

        lags.unwatch(connection.id, eventID: "e1", edge: "b")
        #expect(Self.gauge(metrics) == nil, "the series goes with the link")
        #expect(lags.lag(eventID: "e1", edge: "b") == nil)
        _ = try channel.finish()
    }

    /// An edge that re-links: the older socket's close (which may come after the new link
    /// opened) leaves the newer link's series alone, and its sampling stops.
    @Test func aNewerLinkOfTheEdgeKeepsItsSeriesWhenTheOlderOneCloses() throws {
        let metrics = ServerMetrics()
        let lags = LinkLags(metrics: metrics)
        let (oldChannel, old) = try Self.link(1, metrics: metrics)
        let (newChannel, new) = try Self.link(2, metrics: metrics)
        lags.watch(old, eventID: "e1", edge: "b")
        Self.setWritable(oldChannel, false)
        old.deliver(WebSocketWire.frame(opcode: WebSocketWire.text, payload: ByteBuffer(string: "stuck")), class: .control,
                    now: Timestamp(milliseconds: Timestamp.now().milliseconds - 5000))
        lags.watch(new, eventID: "e1", edge: "b")
        oldChannel.embeddedEventLoop.advanceTime(by: LinkLags.interval)
        newChannel.embeddedEventLoop.advanceTime(by: LinkLags.interval)
        #expect(lags.lag(eventID: "e1", edge: "b") == .zero, "the replaced link is sampled no more")
        lags.unwatch(old.id, eventID: "e1", edge: "b")
        #expect(Self.gauge(metrics) == 0)
        lags.unwatch(new.id, eventID: "e1", edge: "b")
        #expect(Self.gauge(metrics) == nil)
        _ = try oldChannel.finish()
        _ = try newChannel.finish()
    }
}
