/// Builders for the messages the server sends on live-event sockets (PROTOCOL.md 2.3, 2.5).
/// Each returns the whole JSON object, `type` included.
public enum LiveServerMessage {
    /// A participant as listed in `participant_list`.
    public struct ParticipantEntry: Sendable, Hashable {
        public var userID: String
        public var username: String
        public var role: String
        public var verified: Bool
        public var sourceID: UInt32?
        public var muted: Bool

        public init(userID: String, username: String, role: String, verified: Bool, sourceID: UInt32?, muted: Bool) {
            self.userID = userID
            self.username = username
            self.role = role
            self.verified = verified
            self.sourceID = sourceID
            self.muted = muted
        }

        var json: JSONValue {
            [
                "user_id": .string(userID), "username": .string(username), "role": .string(role),
                "verified": .bool(verified), "source_id": sourceID.map { .int($0) } ?? .null, "muted": .bool(muted),
            ]
        }
    }

    /// A chat message as stored and replayed.
    public struct ChatEntry: Sendable, Hashable {
        public var userID: String
        public var username: String
        public var message: String
        public var sentAt: Timestamp
        /// Whether the sender joined with a valid token (PROTOCOL.md 10): only then is `userID`
        /// proven, so clients can tell a verified user from a guest who picked the same id.
        public var verified: Bool

        public init(userID: String, username: String, message: String, sentAt: Timestamp, verified: Bool) {
            self.userID = userID
            self.username = username
            self.message = message
            self.sentAt = sentAt
            self.verified = verified
        }

        var fields: [String: JSONValue] {
            [
                "username": .string(username), "user_id": .string(userID), "message": .string(message), "sent_at": .string(sentAt.iso8601),
                "verified": .bool(verified),
            ]
        }
    }

    /// One entry of the active-streams directory.
    public struct StreamSummary: Sendable, Hashable {
        public var eventID: String
        public var hostUserID: String
        public var hostUsername: String
        public var mode: String
        public var participantCount: Int
        public var startedAt: Timestamp

        public init(eventID: String, hostUserID: String, hostUsername: String, mode: String, participantCount: Int, startedAt: Timestamp) {
            self.eventID = eventID
            self.hostUserID = hostUserID
            self.hostUsername = hostUsername
            self.mode = mode
            self.participantCount = participantCount
            self.startedAt = startedAt
        }

        /// The object of `active_streams.streams` and `GET /api/streams`.
        public var json: JSONValue {
            [
                "event_id": .string(eventID), "room_id": .string(eventID), "host_user_id": .string(hostUserID),
                "host_username": .string(hostUsername), "mode": .string(mode), "total_participants": .int(participantCount),
                "status": "active", "start_timestamp": .string(startedAt.iso8601), "type": "AUDIO",
            ]
        }
    }

    public static func streamLink(eventID: String, joinURL: String, mode: String, resumed: Bool) -> JSONValue {
        ["type": "stream_link", "event_id": .string(eventID), "join_url": .string(joinURL), "mode": .string(mode), "resumed": .bool(resumed)]
    }

    public static func streamState(eventID: String, mode: String, hostUserID: String, hostUsername: String, screen: ScreenConfig?, startedAt: Timestamp) -> JSONValue {
        [
            "type": "stream_state", "event_id": .string(eventID), "mode": .string(mode),
            "host": ["user_id": .string(hostUserID), "username": .string(hostUsername)],
            "screen": screen.map { .object($0.jsonFields) } ?? .null, "started_at": .string(startedAt.iso8601),
        ]
    }

    public static func chatHistory(_ messages: some Sequence<ChatEntry>) -> JSONValue {
        ["type": "chat_history", "messages": .array(messages.map { .object($0.fields) })]
    }

    public static func participantList(_ entries: [ParticipantEntry], truncatedTotal: Int?) -> JSONValue {
        var fields: [String: JSONValue] = ["type": "participant_list", "participants": .array(entries.map(\.json))]
        if let truncatedTotal {
            fields["truncated"] = true
            fields["total"] = .int(truncatedTotal)
        }
        return .object(fields)
    }

    public static func participantCount(_ count: Int) -> JSONValue {
        ["type": "participant_count", "count": .int(count)]
    }

    public static func participantJoined(userID: String, username: String) -> JSONValue {
        ["type": "participant_joined", "user_id": .string(userID), "username": .string(username), "message": .string("\(username) joined the stream")]
    }

