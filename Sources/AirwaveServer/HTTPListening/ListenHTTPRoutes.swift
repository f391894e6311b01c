import AirwaveAuth
import AirwaveCore
import AirwaveProtocol
import Foundation
import Hummingbird
import NIOCore

/// Listening over plain HTTP (PROTOCOL.md 9): `GET /listen/{eventId}` is the event's mix as a
/// live Ogg Opus stream that any player can play; `GET /hls/{eventId}/index.m3u8`, `init.mp4`
/// and `{n}.m4s` are the same mix as HLS for caches and CDNs.
struct ListenHTTPRoutes: Sendable {
    let server: AirwaveServer

    func register(on router: Router<AirwaveRequestContext>) {
        router.get("listen/:eventId") { request, context in
            try await self.listen(request, context)
        }
        router.get("hls/:eventId/:file") { _, context in
            try await self.hls(context)
        }
    }

    /// Answers `200 audio/ogg` and leaves the body to the event: the listener joins as a
    /// media-only listener (counted and listed), its pages come from the event's fan-out, and
    /// the response ends with the stream's end page when the event ends.
    private func listen(_ request: Request, _ context: AirwaveRequestContext) async throws -> Response {
        guard !server.isDraining else {
            return refuse(ProtocolError(.serverShuttingDown, "The server is shutting down."), .serviceUnavailable)
        }
        guard let raw = context.parameters.get("eventId"), let eventID = raw.removingPercentEncoding, Identifier.isValid(eventID) else {
            return refuse(ProtocolError(.badRequest, "eventId must be 1–64 characters of A–Z, a–z, 0–9, _ . @ -.",
                                        details: ["parameter": "eventId"]), .badRequest)
        }
        let user: UserIdentity
        switch await tokenUser(request) {
        case .success(let verified?):
            user = UserIdentity(userID: verified.userID, username: verified.username, verified: true)
        case .success(nil):
            if server.configuration.requireJoinToken {
                server.metrics.authFailure(reason: "missing")
                return refuse(ProtocolError(.unauthorized, "Listening on this server needs a token.", details: ["reason": "missing"]),
                              .unauthorized)
            }
            // An anonymous player: an unverified listener of its own, like a WebSocket join without a token.
            user = UserIdentity(userID: "http-" + LiveEventRegistry.newEventID().prefix(8), username: "HTTP listener", verified: false)
        case .failure(let error):
            return refuse(error, .unauthorized)
        }
        // The event's origin, or this node's edge of it (PROTOCOL.md 8): the player hears the
        // origin's mix either way.
        guard let event = try await server.served(eventID) else {
            let gone = try await server.eventGone(eventID)
            return refuse(gone, HTTPRoutes.status(ofGone: gone))
        }
        let ended = ProtocolError(.eventEnded, "This event has ended.")
        guard !event.hasEnded else { return refuse(ended, .gone) }

        let channel = context.channel
        let (id, metrics, queueLimit) = (server.newConnectionID(), server.metrics, min(server.configuration.sendQueueLimit, HTTPListener.queueLimit))
        let listener = try await channel.eventLoop.submit {
            try HTTPListener(id: id, channel: channel, metrics: metrics, queueLimit: queueLimit)
        }.get()
        switch event {
        case .origin(let driver):
            guard driver.submit(.mediaListenerJoined(id, user, video: false), listener: listener) else {
                // The event ended meanwhile. The writer stays in the pipeline and lets the answer pass.
                return refuse(ended, .gone)
            }
        case .edge(let edge):
            // The status says whether the origin takes the player: an edge may learn only now
            // that the event is over.
            let input = EdgeEvent.Input.mediaListenerJoined(id, user, video: false, speakers: false)
            if let refusal = await edge.admitListener(input, listener: listener, patience: Self.edgePatience) {
                edge.submit(.disconnected(id))
                switch refusal {
                case .eventEnded, .eventNotFound: return refuse(ended, .gone)
                default: return refuse(ProtocolError(.serverBusy, "The event's node does not answer yet; try again shortly."), .serviceUnavailable)
                }
            }
        }
        metrics.connectionsChanged(endpoint: "listen", by: 1)
        listener.done.whenComplete { _ in metrics.connectionsChanged(endpoint: "listen", by: -1) }
        // A player that hangs up leaves the event like a closed socket.
        channel.closeFuture.whenComplete { _ in event.disconnected(id) }
        server.logger.debug("http listener", metadata: ["event_id": "\(eventID)", "user": "\(user.userID)", "connection": "\(id.rawValue)"])
        return Response(
            status: .ok,
            headers: [.contentType: "audio/ogg", .cacheControl: "no-cache, no-store"],
            body: ResponseBody { writer in
                // The pages go below Hummingbird, from the event's fan-out; the body ends once the
                // end page is out (a dropped or vanished listener throws, and the connection closes).
                try await listener.done.get()
                try await writer.finish(nil)
            })
    }

    /// How long a player on an edge waits for the edge's link to take it (an attempt is given
    /// up after 3 s, then tried again at once).
    static let edgePatience: Duration = .seconds(5)

