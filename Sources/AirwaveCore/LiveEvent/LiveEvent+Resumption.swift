import AirwaveProtocol

extension LiveEvent {
    /// What another node kept of an event whose origin died (PROTOCOL.md 8: "roles, co-hosts,
    /// mode and chat kept"), read back from the store when its host reconnects here.
    public struct Resumption: Sendable, Hashable {
        /// When the event started (it keeps its id and start).
        public var startedAt: Timestamp
        /// The latest mode.
        public var mode: StreamMode
        /// The screen's codec fields of the latest mode change (`stream_state.screen`), so that a
        /// screen share resumes as the viewers knew it; nil in audio mode (and for a share
        /// stored without them, which resumes with none).
        public var screen: ScreenConfig?
        /// The latest chat, oldest first (at most `chatHistoryLimit` are kept).
        public var chat: [LiveServerMessage.ChatEntry]
        /// Co-hosts when the origin died, in join order: each keeps the role for `hostGrace` to
        /// come back, as after a dropped socket, with its source id.
        public var cohosts: [Cohost]
        /// The source id of every user who was ever a co-host of the event, co-host now or not
        /// (PROTOCOL.md 2: a source id stays with its user for the whole event): one who comes
        /// back as a co-host speaks with it again, and no one else is given it.
        public var sourceIDs: [String: UInt32]

        /// A co-host of the resumed event.
        public struct Cohost: Sendable, Hashable {
            public var user: UserIdentity
            public var sourceID: UInt32
            public init(user: UserIdentity, sourceID: UInt32) {
                self.user = user
                self.sourceID = sourceID
            }
        }

        public init(startedAt: Timestamp, mode: StreamMode, screen: ScreenConfig? = nil, chat: [LiveServerMessage.ChatEntry],
                    cohosts: [Cohost], sourceIDs: [String: UInt32] = [:]) {
            self.startedAt = startedAt
            self.mode = mode
            self.screen = screen
            self.chat = chat
            self.cohosts = cohosts
            self.sourceIDs = sourceIDs
        }
    }

    /// The event resumed on this node after its origin died: the same id and start, its mode and
    /// screen, chat, co-hosts and source ids; the host's first connection is a resume
    /// (`stream_link` with `resumed: true` and the state it missed). Nothing is recorded as a
    /// new start.
    public init(resuming eventID: String, host: UserIdentity, _ resumption: Resumption, now: Timestamp,
                configuration: LiveEventConfiguration = .init()) {
        self.init(eventID: eventID, host: host, startedAt: resumption.startedAt, now: now, configuration: configuration)
        hostStartedOnce = true
        mode = resumption.mode
        // A screen share always has a config (maybe without fields), audio never: as `switchMode` leaves them.
        screen = mode == .screen ? resumption.screen ?? ScreenConfig() : nil
        chat = Array(resumption.chat.suffix(configuration.chatHistoryLimit))
        for (userID, sourceID) in resumption.sourceIDs where userID != host.userID && sourceID != Self.hostSourceID {
            sourceIDs[userID] = sourceID
            // Only a verified user is ever made a co-host; a guest may not take the id now either.
            verifiedUserIDs.insert(userID)
            nextSourceID = max(nextSourceID, sourceID + 1)
        }
        for cohost in resumption.cohosts where cohost.user.userID != host.userID {
            let user = cohost.user
            speakers[user.userID] = SpeakerState(sourceID: cohost.sourceID, username: user.username, lapsesAt: now + configuration.hostGrace)
            sourceIDs[user.userID] = cohost.sourceID
            verifiedUserIDs.insert(user.userID)
            nextSourceID = max(nextSourceID, cohost.sourceID + 1)
        }
    }
}
