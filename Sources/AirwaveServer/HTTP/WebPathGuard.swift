import AirwaveProtocol
import Hummingbird

/// Refuses, with 400 `bad_request`, a request path that could make the static file server
/// serve or point somewhere it should not, before the file system is touched:
/// - an encoded slash, backslash or NUL (`%2f`, `%5c`, `%00`): `/%2fjs` would otherwise decode to
///   `//js` and be redirected to `//js/`, which a browser reads as another host;
///   `/index.html%00.js` would be served as `index.html` typed by its `.js` suffix;
/// - an empty segment (`//`), a `.` or `..` segment, a backslash, or a control character.
struct WebPathGuard<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard Self.isSafe(request.uri.path) else {
            return HTTPRoutes.error(ProtocolError(.badRequest, "This path is not allowed."), status: .badRequest)
        }
        return try await next(request, context)
    }

    /// Whether `rawPath` (as received, still percent-encoded) is a plain path below `/`.
    static func isSafe(_ rawPath: String) -> Bool {
        let lowered = rawPath.lowercased()
        guard rawPath.hasPrefix("/"), !lowered.contains("%2f"), !lowered.contains("%5c"), !lowered.contains("%00") else { return false }
        guard let decoded = rawPath.removingPercentEncoding else { return false }
        if decoded.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f || $0 == "\\" }) { return false }
        // Every segment but a trailing empty one ("/js/") must be a real name.
        var segments = decoded.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        if segments.last == "" { segments = segments.dropLast() }
        return !segments.contains { $0.isEmpty || $0 == "." || $0 == ".." }
    }
}
