import AirwaveProtocol
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import NIOWebSocket

/// A server on the relay's WebSocket transport: which upgrade requests it takes and how it
/// opens one (the relay's endpoints; `EchoServer` for the Autobahn cases).
protocol WebSocketService: Sendable {
    associatedtype Request: Sendable
    /// The request an upgrade head asks for, or nil when no endpoint of this service has its path.
    func webSocketRequest(_ head: HTTPRequestHead) -> Request?
    /// Puts the session's handlers on an upgraded channel. Runs on the channel's event loop.
    func openSession(_ request: Request, on channel: any Channel) throws
    /// A connection was refused over a cap (for metrics).
    func connectionRefused()
}

extension WebSocketService {
    func connectionRefused() {}
}

/// Each accepted connection: HTTP/1.1 for the HTTP API (Hummingbird's responder), or a
/// WebSocket upgrade to one of the service's endpoints. An upgraded connection lives in NIO
/// handlers only — `WebSocketFrameReader` and `WebSocketSession` on its event loop — so it
/// holds no task while idle; a task runs just for the admission checks (token, event lookup).
/// Every connection is counted against the caps first (`ConnectionGate`), must complete its
/// request head (or its upgrade) within `requestHeadTimeout`, and an idle keep-alive
/// connection is closed after `idleTimeout` (PROTOCOL.md 10).
struct AirwaveChildChannel<Service: WebSocketService>: ServerChildChannel, HTTPChannelHandler {
    enum UpgradeResult: Sendable {
        case webSocket
        case notUpgraded(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>)
        case failedUpgrade(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>)
        /// Over a connection cap: answered `server_busy` (or closed) without a task.
        case refused
    }

    struct Value: ServerChildChannelValue {
        let upgradeResult: EventLoopFuture<UpgradeResult>
        let channel: any Channel
    }

    let responder: HTTPChannelHandler.Responder
    let service: Service
    let limits: ConnectionLimits
    let gate: ConnectionGate

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            let gate = self.gate
            let service = self.service
            let ip = channel.remoteAddress?.ipAddress ?? "unknown"
            switch gate.arrived(ip: ip) {
            case .admit:
                channel.closeFuture.whenComplete { _ in gate.closed(ip: ip) }
            case .refuse:
                service.connectionRefused()
                try channel.pipeline.syncOperations.addHandler(RefusedConnectionHandler { gate.answered() })
                return Value(upgradeResult: channel.eventLoop.makeSucceededFuture(.refused), channel: channel)
            case .drop:
                service.connectionRefused()
                channel.close(promise: nil)
                return Value(upgradeResult: channel.eventLoop.makeSucceededFuture(.refused), channel: channel)
            }
            // Until the request head is read (HTTP) or the upgrade done (WebSocket); after that
            // the keep-alive idle timeout, or the WebSocket pings, watch the connection.
            let headDeadline = NIOLoopBoundBox<Scheduled<Void>?>(
                channel.eventLoop.scheduleTask(in: TimeAmount(limits.requestHeadTimeout)) { channel.close(promise: nil) },
                eventLoop: channel.eventLoop)
            let upgradeAttempted = NIOLoopBoundBox(false, eventLoop: channel.eventLoop)
            let idleTimeout = limits.idleTimeout
            let upgrader = RelayWebSocketUpgrader<UpgradeResult>(
                shouldUpgrade: { channel, head in
                    upgradeAttempted.value = true
                    return channel.eventLoop.makeSucceededFuture(service.webSocketRequest(head) == nil ? nil : HTTPHeaders())
                },
                open: { channel, head in
                    channel.eventLoop.makeCompletedFuture {
                        headDeadline.value?.cancel()
                        guard let request = service.webSocketRequest(head) else { throw ChannelError.inappropriateOperationForState }
                        try service.openSession(request, on: channel)
                        return .webSocket
                    }
                })
            let serverUpgradeConfiguration = NIOTypedHTTPServerUpgradeConfiguration(
                upgraders: [upgrader],
                notUpgradingCompletionHandler: { channel in
                    channel.eventLoop.makeCompletedFuture {
                        headDeadline.value?.cancel()
                        try channel.pipeline.syncOperations.addHandler(HTTP1ToHTTPServerCodec(secure: false))
                        try channel.pipeline.syncOperations.addHandler(HTTPConnectionStateHandler(idleTimeout: idleTimeout, logger: logger))
                        let asyncChannel = try NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>(
                            wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
                        return upgradeAttempted.value ? .failedUpgrade(asyncChannel) : .notUpgraded(asyncChannel)
                    }
                })
            var configuration = NIOUpgradableHTTPServerPipelineConfiguration<UpgradeResult>(upgradeConfiguration: serverUpgradeConfiguration)
            configuration.enablePipelining = false  // NIOAsyncChannel pipelines HTTP
            configuration.enableErrorHandling = false  // Hummingbird answers HTTP errors
            configuration.enableResponseHeaderValidation = false  // HTTPTypes validates already
            let result = try channel.pipeline.syncOperations.configureUpgradableHTTPServerPipeline(configuration: configuration)
            return Value(upgradeResult: result, channel: channel)
        }
    }

    func handle(value: Value, logger: Logger) async {
        do {
            switch try await value.upgradeResult.get() {
            case .webSocket, .refused:
                return  // the session handlers (or the refusal) own the connection from here
            case .notUpgraded(let http):
                await handleHTTP(asyncChannel: http, logger: logger)
            case .failedUpgrade(let http):
                try await http.executeThenClose { _, outbound in
                    let head = HTTPResponse(status: .badRequest, headerFields: [.connection: "close", .contentLength: "0"])
                    try await outbound.write(contentsOf: [.head(head), .end(nil)])
                }
            }
        } catch {
            logger.trace("connection ended before it was served", metadata: ["error": "\(error)"])
        }
    }
}

