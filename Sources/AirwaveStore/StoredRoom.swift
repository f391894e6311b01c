/// A song waiting in a listening room's queue, as persisted.
///
/// Part of ``StoredRoomState``, which the store keeps as JSON; the JSON keys are fixed by
/// `CodingKeys` so that renaming a property never breaks rows already written.
public struct StoredSong: Sendable, Equatable, Codable {
    /// The song's id, as the clients name it.
    public var songID: String
    /// The keys of the voters, in vote order; the song's vote count is `voters.count`
    /// (an autoplayed song starts with none).
    public var voters: [String]
    /// When the song was added to the queue.
    public var timeAdded: EpochMillis

    /// Creates a queued song.
    public init(songID: String, voters: [String], timeAdded: EpochMillis) {
        self.songID = songID
        self.voters = voters
        self.timeAdded = timeAdded
    }

    enum CodingKeys: String, CodingKey {
        case songID = "song_id"
        case voters
        case timeAdded = "time_added"
    }
}

/// The playback position of a listening room, as persisted.
public struct StoredPlayback: Sendable, Equatable, Codable {
    /// How far into the song, 0–100, if the client said so.
    public var percentage: Double?
    /// Whether playback is paused.
    public var paused: Bool
    /// How far into the song, in milliseconds, if the client said so.
    public var songProgress: Int64?
    /// The song's length in milliseconds, if the client said so.
    public var songLength: Int64?
    /// The server time at which this playback was set.
    public var at: EpochMillis

    /// Creates a playback value.
    public init(
        percentage: Double? = nil,
        paused: Bool,
        songProgress: Int64? = nil,
        songLength: Int64? = nil,
        at: EpochMillis
    ) {
        self.percentage = percentage
        self.paused = paused
        self.songProgress = songProgress
        self.songLength = songLength
        self.at = at
    }

    enum CodingKeys: String, CodingKey {
        case percentage
        case paused
        case songProgress = "song_progress"
        case songLength = "song_length"
        case at
    }
}

/// The live state of a listening room, as its members last saw it.
///
/// Chat is not part of it: chat messages are stored one row each (see ``StoredRoomChat``).
public struct StoredRoomState: Sendable, Equatable, Codable {
    /// The queued songs, in the room's order.
    public var queue: [StoredSong]
    /// The id of the song playing now, if any.
    public var currentSong: String?
    /// The last playback position set, if any.
    public var playback: StoredPlayback?

    /// Creates a room state; the default is the state of a fresh (or closed) room.
    public init(queue: [StoredSong] = [], currentSong: String? = nil, playback: StoredPlayback? = nil) {
        self.queue = queue
        self.currentSong = currentSong
        self.playback = playback
    }

    /// Whether the state is that of a fresh room: nothing queued, playing or played.
    public var isEmpty: Bool { queue.isEmpty && currentSong == nil && playback == nil }

    enum CodingKeys: String, CodingKey {
        case queue
        case currentSong = "current_song"
        case playback
    }
}

/// A chat message of a listening room, as persisted.
public struct StoredRoomChat: Sendable, Equatable, Codable {
    /// Assigned by the store (an autoincrementing primary key, increasing in insertion order);
    /// `nil` before insert.
    public var id: Int64?
    /// The room the message was sent in.
    public var roomID: String
    /// The sender's user id (or connection key for an anonymous sender).
    public var userID: String
    /// The display name the sender gave with the message.
    public var name: String
    /// The message text.
    public var message: String
    /// When the message was sent.
    public var sentAt: EpochMillis

    /// Creates a room chat message; leave `id` `nil` for a message that is not stored yet.
    public init(
        id: Int64? = nil,
        roomID: String,
        userID: String,
        name: String,
        message: String,
        sentAt: EpochMillis
    ) {
        self.id = id
        self.roomID = roomID
        self.userID = userID
        self.name = name
        self.message = message
        self.sentAt = sentAt
    }
}

/// A listening room as persisted: who owns it and its live state (its chat is read separately
/// with ``RoomStore/roomChat(roomID:limit:)``).
public struct StoredRoom: Sendable, Equatable {
    /// The room's id.
    public var roomID: String
    /// The host's user id, set when the room was created through the REST API by a verified
    /// user; `nil` for a room made by a plain connection, where everyone may do everything.
    public var hostUserID: String?
    /// When the room was created (or first used, for a room without a host).
    public var createdAt: EpochMillis
    /// The room's live state; empty if none was saved yet or the room was closed since.
    public var state: StoredRoomState
    /// When `room_closed` last cleared the room, if ever. The room can be used again afterwards;
    /// this stays set until the next close moves it.
    public var closedAt: EpochMillis?

    /// Creates a room value.
    public init(
        roomID: String,
        hostUserID: String? = nil,
        createdAt: EpochMillis,
        state: StoredRoomState = StoredRoomState(),
        closedAt: EpochMillis? = nil
    ) {
        self.roomID = roomID
        self.hostUserID = hostUserID
        self.createdAt = createdAt
        self.state = state
        self.closedAt = closedAt
    }
}
