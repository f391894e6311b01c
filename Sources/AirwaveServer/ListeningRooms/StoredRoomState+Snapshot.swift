import AirwaveCore
import AirwaveProtocol
import AirwaveStore

extension StoredRoomState {
    /// The store's form of a room's state (chat is stored row by row, not here).
    init(_ snapshot: RoomSnapshot) {
        self.init(
            queue: snapshot.queue.map { StoredSong(songID: $0.songID, voters: $0.voters, timeAdded: $0.timeAdded.milliseconds) },
            currentSong: snapshot.currentSong,
            playback: snapshot.playback.map {
                StoredPlayback(percentage: $0.percentage, paused: $0.paused, songProgress: $0.songProgress, songLength: $0.songLength,
                               at: $0.at.milliseconds)
            })
    }
}

extension RoomSnapshot {
    /// A room's state as the store kept it, with its recent chat.
    init(_ stored: StoredRoomState, chat: [StoredRoomChat]) {
        self.init(
            queue: stored.queue.map { QueuedSong(songID: $0.songID, voters: $0.voters, timeAdded: Timestamp(milliseconds: $0.timeAdded)) },
            currentSong: stored.currentSong,
            playback: stored.playback.map {
                Playback(percentage: $0.percentage, paused: $0.paused, songProgress: $0.songProgress, songLength: $0.songLength,
                         at: Timestamp(milliseconds: $0.at))
            },
            chat: chat.map { RoomChatEntry(userID: $0.userID, name: $0.name, message: $0.message, sentAt: Timestamp(milliseconds: $0.sentAt)) })
    }
}

extension StoredRoomChat {
    init(roomID: String, _ entry: RoomChatEntry) {
        self.init(id: nil, roomID: roomID, userID: entry.userID, name: entry.name, message: entry.message, sentAt: entry.sentAt.milliseconds)
    }
}

extension RoomRecord {
    /// The store's record of one change of a room's state.
    init(_ change: RoomChange, roomID: String, at now: Timestamp) {
        let at = now.milliseconds
        switch change {
        case .songQueued(let song):
            self = .songQueued(roomID: roomID, StoredSong(songID: song.songID, voters: song.voters, timeAdded: song.timeAdded.milliseconds), at: at)
        case .voted(let songID, let voter):
            self = .voted(roomID: roomID, songID: songID, voter: voter, at: at)
        case .songChanged(let songID):
            self = .songChanged(roomID: roomID, songID: songID, at: at)
        case .playback(let playback):
            self = .playback(roomID: roomID, StoredPlayback(percentage: playback.percentage, paused: playback.paused,
                                                            songProgress: playback.songProgress, songLength: playback.songLength,
                                                            at: playback.at.milliseconds), at: at)
        }
    }
}

extension RoomRecord {
    /// The store's record of what a published event does to the room's state; nil for an event
    /// that only relays (its log entry is all that is stored).
    init?(_ effect: RoomEvent.Effect, roomID: String, at now: Timestamp) {
        switch effect {
        case .none: return nil
        case .change(let change): self.init(change, roomID: roomID, at: now)
        case .chat(let entry): self = .chat(StoredRoomChat(roomID: roomID, entry))
        case .closed: self = .closed(roomID: roomID, at: now.milliseconds)
        }
    }
}
