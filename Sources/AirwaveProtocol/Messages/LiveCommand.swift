/// A text message a client sends on a live-event socket (PROTOCOL.md 2.3), validated.
public enum LiveCommand: Sendable, Hashable {
    case switchToAudio
    case switchToScreen(ScreenConfig)
    case endStream
    case inviteCohost(userID: String)
    /// `participant_id` (a user id) and/or `username` name the co-host.
    case removeCohost(userID: String?, username: String?)
    case acceptCohost
    case rejectCohost
    case leaveCohost
    case chat(String)
    case leave
    case mute(userID: String?)
    case unmute(userID: String?)
    case keyframeRequest
    /// Extension (docs/protocol.md): the host starts recording the event's mix.
    case recordingStart
    /// Extension (docs/protocol.md): the host stops the recording.
    case recordingStop

    /// Which rate-limit bucket the message draws from.
    public var isChat: Bool {
        if case .chat = self { return true }
        return false
    }

    /// Longest chat message, in characters.
    public static let maxChatLength = 2000

    /// Parses and validates one text frame; every failure is a `bad_message` or `unknown_type` error.
    public static func decode(_ bytes: some Sequence<UInt8>) throws(ProtocolError) -> LiveCommand {
        let (type, json) = try TypedMessage.decode(bytes)
        var fields = FieldReader(json: json)
        switch type {
        case "switching_to_audio":
            try fields.expectOptional("stream", equals: "audio")
            return .switchToAudio
        case "switching_to_screen_sharing":
            try fields.expectOptional("stream", equals: "screen")
            return .switchToScreen(try ScreenConfig(fields: &fields))
        case "stream_ended":
            _ = try fields.optionalID("event_id")
            return .endStream
        case "invite_cohost":
            return .inviteCohost(userID: try fields.requiredID("user_id"))
        case "remove_cohost":
            var userID = try fields.optionalID("participant_id")
            if userID == nil { userID = try fields.optionalID("user_id") }
            let username = try fields.optionalString("username", maxLength: DisplayName.maxLength)
            guard userID != nil || username != nil else {
                throw ProtocolError(.badMessage, "remove_cohost needs participant_id or username.", details: ["field": "participant_id"])
            }
            return .removeCohost(userID: userID, username: username)
        case "accept_cohost": return .acceptCohost
        case "cohost_reject": return .rejectCohost
        case "cohost_leave": return .leaveCohost
        case "broadcast_message", "text":
            let key = json["message"] == nil && json["text"] != nil ? "text" : "message"
            guard let text = try fields.optionalString(key, maxLength: maxChatLength) else {
                throw ProtocolError(.badMessage, "A chat message needs a message field.", details: ["field": "message"])
            }
            guard !text.trimmingWhitespace().isEmpty else {
                throw ProtocolError(.badMessage, "A chat message cannot be empty.", details: ["field": .string(key)])
            }
            return .chat(text)
        case "leave_room": return .leave
        case "mute": return .mute(userID: try fields.optionalID("user_id"))
        case "unmute": return .unmute(userID: try fields.optionalID("user_id"))
        case "keyframe_request": return .keyframeRequest
        case "recording_start": return .recordingStart
        case "recording_stop": return .recordingStop
        default:
            throw ProtocolError(.unknownType, "Unknown message type \(type.prefix(64)).", details: ["type": .string(String(type.prefix(64)))])
        }
    }
}

/// The screen codec announced with `switching_to_screen_sharing`; every field is optional.
public struct ScreenConfig: Sendable, Hashable {
    public var codec: String?
    public var width: Int?
    public var height: Int?
    /// Base64 decoder configuration, as the host sent it.
    public var description: String?

    public init(codec: String? = nil, width: Int? = nil, height: Int? = nil, description: String? = nil) {
        self.codec = codec
        self.width = width
        self.height = height
        self.description = description
    }

    /// Largest base64 `description` accepted.
    public static let maxDescriptionLength = 16 * 1024

    init(fields: inout FieldReader) throws(ProtocolError) {
        codec = try fields.optionalString("codec", maxLength: 64)
        width = try fields.optionalInt("width", in: 1...16384)
        height = try fields.optionalInt("height", in: 1...16384)
        description = try fields.optionalString("description", maxLength: Self.maxDescriptionLength)
        if let description, !description.utf8.allSatisfy(Self.isBase64) {
            throw ProtocolError(.badMessage, "description must be base64.", details: ["field": "description"])
        }
    }

    private static func isBase64(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "+"), UInt8(ascii: "/"), UInt8(ascii: "="), UInt8(ascii: "-"), UInt8(ascii: "_"):
            true
        default: false
        }
    }

    /// The codec fields as they appear in `stream_state.screen` and `stream_mode_changed`.
    public var jsonFields: [String: JSONValue] {
        var fields: [String: JSONValue] = [:]
        if let codec { fields["codec"] = .string(codec) }
        if let width { fields["width"] = .int(width) }
        if let height { fields["height"] = .int(height) }
        if let description { fields["description"] = .string(description) }
        return fields
    }
}
