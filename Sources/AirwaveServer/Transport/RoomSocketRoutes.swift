import AirwaveAuth
import AirwaveCore
import AirwaveProtocol
import Foundation
import Hummingbird
import HummingbirdWebSocket

/// The listening-room socket, `/ws/session/{roomId}/` (PROTOCOL.md 3).
struct RoomSocketRoutes: Sendable {
    let server: AirwaveServer

    func register(on router: Router<AirwaveRequestContext>) {
        router.ws("ws/session/:roomId") { inbound, outbound, context in
            await self.session(inbound: inbound, connection: server.makeConnection(context, outbound), context: context)
        }
    }

    private func session(inbound: WebSocketInboundStream, connection: ClientConnection, context: WebSocketRouterContext<AirwaveRequestContext>) async {
        server.metrics.connectionsChanged(endpoint: "session", by: 1)
        defer { server.metrics.connectionsChanged(endpoint: "session", by: -1) }
        let sockets = SocketChecks(server: server)
        let driver: ListeningRoomDriver
        do {
            guard !server.isDraining else { throw ProtocolError(.serverShuttingDown, "The server is shutting down.") }
            let roomID = try sockets.pathID("roomId", context)
            let query = context.request.uri.queryParameters
            var name: String?
            if let raw = query.get("name"), !raw.isEmpty {
                guard let valid = DisplayName.validated(raw) else {
                    throw ProtocolError(.badRequest, "name must be 1–64 characters.", details: ["parameter": "name"])
                }
                name = valid
            }
            let user = try await sockets.verifiedUser(context, pathUserID: nil)
            let member: RoomMember
            if let user {
                member = RoomMember(userID: user.userID, name: name ?? user.username, verified: true, connection: connection.id)
            } else {
                // A guest is one connection: its id and its votes last as long as the socket. The id
                // is random so it never matches a guest of an earlier run in the stored chat.
                let guestID = "guest-" + LiveEventRegistry.newEventID().prefix(10)
                member = RoomMember(userID: guestID, name: name ?? guestID, verified: false, connection: connection.id)
            }
            driver = try await joinedDriver(roomID, member: member, connection: connection)
        } catch {
            return await sockets.drainAfterRefusal(inbound, connection, error)
        }
        let loop = InboundLoop(connection: connection, configuration: server.configuration, metrics: server.metrics)
        await loop.run(
            inbound,
            decode: { text throws(ProtocolError) in try RoomCommand.decode(text.utf8) },
            isChat: \.isChat,
            typeName: \.type,
            deliver: { command in
                driver.submit(.command(connection.id, command)) ? .keepReading : .stop
            })
        driver.submit(.leave(connection.id))
    }

    /// Hands the member to the room's driver; a driver that just went idle is replaced.
    private func joinedDriver(_ roomID: String, member: RoomMember, connection: ClientConnection) async throws -> ListeningRoomDriver {
        for _ in 0..<3 {
            let driver = try await server.rooms.driver(for: roomID)
            if driver.submit(.join(connection.id, member), connection: connection) { return driver }
        }
        throw ProtocolError(.badRequest, "The room could not be opened; try again.")
    }
}
