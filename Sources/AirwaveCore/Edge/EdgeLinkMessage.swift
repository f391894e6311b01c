import AirwaveProtocol

/// What travels on the link between an edge node and an event's origin (PROTOCOL.md 8,
/// docs/architecture.md "Several nodes"): one link per event per edge, one ordered stream each
/// way. Text frames are JSON objects with a `type`; binary frames are media frames of
/// PROTOCOL.md 4 (`EdgeLinkMessage+Coding.swift` has the wire form).
///
/// An edge names its clients on the link by a number of its own (`EdgeClient`), stable for the
/// life of the edge's event: the origin maps (edge, number) to a connection of its engine, and a
/// re-link announces the same numbers again. Numbers fit the media header's 32-bit source id, so
/// a client's media goes up as a plain media frame.
public enum EdgeLinkMessage {
    /// An edge's client, numbered by the edge from 1 in join order.
    public typealias EdgeClient = UInt32

    /// Edge → origin. The origin decides everything (admission, roles, gates, order); the edge
    /// only says what its clients did.
    public enum Up: Sendable, Hashable {
        /// A client connected to the edge with this identity (sent again for every client after
        /// a re-link: the origin answers a client it already holds with `welcome` and no notice).
        case join(EdgeClient, UserIdentity)
        /// The client's socket closed, for any reason (the origin's `disconnected`).
        case leave(EdgeClient)
        /// A validated command of the client.
        case command(EdgeClient, LiveCommand)
        /// A media frame the client sent (a co-host's audio); the origin gates it.
        case media(EdgeClient, MediaFrame)
        /// The edge's GOP cache cannot serve a viewer: the host is asked for a keyframe (the
        /// origin's throttle applies).
        case keyframeRequest
        /// The client asked for the event's mix (`?audio=mixed`): the origin's
        /// `mixSubscription`, sent after its join (again after a re-link).
        case mixSubscription(EdgeClient)
        /// A media-only client connected to the edge: a WHEP player (`video`: its answer took
        /// VP8; `speakers`: one track per speaker) or a `GET /listen/` player. The origin's
        /// `mediaListenerJoined`: it answers with no `welcome` (the client has no control
        /// channel) and, for the mix, `mixSubscriber`. Sent again after a re-link.
        case mediaListenerJoined(EdgeClient, UserIdentity, video: Bool, speakers: Bool)
        /// The edge's HLS segmenter (`GET /hls/` on the edge) takes the full mix: the origin's
        /// `segmenterSubscription`, a mix subscriber that is no participant. Sent again after a re-link.
        case segmenterSubscription(EdgeClient)
    }

    /// Origin → edge: what the origin's engine decided, for the edge to deliver.
    public enum Down: Sendable, Hashable {
        /// The first message on every link: the event as it is now. Everything after it follows
        /// on from this state.
        case snapshot(Snapshot)
        /// The origin accepted the client's join; from here on it is one of the edge's members
        /// and gets the edge's replay (stream_state, chat_history, the screen GOP).
        case welcome(EdgeClient)
        /// A server message for the edge's clients.
        case message(LiveEvent.Message, to: Audience)
        /// Close the client's socket with this code (any error was sent just before); the origin
        /// has already forgotten it.
        case close(EdgeClient, CloseCode)
        /// A media frame with its source id set, for every member of the edge but its speaker.
        case media(MediaFrame)
        /// The event is over: every client of the edge is closed with this code.
        case ended(CloseCode)
        /// The client hears the mix without `minus` (nil: the full mix) from now: the origin's
        /// `mixSubscriber`. Mix frames come down as media with source id 0 (the full mix) or
        /// `0x8000_0000 | minus`; the edge writes them with source id 0.
        case mixSubscriber(EdgeClient, minus: UInt32?)
        /// The client no longer hears the mix (the origin's `mixUnsubscriber`).
        case mixUnsubscriber(EdgeClient)
        /// The speaker's audio stopped (the origin's `sessionsDropSource`): per-speaker players
        /// free its track.
        case sessionsDropSource(UInt32)
        /// The origin refused the link as it refuses a listener (its `error` frame, then the
        /// close): `event_ended` or `event_not_found` say the event is over; any other code (the
        /// event moved, the node is busy or stopping) is a link that failed.
        case refused(ErrorCode)
    }

    /// Which of an edge's clients a `message` is for.
    public enum Audience: Sendable, Hashable {
        /// Every member of the edge (clients welcomed so far).
        case all
        case one(EdgeClient)
        /// Every member but this client.
        case allExcept(EdgeClient)
    }

    /// The event's state when a link comes up: the messages a joiner of the origin receives,
    /// whole, as the origin's engine builds them.
    public struct Snapshot: Sendable, Hashable {
        /// `stream_state`.
        public var streamState: JSONValue
        /// `chat_history` (oldest first).
        public var chatHistory: JSONValue
        /// `participant_list`.
        public var participantList: JSONValue
        /// `participant_count`.
        public var participantCount: JSONValue

        public init(streamState: JSONValue, chatHistory: JSONValue, participantList: JSONValue, participantCount: JSONValue) {
            self.streamState = streamState
            self.chatHistory = chatHistory
            self.participantList = participantList
            self.participantCount = participantCount
        }
    }

    /// One WebSocket message of the link.
    public enum Frame: Sendable, Hashable {
        /// A JSON object.
        case text(String)
        /// A media frame (PROTOCOL.md 4); written with `MediaFrame.encoded()`, read with
        /// `MediaFrame(parsing:)`.
        case binary(MediaFrame)
    }

    /// A link frame that is not a message of this vocabulary (a bug or a version skew: the
    /// transport logs it and drops the link).
    public struct DecodingError: Error, Sendable, Hashable, CustomStringConvertible {
        public var reason: String
        public init(_ reason: String) { self.reason = reason }
        public var description: String { "bad link message: \(reason)" }
    }
}
