import AirwaveProtocol

extension LiveEvent {
    /// What another node kept of an event whose origin died (PROTOCOL.md 8: "roles, co-hosts,
    /// mode and chat kept"), read back from the store when its host reconnects here.
    public struct Resumption: Sendable, Hashable {
        /// When the event started (it keeps its id and start).
        public var startedAt: Timestamp
        /// The latest mode; a screen share resumes with no codec fields until the host sends
        /// them again (`switching_to_screen_sharing`).
        public var mode: StreamMode
        /// The latest chat, oldest first (at most `chatHistoryLimit` are kept).
        public var chat: [LiveServerMessage.ChatEntry]
        /// Co-hosts when the origin died, in the order they became co-hosts: each keeps the role
        /// for `hostGrace` to come back, as after a dropped socket, with its source id.
        public var cohosts: [Cohost]

        /// A co-host of the resumed event.
        public struct Cohost: Sendable, Hashable {
            public var user: UserIdentity
            public var sourceID: UInt32
            public init(user: UserIdentity, sourceID: UInt32) {
                self.user = user
                self.sourceID = sourceID
            }
        }

        public init(startedAt: Timestamp, mode: StreamMode, chat: [LiveServerMessage.ChatEntry], cohosts: [Cohost]) {
            self.startedAt = startedAt
            self.mode = mode
            self.chat = chat
            self.cohosts = cohosts
        }
    }

    /// The event resumed on this node after its origin died: the same id and start, its mode,
    /// chat and co-hosts; the host's first connection is a resume (`stream_link` with
    /// `resumed: true` and the state it missed). Nothing is recorded as a new start.
    public init(resuming eventID: String, host: UserIdentity, _ resumption: Resumption, now: Timestamp,
                configuration: LiveEventConfiguration = .init()) {
        self.init(eventID: eventID, host: host, startedAt: resumption.startedAt, now: now, configuration: configuration)
        hostStartedOnce = true
        mode = resumption.mode
        chat = Array(resumption.chat.suffix(configuration.chatHistoryLimit))
        for cohost in resumption.cohosts where cohost.user.userID != host.userID {
            let user = cohost.user
            speakers[user.userID] = SpeakerState(sourceID: cohost.sourceID, username: user.username, lapsesAt: now + configuration.hostGrace)
            sourceIDs[user.userID] = cohost.sourceID
            verifiedUserIDs.insert(user.userID)
            nextSourceID = max(nextSourceID, cohost.sourceID + 1)
        }
    }
}
