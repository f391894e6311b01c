import AirwaveProtocol
import Hummingbird
import Logging

/// Turns a failure of the store (the database restarting, a connection lost) into a clear
/// `503 server_busy` instead of Hummingbird's bare 500: the client may retry, and the server
/// goes on. The routes answer every client mistake themselves, so what reaches this is the store.
struct StoreFailureMiddleware<Context: RequestContext>: RouterMiddleware {
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError {
            throw error
        } catch {
            logger.warning("request failed on the store", metadata: ["path": "\(request.uri.path)", "error": "\(String(reflecting: error))"])
            var response = HTTPRoutes.error(ProtocolError.storeUnavailable, status: .serviceUnavailable)
            response.headers[.retryAfter] = "1"
            return response
        }
    }
}

extension ProtocolError {
    /// The store failed (the database restarting, a connection lost): the client may retry.
    static let storeUnavailable = ProtocolError(.serverBusy, "The database is unavailable; try again shortly.", details: ["reason": "store"])
}
