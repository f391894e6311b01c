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

/// One change to a room's stored state. The engine emits one per message instead of the whole
/// state, so a message costs the store O(1) work however long the queue is.
public enum RoomChange: Sendable, Hashable {
    /// A song joins the queue with its first voters (none for an autoplay song).
    case songQueued(QueuedSong)
    /// One more vote, appended to the song's voters.
    case voted(songID: String, voter: String)
    /// The song now playing (nil: none); that song leaves the queue if it waits there.
    case songChanged(String?)
    /// The playback as it is now.
    case playback(Playback)
}

extension RoomSnapshot {
    /// The state after `change`, as the store rebuilds it: queue order restored, chat untouched.
    public mutating func apply(_ change: RoomChange) {
        switch change {
        case .songQueued(let song):
            queue.removeAll { $0.songID == song.songID }
            queue.append(song)
        case .voted(let songID, let voter):
            if let index = queue.firstIndex(where: { $0.songID == songID }) { queue[index].voters.append(voter) }
        case .songChanged(let songID):
            if let songID { queue.removeAll { $0.songID == songID } }
            currentSong = songID
        case .playback(let playback):
            self.playback = playback
        }
        sortQueue()
    }
}

/// Who a room connection speaks for.
public struct RoomMember: Sendable, Hashable {
    public var userID: String
    public var name: String
    public var verified: Bool
    /// Votes count once per verified user (`user:<id>`, on every node), and once per connection
    /// for guests (`connection:<instance>:<n>`).
    public var voterKey: String

    /// `instance` names the process the connection belongs to and must differ between any two
    /// processes that share a store, restarts of one node included: connection numbers are per
    /// process, so without it two nodes' guests would share a voter key.
    public init(userID: String, name: String, verified: Bool, connection: ConnectionID, instance: String) {
        self.userID = userID
        self.name = name
        self.verified = verified
        voterKey = verified ? "user:\(userID)" : "\(Self.guestVoterPrefix)\(instance):\(connection.rawValue)"
    }

    /// A guest's voter key is this, its process's instance and its connection number.
    static let guestVoterPrefix = "connection:"
    /// The voter key of a guest whose connection closed before the room was loaded again.
    static let closedGuestVoterPrefix = "closed-connection:"
}
