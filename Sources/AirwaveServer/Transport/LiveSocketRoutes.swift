import AirwaveAuth
import AirwaveCore
import AirwaveProtocol
import Foundation

/// Admission to the WebSocket endpoints of live events (PROTOCOL.md 2.1, 2.2, 2.5): checks the
/// request, hands the connection to its event (or the directory), and says where its messages go.
struct LiveSocketRoutes: Sendable {
    let server: AirwaveServer

    private var checks: SocketChecks { SocketChecks(server: server) }

    /// `/ws/stream/start/live/{userId}/`
    func host(_ request: WebSocketRequest, userID rawUserID: Substring, connection: ClientConnection) async -> Admission {
        let identity: UserIdentity
        var interrupted: (eventID: String, LiveEvent.Resumption)?
        do {
            try checks.ensureServing()
            let userID = try checks.pathID(rawUserID, name: "userId")
            guard let user = try await checks.verifiedUser(request, pathUserID: userID) else {
                server.metrics.authFailure(reason: "missing")
                throw ProtocolError(.unauthorized, "Going live needs a token.", details: ["reason": "missing"])
            }
            identity = UserIdentity(userID: user.userID, username: user.username, verified: true)
            if let elsewhere = try await server.cluster?.hostElsewhere(user.userID) { throw elsewhere }
            if await !server.registry.hasEvent(hostedBy: user.userID) {
                interrupted = try await server.interruptedEvent(hostUserID: user.userID)
            }
        } catch {
            return checks.refusal(error)
        }
        let authority = request.authority ?? "\(server.configuration.host):\(server.configuration.port)"
        let driver = await server.registry.connectHost(identity, connection: connection, mixed: Self.wantsMixedAudio(request),
                                                       interrupted: interrupted) { eventID in
            "ws://\(authority)/ws/stream/live/join/event/\(eventID)/"
        }
        return relay(connection, to: driver)
    }

    /// `/ws/stream/live/join/event/{eventId}/{userId}/` and `…/{eventId}/{username}/{userId}/`
    func join(
        _ request: WebSocketRequest, eventID rawEventID: Substring, username rawUsername: Substring?, userID rawUserID: Substring,
        connection: ClientConnection
    ) async -> Admission {
        let driver: LiveEventDriver
        do {
            try checks.ensureServing()
            let eventID = try checks.pathID(rawEventID, name: "eventId")
            let userID = try checks.pathID(rawUserID, name: "userId")
            var pathName: String?
            if let rawUsername {
                guard let decoded = rawUsername.removingPercentEncoding, let name = DisplayName.validated(decoded) else {
                    throw ProtocolError(.badRequest, "username must be 1–64 characters.", details: ["parameter": "username"])
                }
                pathName = name
            }
            let user = try await checks.verifiedUser(request, pathUserID: userID)
            if user == nil, server.configuration.requireJoinToken {
                server.metrics.authFailure(reason: "missing")
                throw ProtocolError(.unauthorized, "Joining this server needs a token.", details: ["reason": "missing"])
            }
            // A token's own name wins; a token without one falls back to the name in the path.
            let tokenName = user.flatMap { $0.username == $0.userID ? nil : $0.username }
            let identity = UserIdentity(userID: userID, username: tokenName ?? pathName ?? userID, verified: user != nil)
            guard let found = await server.registry.driver(for: eventID) else {
                // Live on another node: this node serves it as an edge (PROTOCOL.md 8).
                if let edge = try await server.edge(for: eventID) {
                    guard edge.submit(.join(connection.id, identity), connection: connection) else {
                        throw ProtocolError(.serverBusy, "Try again.", details: ["reason": "edge_restarting"])
                    }
                    // In the same order as on the origin: the subscription right after the join.
                    if Self.wantsMixedAudio(request) { edge.submit(.mixSubscription(connection.id)) }
                    return relay(connection, toEdge: edge)
                }
                throw try await server.eventGone(eventID)
            }
            guard found.submit(.join(connection.id, identity), connection: connection, mixed: Self.wantsMixedAudio(request)) else {
                throw ProtocolError(.eventEnded, "This event has ended.")
            }
            driver = found
        } catch {
            return checks.refusal(error)
        }
        return relay(connection, to: driver)
    }

    /// Messages of a client of an edge go to the edge's driver, checked by the same rules.
    private func relay(_ connection: ClientConnection, toEdge edge: EdgeEventDriver) -> Admission {
        relay(connection, command: { edge.submit(.command(connection.id, $0)) }, media: { edge.submit(.media(connection.id, $0)) },
              departure: { edge.submit(.disconnected(connection.id)) })
    }

    /// `?audio=mixed`: the connection gets the event's mix (source id 0) instead of one stream per speaker.
    private static func wantsMixedAudio(_ request: WebSocketRequest) -> Bool {
        request.query["audio"] == "mixed"
    }

    /// Messages of an admitted host or listener go to its event's driver.
    private func relay(_ connection: ClientConnection, to driver: LiveEventDriver) -> Admission {
        relay(connection, command: { driver.submit(.command(connection.id, $0)) }, media: { driver.submit(.media(connection.id, $0)) },
              departure: { driver.submit(.disconnected(connection.id)) })
    }

    /// The connection's messages, checked by `InboundRules`, go to `command` and `media` (false:
    /// the event is gone); `departure` runs once when it closes.
    private func relay(_ connection: ClientConnection, command: @escaping @Sendable (LiveCommand) -> Bool,
                       media: @escaping @Sendable (MediaFrame) -> Bool, departure: @escaping @Sendable () -> Void) -> Admission {
        let server = self.server
        return .admitted(
            receiver: {
                InboundRules(
                    connection: connection, configuration: server.configuration, metrics: server.metrics,
                    decode: { text throws(ProtocolError) in try LiveCommand.decode(text.utf8) },
                    isChat: \.isChat,
                    typeName: \.typeName,
                    deliver: { command($0) ? .keepReading : .stop },
                    deliverMedia: { media($0) ? .keepReading : .stop })
            },
            departure: departure)
    }

    /// `/ws/active-streams/`: the directory; it accepts no messages.
    func directory(connection: ClientConnection) async -> Admission {
        do {
            try checks.ensureServing()
        } catch {
            return checks.refusal(error)
        }
        let server = self.server
        await server.directory.subscribe(connection)
        return .admitted(
            receiver: {
                InboundRules(
                    connection: connection, configuration: server.configuration, metrics: server.metrics,
                    decode: { text throws(ProtocolError) in try TypedMessage.decode(text.utf8).type },
                    isChat: { _ in false }, typeName: { _ in "directory_message" },
                    deliver: { type in
                        let error = ProtocolError(.unknownType, "The directory accepts no messages.", details: ["type": .string(String(type.prefix(64)))])
                        server.metrics.error(code: error.code.rawValue)
                        connection.send(error.json)
                        return .keepReading
                    })
            },
            departure: { Task { await server.directory.unsubscribe(connection.id) } })
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
