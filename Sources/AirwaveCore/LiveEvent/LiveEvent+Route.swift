import AirwaveProtocol

/// The core's routing decision (modelled on LiveKit's `Forwarder` result): one value per
/// message or media frame says everything the driver and the transports do with it — who gets
/// it, by kind of recipient; which outbound queue class it takes; whether the mixer takes it;
/// whether its level must be measured. Executors look nothing up to decide: they only follow it.
extension LiveEvent {
    /// Connections of one kind (WebSocket, media-only session, edge link) that receive something.
    public enum Audience: Sendable, Hashable {
        case none
        case one(ConnectionID)
        /// Every connection of that kind in the event.
        case all
        /// Every connection of that kind except the sender and the skipped ones (viewers waiting
        /// for a screen keyframe, subscribers of the mix).
        case allExcept(ConnectionID, skipping: Set<ConnectionID> = [])
        /// Exactly these, ascending (the media-only sessions eligible for a VP8 screen frame, the
        /// per-speaker sessions of a speaker's audio).
        case only([ConnectionID])

        /// True when nobody of this kind receives it.
        public var isNone: Bool { self == .none }
    }

    /// The class a frame takes in each recipient's outbound queue (PROTOCOL.md 6): what may be
    /// dropped when a connection is slow.
    public enum QueueClass: String, Sendable, Hashable {
        /// Never dropped: notices and errors.
        case control
        /// A screen configuration frame: decoders need it, so it is kept like control.
        case config
        /// Oldest audio is dropped first.
        case audio
        /// Screen frames are skipped until the next keyframe.
        case screen
        case screenKeyframe = "screen_keyframe"
    }

    /// Where one message or frame goes, and how.
    public struct Route: Sendable, Hashable {
        /// WebSocket connections (control channel and media alike).
        public var sockets: Audience
        /// Media-only sessions (WHEP/WHIP), by connection id: the VP8-capable listeners of a
        /// screen frame, and the per-speaker listeners (`?audio=speakers`) of a speaker's Opus
        /// frame; the other WHEP listeners hear audio through the mix.
        public var sessions: Audience = .none
        /// Edge links of other nodes (PROTOCOL.md 8), the next kind of recipient: none yet.
        public var links: Audience = .none
        /// The class the frame takes in each WebSocket recipient's outbound queue.
        public var queue: QueueClass = .control
        /// The event mixer takes this frame (a speaker's Opus while the mix runs).
        public var mix = false
        /// Decode this frame to measure its level for `active_speakers`: a speaker whose client
        /// sends no level, while no mixer measures it.
        public var measureLevel = false

        /// A route; everything but the WebSocket audience defaults to "nothing more".
        public init(sockets: Audience, sessions: Audience = .none, links: Audience = .none, queue: QueueClass = .control,
                    mix: Bool = false, measureLevel: Bool = false) {
            self.sockets = sockets
            self.sessions = sessions
            self.links = links
            self.queue = queue
            self.mix = mix
            self.measureLevel = measureLevel
        }

        /// A control message to WebSocket connections.
        public static func control(_ sockets: Audience) -> Route { Route(sockets: sockets) }
    }

    /// A server message with its type as a typed value (for counters), beside the JSON that goes out.
    public struct Message: Sendable, Hashable {
        /// The message's `type`, the same as the JSON's.
        public var type: MessageType
        /// The `code` of an `error` message.
        public var errorCode: ErrorCode?
        /// What goes on the wire.
        public var json: JSONValue

        /// A message of this type.
        public init(_ type: MessageType, _ json: JSONValue, errorCode: ErrorCode? = nil) {
            self.type = type
            self.json = json
            self.errorCode = errorCode
        }

        /// An `error` message, its code typed for the counters.
        public init(_ error: ProtocolError) {
            self.init(.error, error.json, errorCode: error.code)
        }
    }

    /// The `type` of every message the engine sends (PROTOCOL.md 2.3).
    public enum MessageType: String, Sendable, Hashable, CaseIterable {
        case streamLink = "stream_link"
        case streamState = "stream_state"
        case chatHistory = "chat_history"
        case participantList = "participant_list"
        case participantCount = "participant_count"
        case participantJoined = "participant_joined"
        case participantLeft = "participant_left"
        case cohostInvite = "cohost_invite"
        case cohostJoined = "cohost_joined"
        case cohostRemoved = "cohost_removed"
        case cohostLeft = "cohost_left"
        case cohostRejected = "cohost_rejected"
        case messageBroadcast = "message_broadcast"
        case streamModeChanged = "stream_mode_changed"
        case screenSharingStarted = "screen_sharing_started"
        case audioStreamingStarted = "audio_streaming_started"
        case streamEnded = "stream_ended"
        case serverShutdown = "server_shutdown"
        case activeSpeakers = "active_speakers"
        case recordingStarted = "recording_started"
        case recordingStopped = "recording_stopped"
        case muted
        case unmuted
        case keyframeRequest = "keyframe_request"
        case error
    }

    /// Sends a control message of `type` to WebSocket connections.
    mutating func send(_ type: MessageType, _ json: JSONValue, to sockets: Audience) {
        emit(.send(Message(type, json), .control(sockets)))
    }
}