/// NIO's WebSocket handshake (key, version, `Sec-WebSocket-Accept`) with the relay's own
/// pipeline after it: `open` adds `WebSocketFrameReader` and the session instead of NIO's frame
/// decoder, whose single size limit, error handling (close, then reset) and end-of-message
/// UTF-8 check the relay does not want.
struct RelayWebSocketUpgrader<UpgradeResult: Sendable>: NIOTypedHTTPServerProtocolUpgrader {
    private let handshake: NIOTypedWebSocketServerUpgrader<UpgradeResult>
    private let open: @Sendable (any Channel, HTTPRequestHead) -> EventLoopFuture<UpgradeResult>

    init(
        shouldUpgrade: @escaping @Sendable (any Channel, HTTPRequestHead) -> EventLoopFuture<HTTPHeaders?>,
        open: @escaping @Sendable (any Channel, HTTPRequestHead) -> EventLoopFuture<UpgradeResult>
    ) {
        handshake = NIOTypedWebSocketServerUpgrader(shouldUpgrade: shouldUpgrade, upgradePipelineHandler: open)
        self.open = open
    }

    var supportedProtocol: String { handshake.supportedProtocol }
    var requiredUpgradeHeaders: [String] { handshake.requiredUpgradeHeaders }

    func buildUpgradeResponse(channel: any Channel, upgradeRequest: HTTPRequestHead, initialResponseHeaders: HTTPHeaders) -> EventLoopFuture<HTTPHeaders> {
        handshake.buildUpgradeResponse(channel: channel, upgradeRequest: upgradeRequest, initialResponseHeaders: initialResponseHeaders)
    }

    func upgrade(channel: any Channel, upgradeRequest: HTTPRequestHead) -> EventLoopFuture<UpgradeResult> {
        open(channel, upgradeRequest)
    }
}

extension WebSocketSession {
    /// Puts the frame reader and a new session on an upgraded channel (after the connection's
    /// `RawFrameWriter`). Call on the channel's event loop.
    static func install(
        on channel: any Channel, connection: ClientConnection, metrics: ServerMetrics, pingInterval: Duration,
        limits: MessageLimits, messageTimeout: Duration
    ) throws -> WebSocketSession {
        let session = WebSocketSession(connection: connection, metrics: metrics, pingInterval: pingInterval)
        try channel.pipeline.syncOperations.addHandlers([WebSocketFrameReader(limits: limits, messageTimeout: messageTimeout), session])
        return session
    }
}

extension AirwaveServer: WebSocketService {
    func webSocketRequest(_ head: HTTPRequestHead) -> WebSocketRequest? {
        WebSocketRequest(head)
    }

    /// Counted as `airwave_errors_total{code="server_busy"}`.
    func connectionRefused() {
        metrics.error(code: ErrorCode.serverBusy.rawValue)
    }

    /// Puts an upgraded connection's handlers in place and starts its admission. Runs on the
    /// channel's event loop, right after the handshake.
    func openSession(_ request: WebSocketRequest, on channel: any Channel) throws {
        let connection = try makeConnection(channel)
        let limits = configuration.connections
        let messageLimits = MessageLimits(
            text: limits.maxTextMessage + request.textAllowance, binary: request.mayPublish ? limits.maxSpeakerBinaryMessage : limits.maxBinaryMessage)
        let session = try WebSocketSession.install(
            on: channel, connection: connection, metrics: metrics, pingInterval: configuration.pingInterval,
            limits: messageLimits, messageTimeout: limits.fragmentTimeout)
        let label = request.endpoint.label
        metrics.connectionsChanged(endpoint: label, by: 1)
        channel.closeFuture.whenComplete { [metrics] _ in metrics.connectionsChanged(endpoint: label, by: -1) }
        let loopBound = NIOLoopBound(session, eventLoop: channel.eventLoop)
        Task {
            let admission = await admit(request, connection: connection)
            channel.eventLoop.execute {
                switch admission {
                case .admitted(let receiver, let departure):
                    loopBound.value.admitted(receiver(), departure: departure)
                case .refused(let error):
                    loopBound.value.refused()
                    connection.refuse(error)
                }
            }
        }
    }

    private func admit(_ request: WebSocketRequest, connection: ClientConnection) async -> Admission {
        switch request.endpoint {
        case .host(let userID):
            await LiveSocketRoutes(server: self).host(request, userID: userID, connection: connection)
        case .join(let eventID, let username, let userID):
            await LiveSocketRoutes(server: self).join(request, eventID: eventID, username: username, userID: userID, connection: connection)
        case .directory:
            await LiveSocketRoutes(server: self).directory(connection: connection)
        case .session(let roomID):
            await RoomSocketRoutes(server: self).session(request, roomID: roomID, connection: connection)
        case .link(let eventID):
            await ClusterLinkRoutes(server: self).link(request, eventID: eventID, connection: connection)
        }
    }
}
