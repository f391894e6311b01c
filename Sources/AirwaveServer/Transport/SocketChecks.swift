import AirwaveAuth
import AirwaveProtocol
import Foundation

/// The outcome of checking a WebSocket request before it joins anything.
enum Admission: Sendable {
    /// Admitted: the session's receiver is made on the connection's event loop; `departure`
    /// runs once when the connection is gone.
    case admitted(receiver: @Sendable () -> any InboundReceiver, departure: @Sendable () -> Void)
    /// Refused with this error (sent as the only frame, then the close code of PROTOCOL.md 1).
    case refused(ProtocolError)
}

/// What every WebSocket endpoint checks before it admits a connection: path ids and the
/// optional token (PROTOCOL.md section 1).
struct SocketChecks {
    let server: AirwaveServer

    /// A percent-decoded path segment that must be a well-formed id (`bad_request` otherwise).
    func pathID(_ raw: Substring, name: String) throws(ProtocolError) -> String {
        guard let decoded = raw.removingPercentEncoding, Identifier.isValid(decoded) else {
            throw ProtocolError(.badRequest, "\(name) must be 1–64 characters of A–Z, a–z, 0–9, _ . @ -.", details: ["parameter": .string(name)])
        }
        return decoded
    }

    /// Verifies `?token=` (nil when there is none). A token that is present but invalid is
    /// `unauthorized`; one for another user than `pathUserID` (when given) is `forbidden`.
    func verifiedUser(_ request: WebSocketRequest, pathUserID: String?) async throws(ProtocolError) -> VerifiedUser? {
        guard let token = request.query["token"], !token.isEmpty else { return nil }
        let user: VerifiedUser
        do {
            user = try await server.verifier.verify(token)
        } catch {
            server.metrics.authFailure(reason: error.reason)
            throw ProtocolError(.unauthorized, error.message, details: ["reason": .string(error.reason)])
        }
        if let pathUserID, user.userID != pathUserID {
            server.metrics.authFailure(reason: "user_mismatch")
            throw ProtocolError(.forbidden, "The token belongs to another user.")
        }
        return user
    }

    /// The refusal for an error thrown while checking.
    func refusal(_ error: any Error) -> Admission {
        // What is not a protocol error came from the store (the database restarting): the
        // client may try again shortly.
        let protocolError = (error as? ProtocolError) ?? ProtocolError.storeUnavailable
        server.metrics.error(code: protocolError.code.rawValue)
        return .refused(protocolError)
    }

    /// Refuses every new connection while the server drains.
    func ensureServing() throws(ProtocolError) {
        guard !server.isDraining else { throw ProtocolError(.serverShuttingDown, "The server is shutting down.") }
    }
}