    /// Immutable once listed: a cache in front fetches each segment once (PROTOCOL.md 9).
    static let segmentCaching = "public, max-age=3600, immutable"
    /// A live playlist changes with every segment.
    static let playlistCaching = "public, max-age=1"
    /// How long the first playlist request waits for the first segment of a new stream.
    static let firstSegmentWait: Duration = .seconds(5)

    /// The playlist, `init.mp4` or a segment. The first request for an event starts its
    /// segmenter (the mix runs from then until the event ends) and waits for its first segment;
    /// nothing after that touches the event, and nothing is per listener.
    private func hls(_ context: AirwaveRequestContext) async throws -> Response {
        guard let raw = context.parameters.get("eventId"), let eventID = raw.removingPercentEncoding, Identifier.isValid(eventID) else {
            return refuse(ProtocolError(.badRequest, "eventId must be 1–64 characters of A–Z, a–z, 0–9, _ . @ -.",
                                        details: ["parameter": "eventId"]), .badRequest)
        }
        let file = context.parameters.get("file") ?? ""
        let segmentNumber = file.hasSuffix(".m4s") ? Int(file.dropLast(4)) : nil
        guard file == "index.m3u8" || file == "init.mp4" || (segmentNumber ?? -1) >= 0 else {
            return Response(status: .notFound)
        }
        let stream: HLSStream
        if let known = HLSStreams.shared[eventID] {
            stream = known
        } else {
            guard !server.isDraining else {
                return refuse(ProtocolError(.serverShuttingDown, "The server is shutting down."), .serviceUnavailable)
            }
            // The event's origin, or this node's edge of it (PROTOCOL.md 8): the segments are cut
            // from the origin's mix either way.
            guard let event = try await server.served(eventID), !event.hasEnded else {
                let gone = try await server.eventGone(eventID)
                return refuse(gone, HTTPRoutes.status(ofGone: gone))
            }
            let (made, isNew) = HLSStreams.shared.stream(for: eventID)
            if isNew, !event.startSegmenter(made, id: server.newConnectionID()) {
                HLSStreams.shared.remove(made)
                return refuse(ProtocolError(.eventEnded, "This event has ended."), .gone)
            }
            stream = made
        }
        if file == "init.mp4" {
            return Response(status: .ok, headers: [.contentType: "audio/mp4", .cacheControl: Self.segmentCaching],
                            body: .init(byteBuffer: stream.initialization))
        }
        if let segmentNumber {
            guard let bytes = stream.segment(segmentNumber) else {
                return Response(status: .notFound)  // not yet, or slid out of the window
            }
            return Response(status: .ok, headers: [.contentType: "audio/mp4", .cacheControl: Self.segmentCaching],
                            body: .init(byteBuffer: bytes))
        }
        let deadline = ContinuousClock.now + Self.firstSegmentWait
        var playlist = stream.playlist
        while playlist == nil, ContinuousClock.now < deadline, !stream.isEnded {
            // Only until the stream's first segment exists (2 s after it starts).
            try await Task.sleep(for: .milliseconds(100))
            playlist = stream.playlist
        }
        guard let playlist else {
            // Ended before its first segment (an edge learnt from the origin that it was over).
            if stream.isEnded { return refuse(ProtocolError(.eventEnded, "This event has ended."), .gone) }
            var busy = refuse(ProtocolError(.serverBusy, "The stream has no segment yet; try again shortly."), .serviceUnavailable)
            busy.headers[.retryAfter] = "2"
            return busy
        }
        return Response(status: .ok, headers: [.contentType: "application/vnd.apple.mpegurl", .cacheControl: Self.playlistCaching],
                        body: .init(byteBuffer: playlist))
    }

    /// `?token=`: nil without one, an error for a bad one.
    private func tokenUser(_ request: Request) async -> Result<VerifiedUser?, ProtocolError> {
        guard let token = request.uri.queryParameters.get("token"), !token.isEmpty else { return .success(nil) }
        do {
            return .success(try await server.verifier.verify(token))
        } catch {
            server.metrics.authFailure(reason: error.reason)
            return .failure(ProtocolError(.unauthorized, error.message, details: ["reason": .string(error.reason)]))
        }
    }

    private func refuse(_ error: ProtocolError, _ status: HTTPResponse.Status) -> Response {
        server.metrics.error(code: error.code.rawValue)
        return HTTPRoutes.error(error, status: status)
    }
}

extension LiveEventDriver {
    /// Starts the event's HLS segmenter (a mix subscriber that is no participant); false once
    /// the event is over.
    func startSegmenter(_ stream: HLSStream, id: ConnectionID) -> Bool {
        inbox.enqueue(.segmenter(stream, id: id))
    }

    /// Queues an input about an HTTP listener; false once the event is over.
    @discardableResult
    func submit(_ input: LiveEvent.Input, listener: HTTPListener) -> Bool {
        inbox.enqueue(.listenerInput(input, listener: listener))
    }
}
