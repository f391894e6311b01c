import AirwaveProtocol
import AirwaveStore
import Foundation
import Hummingbird

/// The HTTP routes of PROTOCOL.md section 5 that belong to live events and operations.
struct HTTPRoutes: Sendable {
    let server: AirwaveServer

    func register(on router: Router<AirwaveRequestContext>) {
        router.get("healthz") { _, _ in Self.json(["status": "ok"]) }
        router.get("readyz") { _, _ in
            guard !server.isDraining else { return Self.json(["status": "draining"], status: .serviceUnavailable) }
            do {
                try await server.store.ping()
                return Self.json(["status": "ready"])
            } catch {
                return Self.json(["status": "store_unreachable"], status: .serviceUnavailable)
            }
        }
        router.get("metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: .init(byteBuffer: ByteBuffer(string: server.metrics.render())))
        }
        router.get("api/streams") { _, _ in
            let streams = await server.directory.streams
            return Self.json(["streams": .array(streams.map(\.json))])
        }
        router.get("api/streams/:eventId") { request, context in
            try await self.event(request, context)
        }
        router.get("api/streams/:eventId/chat") { request, context in
            try await self.chat(request, context)
        }
        router.get("api/cluster") { _, _ in
            try await self.clusterNodes()
        }
    }

    /// `GET /api/cluster` (PROTOCOL.md 8): the live nodes; none for a server that is not a node.
    /// A node adds `cascade`: this node's links, as origin (its events' edges and their clients)
    /// and as edge (the events it serves for another origin).
    private func clusterNodes() async throws -> Response {
        let nodes = try await server.cluster?.liveNodes() ?? []
        var body: JSONValue = ["nodes": .array(nodes.map { node in
            [
                "node_id": .string(node.nodeID), "url": .string(node.url),
                "last_seen": .string(Timestamp(milliseconds: node.lastSeen).iso8601),
                "events": .int(node.events), "connections": .int(node.connections),
            ]
        })]
        if let cluster = server.cluster, let edges = server.edges, case .object(var members) = body {
            let lags = server.linkLags
            let origins = await server.registry.cascade().map { eventID, links -> JSONValue in
                ["event_id": .string(eventID),
                 "edges": .array(links.keys.sorted().map { edge in
                     // null while the link is down (its clients are held for the grace period).
                     let lag = lags.lag(eventID: eventID, edge: edge).map { JSONValue.int(Int($0.milliseconds)) } ?? .null
                     return ["node_id": .string(edge), "clients": .int(links[edge]!), "lag_ms": lag]
                 })]
            }
            let served = await edges.statuses().map { eventID, status -> JSONValue in
                ["event_id": .string(eventID), "origin_node": status.originNode.map(JSONValue.string) ?? .null,
                 "linked": .bool(status.linked), "clients": .int(status.clients), "reconnects": .int(status.reconnects)]
            }
            members["cascade"] = ["node_id": .string(cluster.identity.nodeID), "origins": .array(origins), "edges": .array(served)]
            body = .object(members)
        }
        return Self.json(body)
    }

