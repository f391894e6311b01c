import AirwaveAuth
import AirwaveCore
import AirwaveProtocol
import AirwaveWebRTC
import Foundation
import Hummingbird

/// WHEP (`POST /whep/{eventId}`) and WHIP (`POST /whip/{eventId}`, RFC 9725): an SDP offer in,
/// `201 Created` with the answer and the session's `Location` out; `DELETE` of the `Location`
/// hangs up. The media then flows over the WebRTC UDP port (``WebRTCGateway``).
struct WebRTCHTTPRoutes: Sendable {
    let server: AirwaveServer

    /// Offers are small (a browser's is about 5 KiB); anything larger is not an offer.
    static let maximumOfferSize = 64 * 1024

    func register(on router: Router<AirwaveRequestContext>) {
        for kind in [WebRTCPeer.Kind.whep, .whip] {
            router.post("\(kind.rawValue)/:eventId") { request, context in
                try await self.offer(request, context, kind: kind)
            }
            router.delete("\(kind.rawValue)/:eventId/:sessionId") { _, context in
                self.hangUp(context, kind: kind)
            }
            // Trickle ICE and ICE restarts (PATCH) are not supported: the server is ICE-lite and
            // the offer must carry its candidates (RFC 9725 section 4.3).
            router.patch("\(kind.rawValue)/:eventId/:sessionId") { _, _ in
                Response(status: .methodNotAllowed, headers: [.allow: "DELETE"])
            }
        }
    }

    private func offer(_ request: Request, _ context: AirwaveRequestContext, kind: WebRTCPeer.Kind) async throws -> Response {
        guard let gateway = server.webRTC else {
            return refuse(ProtocolError(.serverBusy, "WebRTC is turned off on this server."), .serviceUnavailable)
        }
        guard !server.isDraining else {
            return refuse(ProtocolError(.serverShuttingDown, "The server is shutting down."), .serviceUnavailable)
        }
        guard let eventID = Self.parameter(context, "eventId") else {
            return refuse(ProtocolError(.badRequest, "eventId must be 1–64 characters of A–Z, a–z, 0–9, _ . @ -.",
                                        details: ["parameter": "eventId"]), .badRequest)
        }
        // WHEP's `?audio=`: `speakers` for one track per speaker, `mixed` (the default) for the mix.
        let audio = kind == .whep ? request.uri.queryParameters.get("audio") : nil
        guard audio == nil || audio == "mixed" || audio == "speakers" else {
            return refuse(ProtocolError(.badRequest, "audio must be mixed or speakers.", details: ["parameter": "audio"]), .badRequest)
        }
        let contentType = request.headers[.contentType]?.lowercased() ?? ""
        guard contentType.hasPrefix("application/sdp") else {
            return refuse(ProtocolError(.badRequest, "The offer must be sent as application/sdp."), .unsupportedMediaType)
        }
        let user: UserIdentity
        switch await bearerUser(request) {
        case .success(let verified?):
            user = UserIdentity(userID: verified.userID, username: verified.username, verified: true)
        case .success(nil) where kind == .whep:
            // An anonymous player: an unverified listener of its own, like a WebSocket join without a token.
            let name = "whep-" + LiveEventRegistry.newEventID().prefix(8)
            user = UserIdentity(userID: name, username: "WebRTC listener", verified: false)
        case .success(nil):
            server.metrics.authFailure(reason: "missing")
            return refuse(ProtocolError(.unauthorized, "Publishing needs a Bearer token.", details: ["reason": "missing"]), .unauthorized)
        case .failure(let error):
            return refuse(error, .unauthorized)
        }
        let text: String
        do {
            let body = try await request.body.collect(upTo: Self.maximumOfferSize)
            text = String(decoding: body.readableBytesView, as: UTF8.self)
        } catch {
            return refuse(ProtocolError(.badRequest, "The offer is larger than \(Self.maximumOfferSize / 1024) KiB."), .contentTooLarge)
        }
        let offer: SessionDescription
        do {
            offer = try SessionDescription.parse(text)
        } catch {
            return refuse(ProtocolError(.badRequest, "The offer is not valid SDP: \(error)."), .badRequest)
        }
        // The event's origin, or, for a WHEP player on another node, this node's edge of it
        // (PROTOCOL.md 8); a WHIP publisher is referred to the origin (`eventGone`).
        guard let served = try await server.served(eventID, asEdge: kind == .whep) else {
            let gone = try await server.eventGone(eventID)
            return refuse(gone, HTTPRoutes.status(ofGone: gone))
        }
        let event = served.webRTC
        let ended = ProtocolError(.eventEnded, "This event has ended.")
        guard !event.hasEnded else { return refuse(ended, .gone) }
        let opened: (peer: WebRTCPeer, answer: String)
        do {
            opened = try await gateway.open(offer: offer, kind: kind, id: server.newConnectionID(), user: user,
                                            from: WebRTCGateway.admissionKey(context.channel.remoteAddress),
                                            speakers: audio == "speakers", event: event) { peer in
                // A WHEP listener joins when it connects; an event that ends before is refused then.
                if kind == .whip, case .origin(let driver) = served { return await driver.admitPublisher(peer) }
                return !event.hasEnded
            }
        } catch {
            switch error {
            case .badOffer(let message):
                return refuse(ProtocolError(.badRequest, message), .badRequest)
            case .refused:
                if event.hasEnded { return refuse(ended, .gone) }
                return refuse(ProtocolError(.notAllowed, "Only the host and current co-hosts of this event may publish."), .forbidden)
            case .busy:
                return refuse(ProtocolError(.serverBusy, "The server has no room for another WebRTC session."), .serviceUnavailable)
            case .limited(let refusal):
                return refuse(refusal)
            }
        }
        server.logger.info("webrtc session", metadata: [
            "kind": "\(kind.rawValue)", "event_id": "\(eventID)", "user": "\(user.userID)", "session": "\(opened.peer.sessionID)",
        ])
        return Response(
            status: .created,
            headers: [.contentType: "application/sdp", .location: opened.peer.location(eventID: eventID)],
            body: .init(byteBuffer: ByteBuffer(string: opened.answer)))
    }

