import AirwaveAuth
import AirwaveCore
import AirwaveProtocol
import Foundation

/// Admission to the listening-room socket, `/ws/session/{roomId}/` (PROTOCOL.md 3).
struct RoomSocketRoutes: Sendable {
    let server: AirwaveServer

    func session(_ request: WebSocketRequest, roomID rawRoomID: Substring, connection: ClientConnection) async -> Admission {
        let checks = SocketChecks(server: server)
        let driver: ListeningRoomDriver
        do {
            try checks.ensureServing()
            let roomID = try checks.pathID(rawRoomID, name: "roomId")
            var name: String?
            if let raw = request.query["name"], !raw.isEmpty {
                guard let valid = DisplayName.validated(raw) else {
                    throw ProtocolError(.badRequest, "name must be 1–64 characters.", details: ["parameter": "name"])
                }
                name = valid
            }
            let user = try await checks.verifiedUser(request, pathUserID: nil)
            let member: RoomMember
            if let user {
                member = RoomMember(userID: user.userID, name: name ?? user.username, verified: true, connection: connection.id,
                                    instance: server.rooms.instance)
            } else {
                // A guest is one connection: its id and its votes last as long as the socket. The id
                // is random so it never matches a guest of an earlier run in the stored chat.
                let guestID = "guest-" + LiveEventRegistry.newEventID().prefix(10)
                member = RoomMember(userID: guestID, name: name ?? guestID, verified: false, connection: connection.id,
                                    instance: server.rooms.instance)
            }
            driver = try await joinedDriver(roomID, member: member, connection: connection)
        } catch {
            return checks.refusal(error)
        }
        let server = self.server
        return .admitted(
            receiver: {
                // Created on the connection's event loop, like the rules; used only there.
                let busy = RoomBusyNotice(connection: connection, metrics: server.metrics)
                return InboundRules(
                    connection: connection, configuration: server.configuration, metrics: server.metrics,
                    decode: { text throws(ProtocolError) in try RoomCommand.decode(text.utf8) },
                    isChat: \.isChat,
                    typeName: \.type,
                    deliver: { command in
                        switch driver.submit(.command(connection.id, command)) {
                        case .accepted: return .keepReading
                        case .refused: return busy.refused(command.type)
                        case .stopped: return .stop
                        }
                    })
            },
            departure: { driver.submit(.leave(connection.id)) })
    }

    /// Hands the member to the room's driver; a driver that just went idle is replaced.
    private func joinedDriver(_ roomID: String, member: RoomMember, connection: ClientConnection) async throws -> ListeningRoomDriver {
        for _ in 0..<3 {
            let driver = try await server.rooms.driver(for: roomID, limits: server.configuration.rooms)
            if case .accepted = driver.submit(.join(connection.id, member), connection: connection) { return driver }
        }
        throw ProtocolError(.badRequest, "The room could not be opened; try again.")
    }
}

/// Tells a member whose message did not fit in the room's inbox (it had its share waiting, or
/// the room was full) that the message was dropped: `rate_limited`, at most once a second. The
/// `.overLimit` verdict also stops reading the socket for a moment, so the sender is slowed by
/// TCP rather than by work on the server.
final class RoomBusyNotice {
    private let connection: ClientConnection
    private let metrics: ServerMetrics
    private var gate = IntervalGate(interval: .seconds(1))

    init(connection: ClientConnection, metrics: ServerMetrics) {
        self.connection = connection
        self.metrics = metrics
    }

    func refused(_ type: String) -> InboundVerdict {
        if gate.allow(now: Timestamp.now()) {
            metrics.error(code: ErrorCode.rateLimited.rawValue)
            connection.send(ProtocolError(.rateLimited, "The room is busy with your earlier messages; this one was dropped.",
                                          details: ["type": .string(type), "reason": "room_busy"]).json)
        }
        return .overLimit
    }
}
