import AirwaveCore
import AirwaveProtocol
import Hummingbird
import HummingbirdCore
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// A WebSocket server on Airwave's own transport — the same `AirwaveChildChannel`,
/// `WebSocketFrameReader`, `WebSocketSession` and `RawFrameWriter` as the relay's endpoints —
/// whose one endpoint, `/`, sends every message back. `airwave-echo` runs it so that the
/// Autobahn cases test exactly the code path the relay's clients meet.
public struct EchoServer: Sendable {
    /// Address to listen on.
    public var host: String
    /// Port; 0 picks a free one.
    public var port: Int
    /// Largest text or binary message echoed; a larger one closes the connection with 1009.
    public var maxMessageBytes: Int

    public init(host: String = "127.0.0.1", port: Int = 9001, maxMessageBytes: Int = 16 * 1024 * 1024) {
        self.host = host
        self.port = port
        self.maxMessageBytes = maxMessageBytes
    }

    /// Serves until SIGTERM or SIGINT.
    /// - Parameter onListening: called with the bound port once connections are accepted.
    public func run(logger: Logger, onListening: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        let service = EchoService(maxMessageBytes: maxMessageBytes)
        let limits = ConnectionLimits()
        let gate = ConnectionGate(limits: limits)
        let app = Application(
            router: Router(context: BasicRequestContext.self),  // no HTTP routes: 404
            server: HTTPServerBuilder { responder in AirwaveChildChannel(responder: responder, service: service, limits: limits, gate: gate) },
            configuration: .init(address: .hostname(host, port: port), serverName: "airwave-echo"),
            onServerRunning: { channel in await onListening(channel.localAddress?.port ?? 0) },
            logger: logger)
        try await app.runService()
    }
}

/// The echo endpoint: every upgrade to `/` is admitted at once.
struct EchoService: WebSocketService {
    let maxMessageBytes: Int
    let metrics = ServerMetrics()
    private let nextID = NIOLockedValueBox<UInt64>(0)

    func webSocketRequest(_ head: HTTPRequestHead) -> Bool? {
        head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first == "/" ? true : nil
    }

    func openSession(_ request: Bool, on channel: any Channel) throws {
        let id = ConnectionID(nextID.withLockedValue { next in
            next += 1
            return next
        })
        // A queue that holds a whole echoed message: the peer reads it back while sending.
        let connection = try ClientConnection(id: id, channel: channel, metrics: metrics, queueLimit: max(512 * 1024, 2 * maxMessageBytes))
        let session = try WebSocketSession.install(
            on: channel, connection: connection, metrics: metrics, pingInterval: .seconds(15),
            limits: MessageLimits(text: maxMessageBytes, binary: maxMessageBytes), messageTimeout: .seconds(60))
        session.admitted(EchoReceiver(connection: connection), departure: {})
    }
}

/// Sends each message back as one frame of the same kind.
final class EchoReceiver: InboundReceiver {
    private let connection: ClientConnection

    init(connection: ClientConnection) {
        self.connection = connection
    }

    func text(_ text: String, now: Timestamp) -> InboundVerdict {
        connection.send(WebSocketWire.frame(opcode: WebSocketWire.text, payload: ByteBuffer(string: text)))
        return .keepReading
    }

    func binary(_ buffer: ByteBuffer, now: Timestamp) -> InboundVerdict {
        connection.send(WebSocketWire.frame(opcode: WebSocketWire.binary, payload: buffer))
        return .keepReading
    }
}