    /// The answer to an offer over a limit of ``WebRTCAdmission`` (docs/protocol.md, WebRTC):
    /// the server is full → 503 `server_busy`; this address is over its own limit → 429
    /// `rate_limited`, which tells a client that waiting (`Retry-After`) or a token helps.
    private func refuse(_ refusal: WebRTCAdmission.Refusal) -> Response {
        let limits = server.configuration.webRTC
        var response: Response
        switch refusal {
        case .full:
            response = refuse(ProtocolError(.serverBusy, "The server has no room for another WebRTC session.",
                                            details: ["reason": "sessions"]), .serviceUnavailable)
        case .anonymousShareFull:
            response = refuse(ProtocolError(.serverBusy, "The server has no room for another WebRTC listener without a token.",
                                            details: ["reason": "anonymous_sessions"]), .serviceUnavailable)
        case .addressFull:
            response = refuse(ProtocolError(.rateLimited, "This address has \(limits.anonymousSessionsPerIP) WebRTC sessions without a token; hang one up or send a token.",
                                            details: ["reason": "sessions_per_ip", "limit": .number(Double(limits.anonymousSessionsPerIP))]),
                              .tooManyRequests)
            response.headers[.retryAfter] = "10"
        case .addressTooFast:
            response = refuse(ProtocolError(.rateLimited, "Too many WebRTC offers without a token from this address; try again shortly.",
                                            details: ["reason": "offer_rate"]), .tooManyRequests)
            response.headers[.retryAfter] = "1"
        }
        return response
    }

    private func hangUp(_ context: AirwaveRequestContext, kind: WebRTCPeer.Kind) -> Response {
        guard let gateway = server.webRTC, let eventID = Self.parameter(context, "eventId"),
              let sessionID = Self.parameter(context, "sessionId"),
              gateway.hangUp(eventID: eventID, sessionID: sessionID, kind: kind)
        else {
            return refuse(ProtocolError(.sessionNotFound, "There is no such \(kind.rawValue.uppercased()) session."), .notFound)
        }
        return Response(status: .ok)
    }

    /// The Bearer token's user: nil without an `Authorization` header, an error for a bad token.
    private func bearerUser(_ request: Request) async -> Result<VerifiedUser?, ProtocolError> {
        guard let authorization = request.headers[.authorization] else { return .success(nil) }
        guard authorization.lowercased().hasPrefix("bearer ") else {
            server.metrics.authFailure(reason: "malformed")
            return .failure(ProtocolError(.unauthorized, "Authorization must be a Bearer token.", details: ["reason": "malformed"]))
        }
        do {
            return .success(try await server.verifier.verify(String(authorization.dropFirst("bearer ".count)).trimmingWhitespace()))
        } catch {
            server.metrics.authFailure(reason: error.reason)
            return .failure(ProtocolError(.unauthorized, error.message, details: ["reason": .string(error.reason)]))
        }
    }

    private func refuse(_ error: ProtocolError, _ status: HTTPResponse.Status) -> Response {
        server.metrics.error(code: error.code.rawValue)
        return HTTPRoutes.error(error, status: status)
    }

    private static func parameter(_ context: AirwaveRequestContext, _ name: String) -> String? {
        guard let raw = context.parameters.get(name), let decoded = raw.removingPercentEncoding, Identifier.isValid(decoded) else {
            return nil
        }
        return decoded
    }
}
