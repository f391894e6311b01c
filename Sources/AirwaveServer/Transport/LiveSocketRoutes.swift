import AirwaveAuth
import AirwaveCore
import AirwaveProtocol
import Foundation
import Hummingbird
import HummingbirdWebSocket
import Logging

/// The WebSocket endpoints of live events (PROTOCOL.md 2.1, 2.2, 2.5).
struct LiveSocketRoutes: Sendable {
    let server: AirwaveServer

    func register(on router: Router<AirwaveRequestContext>) {
        router.ws("ws/stream/start/live/:userId") { inbound, outbound, context in
            await self.host(inbound: inbound, connection: server.makeConnection(context, outbound), context: context)
        }
        // Both join forms share the segment after the event id (Hummingbird's router needs one name per position).
        router.ws("ws/stream/live/join/event/:eventId/:first") { inbound, outbound, context in
            await self.join(inbound: inbound, connection: server.makeConnection(context, outbound), context: context, hasUsername: false)
        }
        router.ws("ws/stream/live/join/event/:eventId/:first/:second") { inbound, outbound, context in
            await self.join(inbound: inbound, connection: server.makeConnection(context, outbound), context: context, hasUsername: true)
        }
        router.ws("ws/active-streams") { inbound, outbound, context in
            await self.directory(inbound: inbound, connection: server.makeConnection(context, outbound))
        }
    }

    private typealias Context = WebSocketRouterContext<AirwaveRequestContext>

    private var checks: SocketChecks { SocketChecks(server: server) }

    private func id(_ parameter: String, _ context: Context, name: String? = nil) throws(ProtocolError) -> String {
        try checks.pathID(parameter, context, name: name)
    }

    private func verifiedUser(_ context: Context, pathUserID: String) async throws(ProtocolError) -> VerifiedUser? {
        try await checks.verifiedUser(context, pathUserID: pathUserID)
    }

    private func host(inbound: WebSocketInboundStream, connection: ClientConnection, context: Context) async {
        server.metrics.connectionsChanged(endpoint: "start", by: 1)
        defer { server.metrics.connectionsChanged(endpoint: "start", by: -1) }
        let identity: UserIdentity
        do {
            guard !server.isDraining else { throw ProtocolError(.serverShuttingDown, "The server is shutting down.") }
            let userID = try id("userId", context)
            guard let user = try await verifiedUser(context, pathUserID: userID) else {
                server.metrics.authFailure(reason: "missing")
                throw ProtocolError(.unauthorized, "Going live needs a token.", details: ["reason": "missing"])
            }
            identity = UserIdentity(userID: user.userID, username: user.username, verified: true)
        } catch {
            return await checks.drainAfterRefusal(inbound, connection, error)
        }
        let authority = context.request.head.authority ?? "\(server.configuration.host):\(server.configuration.port)"
        let driver = await server.registry.connectHost(identity, connection: connection, mixed: Self.wantsMixedAudio(context)) { eventID in
            "ws://\(authority)/ws/stream/live/join/event/\(eventID)/"
        }
        await relay(inbound, connection, to: driver)
    }

