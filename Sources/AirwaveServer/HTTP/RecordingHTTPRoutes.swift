import AirwaveAuth
import AirwaveMedia
import AsyncHTTPClient
import AirwaveProtocol
import Foundation
import Hummingbird

/// `GET /api/streams/{id}/recordings` and `GET /api/streams/{id}/recordings/{name}`
/// (docs/protocol.md extension): the event's recordings, for its host's Bearer token only.
struct RecordingHTTPRoutes: Sendable {
    let server: AirwaveServer

    func register(on router: Router<AirwaveRequestContext>) {
        router.get("api/streams/:eventId/recordings") { request, context in
            try await self.list(request, context)
        }
        router.get("api/streams/:eventId/recordings/:name") { request, context in
            try await self.download(request, context)
        }
    }

    /// The event's folder when the request carries its host's token; else the error response.
    private func authorize(_ request: Request, _ context: AirwaveRequestContext) async throws -> Result<(eventID: String, folder: URL), RecordingRefusal> {
        guard let raw = context.parameters.get("eventId"), let eventID = raw.removingPercentEncoding, Identifier.isValid(eventID) else {
            return .failure(.init(HTTPRoutes.error(ProtocolError(.badRequest, "eventId must be 1–64 characters of A–Z, a–z, 0–9, _ . @ -.",
                                                                 details: ["parameter": "eventId"]), status: .badRequest)))
        }
        guard let authorization = request.headers[.authorization], authorization.lowercased().hasPrefix("bearer ") else {
            server.metrics.authFailure(reason: "missing")
            return .failure(.init(HTTPRoutes.error(ProtocolError(.unauthorized, "Recordings need the host's Bearer token.",
                                                                 details: ["reason": "missing"]), status: .unauthorized)))
        }
        let user: VerifiedUser
        do {
            user = try await server.verifier.verify(String(authorization.dropFirst("bearer ".count)).trimmingWhitespace())
        } catch {
            server.metrics.authFailure(reason: error.reason)
            return .failure(.init(HTTPRoutes.error(ProtocolError(.unauthorized, error.message, details: ["reason": .string(error.reason)]),
                                                   status: .unauthorized)))
        }
        guard let event = try await server.store.event(id: eventID) else {
            return .failure(.init(HTTPRoutes.error(ProtocolError(.eventNotFound, "No event \(eventID)."), status: .notFound)))
        }
        guard event.hostUserID == user.userID else {
            return .failure(.init(HTTPRoutes.error(ProtocolError(.forbidden, "Only the event's host may read its recordings."),
                                                   status: .forbidden)))
        }
        return .success((eventID, URL(fileURLWithPath: server.recordingsDirectory).appendingPathComponent(eventID)))
    }

    /// The event's recordings with size and duration. The duration comes from each file's last
    /// page (`MixRecorder.durationMilliseconds`), not from reading every packet, and an event
    /// has at most `recordingLimit` of them, so a listing costs little however long they are.
    private func list(_ request: Request, _ context: AirwaveRequestContext) async throws -> Response {
        let (eventID, folder): (String, URL)
        switch try await authorize(request, context) {
        case .success(let found): (eventID, folder) = found
        case .failure(let refusal): return refusal.response
        }
        if let cluster = server.cluster, let holder = try await cluster.holder(of: eventID) {
            return await listElsewhere(eventID, on: holder, authorization: request.headers[.authorization] ?? "")
        }
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? [])
            .filter(Self.isRecordingName)
            .sorted { (Int($0.dropLast(5)) ?? 0) < (Int($1.dropLast(5)) ?? 0) }
        let items: [JSONValue] = names.map { name in
            let path = folder.appendingPathComponent(name).path
            let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
            return [
                "name": .string(name), "size": .int(size),
                "duration_ms": MixRecorder.durationMilliseconds(ofFileAt: path).map { .int($0) } ?? .null,
                "url": .string("/api/streams/\(eventID)/recordings/\(name)"),
            ]
        }
        return HTTPRoutes.json(["event_id": .string(eventID), "recordings": .array(items)])
    }

    /// The list of an event that ran on another node of the cluster, where its files are: asked
    /// of that node with the caller's token (which it checks again), the `url`s made absolute.
    private func listElsewhere(_ eventID: String, on holder: (nodeID: String, url: String?, live: Bool),
                               authorization: String) async -> Response {
        let unreachable = ProtocolError(.serverBusy, "The recordings are on node \(holder.nodeID), which does not answer.",
                                        details: ["reason": "other_node", "origin_node": .string(holder.nodeID)])
        guard holder.live, let base = holder.url else { return HTTPRoutes.error(unreachable, status: .serviceUnavailable) }
        var request = HTTPClientRequest(url: "\(base)/api/streams/\(eventID)/recordings")
        request.headers.add(name: "Authorization", value: authorization)
        do {
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(5))
            // A listing is small (an event has at most `recordingLimit` recordings).
            let body = try await response.body.collect(upTo: 1 << 20)
            guard response.status == .ok, case .object(var fields)? = try? JSONParser.parse(Array(body.readableBytesView)),
                  case .array(let items)? = fields["recordings"]
            else {
                return Response(status: .init(code: Int(response.status.code)), headers: [.contentType: "application/json"],
                                body: .init(byteBuffer: body))
            }
            fields["recordings"] = .array(items.map { item in
                guard case .object(var entry) = item, let path = entry["url"]?.stringValue else { return item }
                entry["url"] = .string(base + path)
                return .object(entry)
            })
            return HTTPRoutes.json(.object(fields))
        } catch {
            return HTTPRoutes.error(unreachable, status: .serviceUnavailable)
        }
    }

    private func download(_ request: Request, _ context: AirwaveRequestContext) async throws -> Response {
        let (eventID, folder): (String, URL)
        switch try await authorize(request, context) {
        case .success(let found): (eventID, folder) = found
        case .failure(let refusal): return refusal.response
        }
        guard let name = context.parameters.get("name"), Self.isRecordingName(name) else {
            return HTTPRoutes.error(ProtocolError(.recordingNotFound, "No such recording."), status: .notFound)
        }
        // On another node: the file is there (the listing's `url` names it).
        if let cluster = server.cluster, let holder = try await cluster.holder(of: eventID), let base = holder.url {
            return Response(status: .temporaryRedirect, headers: [.location: "\(base)/api/streams/\(eventID)/recordings/\(name)"])
        }
        let path = folder.appendingPathComponent(name).path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else {
            return HTTPRoutes.error(ProtocolError(.recordingNotFound, "No such recording."), status: .notFound)
        }
        // Streamed from disk in chunks: a long recording never sits in memory whole.
        let body = try await FileIO().loadFile(path: path, context: context, chunkLength: Self.downloadChunk)
        return Response(status: .ok, headers: [.contentType: "audio/ogg"], body: body)
    }

    /// Bytes read from disk and written to the socket at a time by a download.
    static let downloadChunk = 64 * 1024

    /// Only names the server writes (`<n>.opus`): nothing else in or outside the folder is served.
    static func isRecordingName(_ name: String) -> Bool {
        name.hasSuffix(".opus") && name.count > 5 && name.count <= 25 && name.dropLast(5).allSatisfy(\.isASCIIDigit)
    }
}

/// The response that refuses a recordings request.
struct RecordingRefusal: Error {
    let response: Response
    init(_ response: Response) { self.response = response }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}
