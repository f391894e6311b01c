/// A text message a client sends on a listening-room socket (PROTOCOL.md 3), validated.
public struct RoomCommand: Sendable, Hashable {
    public enum Action: Sendable, Hashable {
        case queueSong(songID: String, timeAdded: Int64?)
        case queueAutoplaySong(songID: String)
        case vote(songID: String)
        case changeSong(songID: String?)
        case changePlayback(PlaybackChange)
        case chat(name: String?, message: String)
        case closeRoom
        case userJoined
    }

    /// What the client asked for.
    public var action: Action
    /// The client's whole object: relayed with the server's fields on top, so that fields
    /// Airwave does not know (a song's title, say) still reach the other members.
    public var original: [String: JSONValue]

    /// The wire `type`.
    public var type: String { original["type"]?.stringValue ?? "" }

    /// Which rate-limit bucket the message draws from.
    public var isChat: Bool {
        if case .chat = action { return true }
        return false
    }

    /// Longest song id accepted.
    public static let maxSongIDLength = 256

    /// Parses and validates one text frame; failures are `bad_message` or `unknown_type`.
    public static func decode(_ bytes: some Sequence<UInt8>) throws(ProtocolError) -> RoomCommand {
        let (type, json) = try TypedMessage.decode(bytes)
        guard case .object(let original) = json else { throw ProtocolError(.badMessage, "The message must be a JSON object.") }
        var fields = FieldReader(json: json)
        func songID(required: Bool) throws(ProtocolError) -> String? {
            guard let value = json["song_id"], value != .null else {
                if required { throw ProtocolError(.badMessage, "song_id is required.", details: ["field": "song_id"]) }
                return nil
            }
            switch value {
            case .string(let s) where !s.isEmpty && s.count <= maxSongIDLength: return s
            case .number: if let i = value.intValue { return String(i) }
            default: break
            }
            throw ProtocolError(.badMessage, "song_id must be a string of 1–\(maxSongIDLength) characters or an integer.", details: ["field": "song_id"])
        }
        let action: Action
        switch type {
        case "song_queued":
            let timeAdded = try fields.optionalNumber("time_added", in: 0...9.0e15).map { Int64($0) }
            action = .queueSong(songID: try songID(required: true)!, timeAdded: timeAdded)
        case "autoplay_song_queued":
            action = .queueAutoplaySong(songID: try songID(required: true)!)
        case "song_vote":
            action = .vote(songID: try songID(required: true)!)
        case "song_changed":
            action = .changeSong(songID: try songID(required: false))
        case "playback_changed":
            let change = PlaybackChange(
                percentage: try fields.optionalNumber("percentage", in: 0...100),
                paused: try fields.optionalBool("paused"),
                songProgress: try fields.optionalNumber("song_progress", in: 0...9.0e15).map { Int64($0) },
                songLength: try fields.optionalNumber("song_length", in: 0...9.0e15).map { Int64($0) })
            guard change.percentage != nil || change.paused != nil || change.songProgress != nil || change.songLength != nil else {
                throw ProtocolError(.badMessage, "playback_changed needs percentage, song_progress, song_length or paused.", details: ["field": "percentage"])
            }
            action = .changePlayback(change)
        case "chat_message":
            guard let message = try fields.optionalString("message", maxLength: LiveCommand.maxChatLength),
                !message.trimmingWhitespace().isEmpty
            else {
                throw ProtocolError(.badMessage, "A chat message needs a message of 1–\(LiveCommand.maxChatLength) characters.", details: ["field": "message"])
            }
            var name: String?
            if let raw = try fields.optionalString("name", maxLength: 256) {
                guard let valid = DisplayName.validated(raw) else {
                    throw ProtocolError(.badMessage, "name must be 1–64 characters.", details: ["field": "name"])
                }
                name = valid
            }
            action = .chat(name: name, message: message)
        case "room_closed": action = .closeRoom
        case "user_joined": action = .userJoined
        default:
            throw ProtocolError(.unknownType, "Unknown message type \(type.prefix(64)).", details: ["type": .string(String(type.prefix(64)))])
        }
        return RoomCommand(action: action, original: original)
    }
}

/// The fields of a `playback_changed`; absent ones keep their previous value.
public struct PlaybackChange: Sendable, Hashable {
    public var percentage: Double?
    public var paused: Bool?
    public var songProgress: Int64?
    public var songLength: Int64?

    public init(percentage: Double? = nil, paused: Bool? = nil, songProgress: Int64? = nil, songLength: Int64? = nil) {
        self.percentage = percentage
        self.paused = paused
        self.songProgress = songProgress
        self.songLength = songLength
    }
}
