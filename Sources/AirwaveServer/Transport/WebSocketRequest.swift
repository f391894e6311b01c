import AirwaveProtocol
import Foundation
import NIOHTTP1

/// The WebSocket endpoints (PROTOCOL.md 2.1, 2.2, 2.5, 3), matched on the upgrade request's path
/// with or without its trailing slash. Path segments stay raw here; `SocketChecks` decodes and
/// validates them so that a bad id is answered with `bad_request` over the socket.
enum WebSocketEndpoint: Sendable, Equatable {
    /// `/ws/stream/start/live/{userId}/`
    case host(userID: Substring)
    /// `/ws/stream/live/join/event/{eventId}/{userId}/` and `…/{eventId}/{username}/{userId}/`
    case join(eventID: Substring, username: Substring?, userID: Substring)
    /// `/ws/active-streams/`
    case directory
    /// `/ws/session/{roomId}/`
    case session(roomID: Substring)
    /// `/ws/cluster/link/{eventId}/`: an edge node's link to the event's origin (PROTOCOL.md 8).
    case link(eventID: Substring)

    /// The metric label of the endpoint (`airwave_connections{endpoint}`).
    var label: String {
        switch self {
        case .host: "start"
        case .join: "join"
        case .directory: "active_streams"
        case .session: "session"
        case .link: "link"
        }
    }

    /// The endpoint a path names, or nil for any other path.
    init?(path: Substring) {
        var segments = path.split(separator: "/", omittingEmptySubsequences: false)
        guard segments.first == "" else { return nil }
        segments.removeFirst()
        if segments.last == "" { segments.removeLast() }
        guard !segments.contains(where: \.isEmpty), segments.first == "ws" else { return nil }
        switch segments.count {
        case 5 where segments[1] == "stream" && segments[2] == "start" && segments[3] == "live":
            self = .host(userID: segments[4])
        case 7 where segments[1] == "stream" && segments[2] == "live" && segments[3] == "join" && segments[4] == "event":
            self = .join(eventID: segments[5], username: nil, userID: segments[6])
        case 8 where segments[1] == "stream" && segments[2] == "live" && segments[3] == "join" && segments[4] == "event":
            self = .join(eventID: segments[5], username: segments[6], userID: segments[7])
        case 2 where segments[1] == "active-streams":
            self = .directory
        case 3 where segments[1] == "session":
            self = .session(roomID: segments[2])
        case 4 where segments[1] == "cluster" && segments[2] == "link":
            self = .link(eventID: segments[3])
        default:
            return nil
        }
    }
}

/// What the relay needs of a WebSocket upgrade request: the endpoint, the query parameters
/// (percent-decoded) and the authority the client used (for `join_url`).
struct WebSocketRequest: Sendable {
    let endpoint: WebSocketEndpoint
    let query: [String: String]
    let authority: String?

    /// Parses an upgrade request; nil when its path is no WebSocket endpoint.
    init?(_ head: HTTPRequestHead) {
        let uri = head.uri[...]
        let questionMark = uri.firstIndex(of: "?")
        guard let endpoint = WebSocketEndpoint(path: uri[..<(questionMark ?? uri.endIndex)]) else { return nil }
        self.endpoint = endpoint
        var query: [String: String] = [:]
        if let questionMark {
            for pair in uri[uri.index(after: questionMark)...].split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                guard let name = Self.decode(parts[0]), query[name] == nil else { continue }
                query[name] = parts.count > 1 ? Self.decode(parts[1]) ?? "" : ""
            }
        }
        self.query = query
        authority = head.headers.first(name: "host")
    }

    /// Whether this socket may carry media, and so binary messages up to
    /// `maxSpeakerBinaryMessage` (PROTOCOL.md 10): the host's, and a join with a token — a
    /// verified listener, who may become a co-host without reconnecting. A token that does not
    /// verify is refused at admission, so only verified sockets keep the larger limit.
    var mayPublish: Bool {
        switch endpoint {
        case .host: true
        case .join: !(query["token"] ?? "").isEmpty
        // Carries its clients' media; refused at admission without the cluster's credential.
        case .link: true
        case .directory, .session: false
        }
    }

    /// Bytes a text message may have beyond a client's limit: an edge's link wraps a client's
    /// message of the full size in a few bytes of its own.
    var textAllowance: Int {
        if case .link = endpoint { return 1024 }
        return 0
    }

    /// Percent-decoding of a query component (`+` is a space, as browsers' forms send it).
    private static func decode(_ component: Substring) -> String? {
        component.replacingOccurrences(of: "+", with: " ").removingPercentEncoding
    }
}
