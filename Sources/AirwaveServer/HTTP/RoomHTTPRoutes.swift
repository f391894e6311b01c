import AirwaveAuth
import AirwaveCore
import AirwaveProtocol
import AirwaveStore
import Foundation
import Hummingbird

/// `POST /api/rooms` and `GET /api/rooms/{roomId}` (PROTOCOL.md 5).
struct RoomHTTPRoutes: Sendable {
    let server: AirwaveServer

    func register(on router: Router<AirwaveRequestContext>) {
        router.post("api/rooms") { request, context in
            try await self.create(request, context)
        }
        router.get("api/rooms/:roomId") { _, context in
            try await self.state(context)
        }
    }

    /// Creates a room owned by the Bearer token's user; the body may name it: `{"room_id": "…"}`.
    /// A user owns at most `RoomLimits.roomsPerUser` rooms: beyond, 429 `quota_exceeded`.
    private func create(_ request: Request, _ context: AirwaveRequestContext) async throws -> Response {
        guard let authorization = request.headers[.authorization], authorization.lowercased().hasPrefix("bearer ") else {
            server.metrics.authFailure(reason: "missing")
            return HTTPRoutes.error(ProtocolError(.unauthorized, "Creating a room needs a Bearer token.", details: ["reason": "missing"]),
                                    status: .unauthorized)
        }
        let user: VerifiedUser
        do {
            user = try await server.verifier.verify(String(authorization.dropFirst("bearer ".count)).trimmingWhitespace())
        } catch {
            server.metrics.authFailure(reason: error.reason)
            return HTTPRoutes.error(ProtocolError(.unauthorized, error.message, details: ["reason": .string(error.reason)]), status: .unauthorized)
        }
        let body = try await request.body.collect(upTo: 64 * 1024)
        var roomID = LiveEventRegistry.newEventID()
        if body.readableBytes > 0 {
            guard let json = try? JSONParser.parse(body.readableBytesView), case .object = json else {
                return HTTPRoutes.error(ProtocolError(.badRequest, "The body must be a JSON object."), status: .badRequest)
            }
            if let requested = json["room_id"], requested != .null {
                guard let id = requested.stringValue, Identifier.isValid(id) else {
                    return HTTPRoutes.error(ProtocolError(.badRequest, "room_id must be 1–64 characters of A–Z, a–z, 0–9, _ . @ -.",
                                                          details: ["field": "room_id"]), status: .badRequest)
                }
                roomID = id
            }
        }
        let limit = server.configuration.rooms.roomsPerUser
        switch try await server.rooms.createHostRoom(roomID, hostUserID: user.userID, at: Timestamp.now(), limit: limit) {
        case .created: break
        case .exists:
            return HTTPRoutes.error(ProtocolError(.roomExists, "Room \(roomID) exists already.", details: ["room_id": .string(roomID)]),
                                    status: .conflict)
        case .quotaExceeded(let owned):
            server.metrics.error(code: ErrorCode.quotaExceeded.rawValue)
            return HTTPRoutes.error(ProtocolError(.quotaExceeded, "You own \(owned) rooms; the limit is \(limit).",
                                                  details: ["reason": "rooms_per_user", "limit": .int(limit)]),
                                    status: .tooManyRequests)
        }
        let authority = request.head.authority ?? "\(server.configuration.host):\(server.configuration.port)"
        var fields = ListeningRoom(roomID: roomID, hostUserID: user.userID).stateFields
        fields["ws_url"] = .string("ws://\(authority)/ws/session/\(roomID)/")
        return HTTPRoutes.json(.object(fields), status: .created)
    }

    /// `room_state` without `type`, from the store (every change is stored before members see it).
    private func state(_ context: AirwaveRequestContext) async throws -> Response {
        guard let raw = context.parameters.get("roomId"), let roomID = raw.removingPercentEncoding, Identifier.isValid(roomID) else {
            return HTTPRoutes.error(ProtocolError(.badRequest, "roomId must be 1–64 characters of A–Z, a–z, 0–9, _ . @ -."), status: .badRequest)
        }
        guard let stored = try await server.store.room(id: roomID) else {
            // Open in memory with nothing stored yet: nothing has changed since it was opened.
            guard await server.rooms.isLoaded(roomID) else {
                return HTTPRoutes.error(ProtocolError(.roomNotFound, "No room \(roomID)."), status: .notFound)
            }
            return HTTPRoutes.json(.object(ListeningRoom(roomID: roomID, hostUserID: nil).stateFields))
        }
        let chat = try await server.store.roomChat(roomID: roomID, limit: 100)
        let room = ListeningRoom(roomID: roomID, hostUserID: stored.hostUserID, restored: RoomSnapshot(stored.state, chat: chat),
                                 queueLimit: server.configuration.rooms.queueLimit)
        return HTTPRoutes.json(.object(room.stateFields))
    }
}
