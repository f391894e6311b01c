/// The stable, machine-readable `code` of an `error` frame (PROTOCOL.md section 1).
public enum ErrorCode: String, Sendable, Hashable, CaseIterable {
    case unauthorized
    case forbidden
    case eventNotFound = "event_not_found"
    case eventEnded = "event_ended"
    case duplicateUser = "duplicate_user"
    case replaced
    case tooSlow = "too_slow"
    case roomClosed = "room_closed"
    case badRequest = "bad_request"
    case badMessage = "bad_message"
    case unknownType = "unknown_type"
    case notAllowed = "not_allowed"
    case noPendingInvite = "no_pending_invite"
    case rateLimited = "rate_limited"
    case cannotInvite = "cannot_invite"
    case alreadyVoted = "already_voted"
    /// Extension (docs/protocol.md): `remove_cohost` or `mute` names someone who is not a speaker.
    case notCohost = "not_cohost"
    /// Extension (docs/protocol.md): `POST /api/rooms` for a room id that exists (HTTP 409).
    case roomExists = "room_exists"
    /// Extension (docs/protocol.md): `GET /api/rooms/{id}` for a room never created or used (HTTP 404).
    case roomNotFound = "room_not_found"
    /// Extension (docs/protocol.md): the server is draining and accepts no new connections.
    case serverShuttingDown = "server_shutting_down"
    /// Extension (docs/protocol.md): `recording_stop` while nothing is being recorded.
    case notRecording = "not_recording"
    /// Extension (docs/protocol.md): `GET /api/streams/{id}/recordings/{name}` for a file that does not exist (HTTP 404).
    case recordingNotFound = "recording_not_found"
    /// Extension (docs/protocol.md): WebRTC is off or at its session limit (HTTP 503).
    case serverBusy = "server_busy"
    /// Extension (docs/protocol.md): `DELETE` of a WHEP/WHIP session that does not exist (HTTP 404).
    case sessionNotFound = "session_not_found"
    /// PROTOCOL.md 10: a listening room's queue is at its limit.
    case queueFull = "queue_full"
    /// Extension (docs/security.md): a per-user or per-event quota is used up (rooms, recordings; HTTP 429).
    case quotaExceeded = "quota_exceeded"

    /// The WebSocket close code that follows this error, or nil when the connection stays open.
    public var closeCode: CloseCode? {
        switch self {
        case .unauthorized: .unauthorized
        case .forbidden: .forbidden
        case .eventNotFound: .eventNotFound
        case .eventEnded: .eventEnded
        case .duplicateUser: .duplicateUser
        case .replaced: .replaced
        case .tooSlow: .tooSlow
        case .roomClosed: .normal
        case .badRequest: .badRequest
        case .serverShuttingDown: .goingAway
        case .serverBusy: .tryAgainLater
        case .badMessage, .unknownType, .notAllowed, .noPendingInvite, .rateLimited, .cannotInvite, .alreadyVoted,
            .notCohost, .roomExists, .roomNotFound, .notRecording, .recordingNotFound, .sessionNotFound,
            .queueFull, .quotaExceeded:
            nil
        }
    }
}

/// WebSocket close codes Airwave sends.
public struct CloseCode: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let normal = CloseCode(rawValue: 1000)
    public static let goingAway = CloseCode(rawValue: 1001)
    /// RFC 6455 7.4.1: the peer broke the WebSocket protocol.
    public static let protocolError = CloseCode(rawValue: 1002)
    /// RFC 6455 7.4.1: a text message that is not UTF-8.
    public static let invalidPayload = CloseCode(rawValue: 1007)
    public static let messageTooBig = CloseCode(rawValue: 1009)
    /// RFC 6455 registry: the server cannot serve now (its database is unavailable); try again.
    public static let tryAgainLater = CloseCode(rawValue: 1013)
    public static let replaced = CloseCode(rawValue: 4000)
    public static let badRequest = CloseCode(rawValue: 4400)
    public static let unauthorized = CloseCode(rawValue: 4401)
    public static let forbidden = CloseCode(rawValue: 4403)
    public static let eventNotFound = CloseCode(rawValue: 4404)
    public static let tooSlow = CloseCode(rawValue: 4408)
    public static let duplicateUser = CloseCode(rawValue: 4409)
    public static let eventEnded = CloseCode(rawValue: 4410)

    public var description: String { String(rawValue) }
}

/// An error frame to send: code, human message and optional details.
public struct ProtocolError: Error, Sendable, Hashable {
    public var code: ErrorCode
    public var message: String
    public var details: [String: JSONValue]

    public init(_ code: ErrorCode, _ message: String, details: [String: JSONValue] = [:]) {
        self.code = code
        self.message = message
        self.details = details
    }

    /// `{"type":"error","code",…,"message",…,"details":{…}}`
    public var json: JSONValue {
        ["type": "error", "code": .string(code.rawValue), "message": .string(message), "details": .object(details)]
    }
}
