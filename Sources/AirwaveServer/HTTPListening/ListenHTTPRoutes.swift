import AirwaveAuth
import AirwaveCore
import AirwaveProtocol
import Foundation
import Hummingbird
import NIOCore

/// Listening over plain HTTP (PROTOCOL.md 9): `GET /listen/{eventId}` is the event's mix as a
/// live Ogg Opus stream that any player can play.
struct ListenHTTPRoutes: Sendable {
    let server: AirwaveServer

    func register(on router: Router<AirwaveRequestContext>) {
        router.get("listen/:eventId") { request, context in
            try await self.listen(request, context)
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
        guard let driver = await server.registry.driver(for: eventID) else {
            let gone = try await server.eventGone(eventID)
            return refuse(gone, gone.code == .eventEnded ? .gone : .notFound)
        }
        let ended = ProtocolError(.eventEnded, "This event has ended.")
        guard !driver.hasEnded else { return refuse(ended, .gone) }

        let channel = context.channel
        let (id, metrics, queueLimit) = (server.newConnectionID(), server.metrics, min(server.configuration.sendQueueLimit, HTTPListener.queueLimit))
        let listener = try await channel.eventLoop.submit {
            try HTTPListener(id: id, channel: channel, metrics: metrics, queueLimit: queueLimit)
        }.get()
        guard driver.submit(.mediaListenerJoined(id, user, video: false), listener: listener) else {
            listener.abort()
            return refuse(ended, .gone)
        }
        metrics.connectionsChanged(endpoint: "listen", by: 1)
        listener.done.whenComplete { _ in metrics.connectionsChanged(endpoint: "listen", by: -1) }
        // A player that hangs up leaves the event like a closed socket.
        channel.closeFuture.whenComplete { _ in driver.submit(.disconnected(id)) }
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
    /// Queues an input about an HTTP listener; false once the event is over.
    @discardableResult
    func submit(_ input: LiveEvent.Input, listener: HTTPListener) -> Bool {
        isOver.withLockedValue { over in
            guard !over else { return false }
            if case .enqueued = continuation.yield(.listenerInput(input, listener: listener)) { return true }
            return false
        }
    }
}
