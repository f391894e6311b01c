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

/// Each accepted connection: HTTP/1.1 for the HTTP API (Hummingbird's responder), or a
/// WebSocket upgrade to one of the relay's endpoints. An upgraded connection lives in NIO
/// handlers only — `WebSocketSession` on its event loop — so it holds no task while idle; a
/// task runs just for the admission checks (token, event lookup).
struct AirwaveChildChannel: ServerChildChannel, HTTPChannelHandler {
    enum UpgradeResult: Sendable {
        case webSocket
        case notUpgraded(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>)
        case failedUpgrade(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>)
    }

    struct Value: ServerChildChannelValue {
        let upgradeResult: EventLoopFuture<UpgradeResult>
        let channel: any Channel
    }

    let responder: HTTPChannelHandler.Responder
    let server: AirwaveServer

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            let upgradeAttempted = NIOLoopBoundBox(false, eventLoop: channel.eventLoop)
            let server = self.server
            let upgrader = NIOTypedWebSocketServerUpgrader<UpgradeResult>(
                maxFrameSize: server.configuration.maxBinaryFrameSize,
                shouldUpgrade: { channel, head in
                    upgradeAttempted.value = true
                    return channel.eventLoop.makeSucceededFuture(WebSocketRequest(head) == nil ? nil : HTTPHeaders())
                },
                upgradePipelineHandler: { channel, head in
                    channel.eventLoop.makeCompletedFuture {
                        guard let request = WebSocketRequest(head) else { throw ChannelError.inappropriateOperationForState }
                        try server.openSession(request, on: channel)
                        return .webSocket
                    }
                })
            let serverUpgradeConfiguration = NIOTypedHTTPServerUpgradeConfiguration(
                upgraders: [upgrader],
                notUpgradingCompletionHandler: { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(HTTP1ToHTTPServerCodec(secure: false))
                        try channel.pipeline.syncOperations.addHandler(HTTPConnectionStateHandler(idleTimeout: nil, logger: logger))
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
            case .webSocket:
                return  // the session handlers own the connection from here
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

extension AirwaveServer {
    /// Puts an upgraded connection's handlers in place and starts its admission. Runs on the
    /// channel's event loop, after NIO added the WebSocket frame decoder and encoder.
    func openSession(_ request: WebSocketRequest, on channel: any Channel) throws {
        let connection = try makeConnection(channel)
        let session = WebSocketSession(connection: connection, metrics: metrics, pingInterval: configuration.pingInterval)
        try channel.pipeline.syncOperations.addHandlers([
            NIOWebSocketFrameAggregator(
                minNonFinalFragmentSize: 0, maxAccumulatedFrameCount: 1 << 16, maxAccumulatedFrameSize: configuration.maxBinaryFrameSize),
            session,
        ])
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
        }
    }
}