    public static func participantLeft(userID: String, username: String) -> JSONValue {
        ["type": "participant_left", "user_id": .string(userID), "username": .string(username), "message": .string("\(username) left the stream")]
    }

    public static func cohostInvite(fromUser: String, hostUserID: String) -> JSONValue {
        ["type": "cohost_invite", "from_user": .string(fromUser), "from_user_id": .string(hostUserID), "message": .string("\(fromUser) invited you to speak as a co-host")]
    }

    public static func cohostJoined(userID: String, username: String, sourceID: UInt32) -> JSONValue {
        [
            "type": "cohost_joined", "participant_id": .string(userID), "user_id": .string(userID), "username": .string(username),
            "source_id": .int(sourceID), "message": .string("\(username) is now a co-host"),
        ]
    }

    /// `cohost_left` (the co-host stepped down or disconnected) or `cohost_removed` (the host demoted it).
    public static func cohostEnded(removed: Bool, userID: String, username: String, message: String) -> JSONValue {
        [
            "type": .string(removed ? "cohost_removed" : "cohost_left"), "participant_id": .string(userID), "user_id": .string(userID),
            "username": .string(username), "message": .string(message),
        ]
    }

    public static func cohostRejected(userID: String, username: String) -> JSONValue {
        ["type": "cohost_rejected", "user_id": .string(userID), "username": .string(username), "message": .string("\(username) declined the invitation")]
    }

    public static func messageBroadcast(_ chat: ChatEntry) -> JSONValue {
        var fields = chat.fields
        fields["type"] = "message_broadcast"
        return .object(fields)
    }

    public static func streamModeChanged(mode: String, screen: ScreenConfig?) -> JSONValue {
        var fields = screen?.jsonFields ?? [:]
        fields["type"] = "stream_mode_changed"
        fields["mode"] = .string(mode)
        fields["message"] = .string(mode == "screen" ? "The host is sharing the screen" : "The host switched to audio")
        return .object(fields)
    }

    /// The legacy notice that follows `stream_mode_changed` for older clients.
    public static func legacyModeNotice(mode: String, screen: ScreenConfig?) -> JSONValue {
        var fields = screen?.jsonFields ?? [:]
        fields["type"] = .string(mode == "screen" ? "screen_sharing_started" : "audio_streaming_started")
        fields["mode"] = .string(mode)
        return .object(fields)
    }

    public static func streamEnded(eventID: String, message: String) -> JSONValue {
        ["type": "stream_ended", "event_id": .string(eventID), "message": .string(message)]
    }

    /// `active_speakers`: `speakers` loudest first, `level` 0…127 (higher is louder).
    public static func activeSpeakers(_ speakers: [(userID: String, level: Int)]) -> JSONValue {
        ["type": "active_speakers", "speakers": .array(speakers.map { ["user_id": .string($0.userID), "level": .int($0.level)] })]
    }

    /// Extension (docs/protocol.md): a recording of the event's mix started; `recording` is its file name.
    public static func recordingStarted(name: String, startedAt: Timestamp) -> JSONValue {
        ["type": "recording_started", "recording": .string(name), "started_at": .string(startedAt.iso8601)]
    }

    /// Extension (docs/protocol.md): the recording stopped.
    public static func recordingStopped(name: String, stoppedAt: Timestamp) -> JSONValue {
        ["type": "recording_stopped", "recording": .string(name), "stopped_at": .string(stoppedAt.iso8601)]
    }

    public static func muted(_ muted: Bool, userID: String) -> JSONValue {
        ["type": .string(muted ? "muted" : "unmuted"), "user_id": .string(userID)]
    }

    /// A request for a keyframe: from a listener (`user_id`), or from the server itself when its
    /// cache cannot serve a viewer (`reason: "cache"`).
    public static func keyframeRequest(fromUserID: String?) -> JSONValue {
        guard let fromUserID else { return ["type": "keyframe_request", "reason": "cache"] }
        return ["type": "keyframe_request", "user_id": .string(fromUserID)]
    }

    public static func activeStreams(_ streams: [StreamSummary]) -> JSONValue {
        ["type": "active_streams", "streams": .array(streams.map(\.json))]
    }

    public static let serverShutdown: JSONValue = ["type": "server_shutdown", "message": "The server is shutting down"]
}
