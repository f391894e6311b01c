import AirwaveAuth
import AirwaveProtocol
import Foundation
import HummingbirdWebSocket

/// What every WebSocket endpoint checks before it admits a connection: path ids, the
/// optional token, and how a refusal is sent (PROTOCOL.md section 1).
struct SocketChecks {
    let server: AirwaveServer

    typealias Context = WebSocketRouterContext<AirwaveRequestContext>

    /// A percent-decoded path parameter that must be a well-formed id (`bad_request` otherwise).
    func pathID(_ parameter: String, _ context: Context, name: String? = nil) throws(ProtocolError) -> String {
        let name = name ?? parameter
        guard let raw = context.requestContext.parameters.get(parameter), let decoded = raw.removingPercentEncoding,
            Identifier.isValid(decoded)
        else {
            throw ProtocolError(.badRequest, "\(name) must be 1–64 characters of A–Z, a–z, 0–9, _ . @ -.", details: ["parameter": .string(name)])
        }
        return decoded
    }

    /// Verifies `?token=` (nil when there is none). A token that is present but invalid is
    /// `unauthorized`; one for another user than `pathUserID` (when given) is `forbidden`.
    func verifiedUser(_ context: Context, pathUserID: String?) async throws(ProtocolError) -> VerifiedUser? {
        guard let token = context.request.uri.queryParameters.get("token"), !token.isEmpty else { return nil }
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

    /// Sends the refusal as the only frame, closes, and keeps reading until the peer answers the close.
    func drainAfterRefusal(_ inbound: WebSocketInboundStream, _ connection: ClientConnection, _ error: any Error) async {
        let protocolError = (error as? ProtocolError) ?? ProtocolError(.badRequest, "The request could not be served.")
        server.metrics.error(code: protocolError.code.rawValue)
        connection.refuse(protocolError)
        do {
            for try await _ in inbound {}
        } catch {}
    }
}
