/// One participant session of an event: one connection, from join to leave.
///
/// A user who joined twice (two connections, or the same connection id after a restart)
/// has two sessions.
public struct StoredParticipant: Sendable, Equatable {
    /// The participant's user id.
    public var userID: String
    /// The participant's display name when they joined.
    public var username: String
    /// The participant's current (or, once left, last) role in the event.
    public var role: StoredRole
    /// Whether the participant's identity was verified when they joined.
    public var verified: Bool
    /// When the session started.
    public var joinedAt: EpochMillis
    /// When the session ended; `nil` while the participant is still connected.
    public var leftAt: EpochMillis?
    /// The user's source id in the event (PROTOCOL.md 2: it stays with the user for the whole
    /// event), once the user was a co-host; kept when the session steps down. `nil` for a user
    /// who never spoke, and for sessions stored before schema version 8.
    public var sourceID: UInt32?

    /// Creates a participant session value.
    public init(
        userID: String,
        username: String,
        role: StoredRole,
        verified: Bool,
        joinedAt: EpochMillis,
        leftAt: EpochMillis? = nil,
        sourceID: UInt32? = nil
    ) {
        self.userID = userID
        self.username = username
        self.role = role
        self.verified = verified
        self.joinedAt = joinedAt
        self.leftAt = leftAt
        self.sourceID = sourceID
    }
}

/// The screen codec fields of an event in screen mode, as the host announced them
/// (`switching_to_screen_sharing`; `stream_state.screen`). Every field is optional.
public struct StoredScreen: Sendable, Equatable {
    public var codec: String?
    public var width: Int?
    public var height: Int?
    /// Base64 decoder configuration, as the host sent it.
    public var description: String?

    /// Creates a screen value.
    public init(codec: String? = nil, width: Int? = nil, height: Int? = nil, description: String? = nil) {
        self.codec = codec
        self.width = width
        self.height = height
        self.description = description
    }
}

/// An event as persisted, live or ended, with all its participant sessions.
public struct StoredEvent: Sendable, Equatable {
    /// The event's id.
    public var eventID: String
    /// The host's user id.
    public var hostUserID: String
    /// The host's display name when the event started.
    public var hostUsername: String
    /// The event's latest mode.
    public var mode: String
    /// The screen codec fields of the latest mode change; `nil` when it carried none (audio,
    /// a screen share announced without fields, or stored before schema version 8).
    public var screen: StoredScreen?
    /// When the event started.
    public var startedAt: EpochMillis
    /// When the event ended; `nil` while it is live.
    public var endedAt: EpochMillis?
    /// Why the event ended; `nil` while it is live.
    public var endReason: String?
    /// Every participant session, in join order (a user who joined twice appears twice).
    public var participants: [StoredParticipant]

    /// Whether the event has not ended yet.
    public var isLive: Bool { endedAt == nil }

    /// Creates an event value.
    public init(
        eventID: String,
        hostUserID: String,
        hostUsername: String,
        mode: String,
        screen: StoredScreen? = nil,
        startedAt: EpochMillis,
        endedAt: EpochMillis? = nil,
        endReason: String? = nil,
        participants: [StoredParticipant] = []
    ) {
        self.eventID = eventID
        self.hostUserID = hostUserID
        self.hostUsername = hostUsername
        self.mode = mode
        self.screen = screen
        self.startedAt = startedAt
        self.endedAt = endedAt
        self.endReason = endReason
        self.participants = participants
    }
}

/// A page of an event's participant sessions (`GET /api/streams/{id}?limit=&after=`).
public struct ParticipantPage: Sendable, Equatable {
    /// The sessions of this page, in join order.
    public var participants: [StoredParticipant]
    /// The cursor that continues after this page (`after`); nil when this page is the last.
    public var next: Int64?
    /// How many sessions the event has in all.
    public var total: Int

    /// Creates a page value.
    public init(participants: [StoredParticipant], next: Int64?, total: Int) {
        self.participants = participants
        self.next = next
        self.total = total
    }
}
