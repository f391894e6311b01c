import AirwaveProtocol

/// A song waiting in a listening room's queue.
public struct QueuedSong: Sendable, Hashable {
    public var songID: String
    /// Voter keys in vote order (see `RoomMember.voterKey`); an autoplay song starts with none.
    public var voters: [String]
    public var timeAdded: Timestamp

    public init(songID: String, voters: [String], timeAdded: Timestamp) {
        self.songID = songID
        self.voters = voters
        self.timeAdded = timeAdded
    }

    public var votes: Int { voters.count }
}

/// The host's playback as last set, with the server time it was set at.
public struct Playback: Sendable, Hashable {
    public var percentage: Double?
    public var paused: Bool
    public var songProgress: Int64?
    public var songLength: Int64?
    public var at: Timestamp

    public init(percentage: Double? = nil, paused: Bool = false, songProgress: Int64? = nil, songLength: Int64? = nil, at: Timestamp) {
        self.percentage = percentage
        self.paused = paused
        self.songProgress = songProgress
        self.songLength = songLength
        self.at = at
    }
}

/// One chat message of a listening room.
public struct RoomChatEntry: Sendable, Hashable {
    public var userID: String
    public var name: String
    public var message: String
    public var sentAt: Timestamp

    public init(userID: String, name: String, message: String, sentAt: Timestamp) {
        self.userID = userID
        self.name = name
        self.message = message
        self.sentAt = sentAt
    }
}

/// Everything a listening room keeps: what `room_state` shows and what survives a restart.
public struct RoomSnapshot: Sendable, Hashable {
    /// Sorted: most votes first, then earliest added.
    public var queue: [QueuedSong] = []
    public var currentSong: String?
    public var playback: Playback?
    /// The last messages, oldest first.
    public var chat: [RoomChatEntry] = []

    public init(queue: [QueuedSong] = [], currentSong: String? = nil, playback: Playback? = nil, chat: [RoomChatEntry] = []) {
        self.queue = queue
        self.currentSong = currentSong
        self.playback = playback
        self.chat = chat
    }

    /// Puts the queue in PROTOCOL.md's order: votes descending, then `time_added`, then id.
    mutating func sortQueue() {
        queue.sort { a, b in
            if a.votes != b.votes { return a.votes > b.votes }
            if a.timeAdded != b.timeAdded { return a.timeAdded < b.timeAdded }
            return a.songID < b.songID
        }
    }
}

/// Who a room connection speaks for.
public struct RoomMember: Sendable, Hashable {
    public var userID: String
    public var name: String
    public var verified: Bool
    /// Votes count once per verified user, and once per connection for guests.
    public var voterKey: String

    public init(userID: String, name: String, verified: Bool, connection: ConnectionID) {
        self.userID = userID
        self.name = name
        self.verified = verified
        voterKey = verified ? "user:\(userID)" : "\(Self.guestVoterPrefix)\(connection.rawValue)"
    }

    /// A guest's voter key is this and its connection number.
    static let guestVoterPrefix = "connection:"
    /// The voter key of a guest whose connection closed before the room was loaded again.
    static let closedGuestVoterPrefix = "closed-connection:"
}