    private func join(inbound: WebSocketInboundStream, connection: ClientConnection, context: Context, hasUsername: Bool) async {
        server.metrics.connectionsChanged(endpoint: "join", by: 1)
        defer { server.metrics.connectionsChanged(endpoint: "join", by: -1) }
        let driver: LiveEventDriver
        let identity: UserIdentity
        do {
            guard !server.isDraining else { throw ProtocolError(.serverShuttingDown, "The server is shutting down.") }
            let eventID = try id("eventId", context)
            let userID = try id(hasUsername ? "second" : "first", context, name: "userId")
            var pathName: String?
            if hasUsername {
                guard let raw = context.requestContext.parameters.get("first"), let decoded = raw.removingPercentEncoding,
                    let name = DisplayName.validated(decoded)
                else {
                    throw ProtocolError(.badRequest, "username must be 1–64 characters.", details: ["parameter": "username"])
                }
                pathName = name
            }
            let user = try await verifiedUser(context, pathUserID: userID)
            if user == nil, server.configuration.requireJoinToken {
                server.metrics.authFailure(reason: "missing")
                throw ProtocolError(.unauthorized, "Joining this server needs a token.", details: ["reason": "missing"])
            }
            // A token's own name wins; a token without one falls back to the name in the path.
            let tokenName = user.flatMap { $0.username == $0.userID ? nil : $0.username }
            identity = UserIdentity(userID: userID, username: tokenName ?? pathName ?? userID, verified: user != nil)
            guard let found = await server.registry.driver(for: eventID) else {
                throw try await server.eventGone(eventID)
            }
            driver = found
        } catch {
            return await checks.drainAfterRefusal(inbound, connection, error)
        }
        guard driver.submit(.join(connection.id, identity), connection: connection, mixed: Self.wantsMixedAudio(context)) else {
            return await checks.drainAfterRefusal(inbound, connection, ProtocolError(.eventEnded, "This event has ended."))
        }
        await relay(inbound, connection, to: driver)
    }

    /// `?audio=mixed`: the connection gets the event's mix (source id 0) instead of one stream per speaker.
    private static func wantsMixedAudio(_ context: Context) -> Bool {
        context.request.uri.queryParameters.get("audio") == "mixed"
    }

    private func relay(_ inbound: WebSocketInboundStream, _ connection: ClientConnection, to driver: LiveEventDriver?) async {
        let loop = InboundLoop(connection: connection, configuration: server.configuration, metrics: server.metrics)
        await loop.run(
            inbound,
            decode: { text throws(ProtocolError) in try LiveCommand.decode(text.utf8) },
            isChat: \.isChat,
            typeName: \.typeName,
            deliver: { command in
                guard let driver, driver.submit(.command(connection.id, command)) else { return .stop }
                return .keepReading
            },
            deliverMedia: { frame in
                guard let driver, driver.submit(.media(connection.id, frame)) else { return .stop }
                return .keepReading
            })
        driver?.submit(.disconnected(connection.id))
    }

    private func directory(inbound: WebSocketInboundStream, connection: ClientConnection) async {
        server.metrics.connectionsChanged(endpoint: "active_streams", by: 1)
        defer { server.metrics.connectionsChanged(endpoint: "active_streams", by: -1) }
        guard !server.isDraining else {
            return await checks.drainAfterRefusal(inbound, connection, ProtocolError(.serverShuttingDown, "The server is shutting down."))
        }
        await server.directory.subscribe(connection)
        let loop = InboundLoop(connection: connection, configuration: server.configuration, metrics: server.metrics)
        await loop.run(
            inbound,
            decode: { text throws(ProtocolError) in try TypedMessage.decode(text.utf8).type },
            isChat: { _ in false }, typeName: { _ in "directory_message" },
            deliver: { type in
                let error = ProtocolError(.unknownType, "The directory accepts no messages.", details: ["type": .string(String(type.prefix(64)))])
                server.metrics.error(code: error.code.rawValue)
                connection.send(error.json)
                return .keepReading
            })
        await server.directory.unsubscribe(connection.id)
    }
}

extension LiveCommand {
    /// The wire `type`, as a metric label.
    var typeName: String {
        switch self {
        case .switchToAudio: "switching_to_audio"
        case .switchToScreen: "switching_to_screen_sharing"
        case .endStream: "stream_ended"
        case .inviteCohost: "invite_cohost"
        case .removeCohost: "remove_cohost"
        case .acceptCohost: "accept_cohost"
        case .rejectCohost: "cohost_reject"
        case .leaveCohost: "cohost_leave"
        case .chat: "broadcast_message"
        case .leave: "leave_room"
        case .mute: "mute"
        case .unmute: "unmute"
        case .keyframeRequest: "keyframe_request"
        case .recordingStart: "recording_start"
        case .recordingStop: "recording_stop"
        }
    }
}