    static func json(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
        var buffer = ByteBuffer()
        value.write(into: &buffer)
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: buffer))
    }

    static func error(_ error: ProtocolError, status: HTTPResponse.Status) -> Response {
        json(error.json, status: status)
    }

    /// The HTTP status of ``AirwaveServer/eventGone(_:)``'s answer: 410 ended, 503 on another
    /// node (PROTOCOL.md 8), 404 otherwise.
    static func status(ofGone error: ProtocolError) -> HTTPResponse.Status {
        switch error.code {
        case .eventEnded: .gone
        case .serverBusy: .serviceUnavailable
        default: .notFound
        }
    }

    private func eventID(_ context: AirwaveRequestContext) -> String? {
        guard let raw = context.parameters.get("eventId"), let decoded = raw.removingPercentEncoding, Identifier.isValid(decoded) else {
            return nil
        }
        return decoded
    }

    private static let badEventID = ProtocolError(.badRequest, "eventId must be 1–64 characters of A–Z, a–z, 0–9, _ . @ -.")

    /// Participant sessions per page of `GET /api/streams/{id}` unless `?limit=` says otherwise.
    static let participantPageDefault = 100
    /// The largest `?limit=` of `GET /api/streams/{id}`: an event's sessions grow with every join,
    /// so the answer is paged rather than whole (PROTOCOL.md 10).
    static let participantPageMaximum = 1_000

    private func event(_ request: Request, _ context: AirwaveRequestContext) async throws -> Response {
        guard let eventID = eventID(context) else { return Self.error(Self.badEventID, status: .badRequest) }
        let query = request.uri.queryParameters
        var limit = Self.participantPageDefault
        if let text = query.get("limit"), !text.isEmpty {
            guard let value = Int(text), (1...Self.participantPageMaximum).contains(value) else {
                return Self.error(ProtocolError(.badRequest, "limit must be an integer in 1…\(Self.participantPageMaximum).",
                                                details: ["parameter": "limit"]), status: .badRequest)
            }
            limit = value
        }
        var after: Int64?
        if let text = query.get("after"), !text.isEmpty {
            // 0 is the cursor after the host, when a first page of one held only the host.
            guard let value = Int64(text), value >= 0 else {
                return Self.error(ProtocolError(.badRequest, "after must be the next_after of a previous page (an integer, 0 or more).",
                                                details: ["parameter": "after"]), status: .badRequest)
            }
            after = value
        }
        var stored = try await server.store.event(id: eventID, withParticipants: false)
        var live = await server.directory.summary(of: eventID)
        if let cluster = server.cluster, live == nil || stored == nil, let origin = try await cluster.liveOriginRecord(of: eventID),
           origin.nodeID != cluster.identity.nodeID {
            // Another node's new event, before its start is stored or this node's directory has
            // it: its origin row, written before its host heard `stream_link`, stands for both.
            // (This node's own events are in its directory while they run.)
            live = origin.summary
            stored = stored ?? StoredEvent(eventID: eventID, hostUserID: origin.hostUserID, hostUsername: origin.hostUsername,
                                           mode: origin.mode, startedAt: origin.startedAt)
        }
        guard let event = stored else {
            return Self.error(ProtocolError(.eventNotFound, "No event \(eventID)."), status: .notFound)
        }
        // The host comes first, as in `participant_list`: it is the first entry of the first page
        // (no `after`), takes one of its `limit` places and counts in `participants_total`. It has
        // no session row of its own; its session is the event's.
        let firstPage = after == nil
        let page: ParticipantPage
        if firstPage && limit == 1 {
            let probe = try await server.store.participants(eventID: eventID, after: nil, limit: 1)
            page = ParticipantPage(participants: [], next: probe.total > 0 ? 0 : nil, total: probe.total)
        } else {
            page = try await server.store.participants(eventID: eventID, after: after, limit: firstPage ? limit - 1 : limit)
        }
        var originNode: JSONValue?
        if let cluster = server.cluster, live != nil {
            originNode = await server.directory.isLocal(eventID)
                ? .string(cluster.identity.nodeID) : try await cluster.origin(of: eventID).map { .string($0.nodeID) } ?? .null
        }
        func entry(userID: String, username: String, role: String, verified: Bool, joinedAt: EpochMillis, leftAt: EpochMillis?) -> JSONValue {
            [
                "user_id": .string(userID), "username": .string(username), "role": .string(role),
                "verified": .bool(verified), "joined_at": .string(Timestamp(milliseconds: joinedAt).iso8601),
                "left_at": .string(leftAt.map { Timestamp(milliseconds: $0).iso8601 }),
            ]
        }
        var participants: [JSONValue] = []
        if firstPage {
            participants.append(entry(userID: event.hostUserID, username: event.hostUsername, role: StoredRole.host.rawValue,
                                      verified: true, joinedAt: event.startedAt, leftAt: event.endedAt))
        }
        participants += page.participants.map { p in
            entry(userID: p.userID, username: p.username, role: p.role.rawValue, verified: p.verified, joinedAt: p.joinedAt, leftAt: p.leftAt)
        }
        var fields: [String: JSONValue] = [
            "event_id": .string(event.eventID), "room_id": .string(event.eventID), "host_user_id": .string(event.hostUserID),
            "host_username": .string(event.hostUsername), "mode": .string(live?.mode ?? event.mode),
            "status": .string(live != nil ? "active" : "ended"), "type": "AUDIO",
            "start_timestamp": .string(Timestamp(milliseconds: event.startedAt).iso8601),
            "end_timestamp": .string(event.endedAt.map { Timestamp(milliseconds: $0).iso8601 }),
            "end_reason": .string(event.endReason),
            "total_participants": .int(live?.participantCount ?? 0),
            "participants": .array(participants),
            "participants_total": .int(page.total + 1),
            "next_after": page.next.map { .int($0) } ?? .null,
        ]
        // Only nodes of a cluster have an origin to name (PROTOCOL.md 8).
        if let originNode { fields["origin_node"] = originNode }
        return Self.json(.object(fields))
    }

    private func chat(_ request: Request, _ context: AirwaveRequestContext) async throws -> Response {
        guard let eventID = eventID(context) else { return Self.error(Self.badEventID, status: .badRequest) }
        let query = request.uri.queryParameters
        var limit = 50
        if let text = query.get("limit"), !text.isEmpty {
            guard let value = Int(text), (1...500).contains(value) else {
                return Self.error(ProtocolError(.badRequest, "limit must be an integer in 1…500.", details: ["parameter": "limit"]), status: .badRequest)
            }
            limit = value
        }
        var before: Int64?
        if let text = query.get("before"), !text.isEmpty {
            guard let value = Int64(text), value > 0 else {
                return Self.error(ProtocolError(.badRequest, "before must be a message id (a positive integer).", details: ["parameter": "before"]), status: .badRequest)
            }
            before = value
        }
        guard try await server.store.event(id: eventID, withParticipants: false) != nil else {
            return Self.error(ProtocolError(.eventNotFound, "No event \(eventID)."), status: .notFound)
        }
        let messages = try await server.store.chat(eventID: eventID, before: before, limit: limit)
        let items: [JSONValue] = messages.map { m in
            [
                "id": m.id.map { .int($0) } ?? .null, "user_id": .string(m.userID), "username": .string(m.username),
                "message": .string(m.message), "sent_at": .string(Timestamp(milliseconds: m.sentAt).iso8601),
                "verified": .bool(m.verified),
            ]
        }
        return Self.json(["event_id": .string(eventID), "messages": .array(items)])
    }
}
