import AirwaveProtocol

extension ListeningRoom {
    mutating func handle(_ command: RoomCommand, from connection: ConnectionID, member: RoomMember, now: Timestamp) {
        var relayed = command.original
        relayed["user_id"] = .string(member.userID)
        // The server's fields go on top of the client's (docs/protocol.md, "What is relayed"); a
        // chat_message's own `name` is set below.
        relayed["name"] = .string(member.name)
        switch command.action {
        case .changeSong, .changePlayback, .closeRoom:
            if let hostUserID, !(member.verified && member.userID == hostUserID) {
                return emit(.send(ProtocolError(.notAllowed, "Only the room's host can do this.").json, to: .one(connection)))
            }
        default: break
        }
        switch command.action {
        case .queueSong(let songID, let timeAdded):
            if let index = state.queue.firstIndex(where: { $0.songID == songID }) {
                // Queueing a song that waits already is a vote for it.
                guard !state.queue[index].voters.contains(member.voterKey) else { return alreadyVoted(songID, connection) }
                state.queue[index].voters.append(member.voterKey)
            } else {
                state.queue.append(QueuedSong(songID: songID, voters: [member.voterKey],
                                              timeAdded: timeAdded.map { Timestamp(milliseconds: $0) } ?? now))
            }
            describe(songID, into: &relayed)
        case .queueAutoplaySong(let songID):
            if !state.queue.contains(where: { $0.songID == songID }) {
                state.queue.append(QueuedSong(songID: songID, voters: [], timeAdded: now))
            }
            describe(songID, into: &relayed)
        case .vote(let songID):
            guard let index = state.queue.firstIndex(where: { $0.songID == songID }) else {
                return emit(.send(ProtocolError(.badMessage, "\(songID) is not in the queue.",
                                                details: ["reason": "not_queued", "song_id": .string(songID)]).json, to: .one(connection)))
            }
            guard !state.queue[index].voters.contains(member.voterKey) else { return alreadyVoted(songID, connection) }
            state.queue[index].voters.append(member.voterKey)
            describe(songID, into: &relayed)
        case .changeSong(let songID):
            // No song_id: the top of the queue plays next.
            let next = songID ?? state.queue.first?.songID
            state.queue.removeAll { $0.songID == next }
            state.currentSong = next
            relayed["song_id"] = .string(next)
        case .changePlayback(let change):
            var playback = state.playback ?? Playback(at: now)
            if let percentage = change.percentage { playback.percentage = percentage }
            if let paused = change.paused { playback.paused = paused }
            if let progress = change.songProgress { playback.songProgress = progress }
            if let length = change.songLength { playback.songLength = length }
            playback.at = now
            state.playback = playback
            for (key, value) in Self.json(playback) { relayed[key] = value }
        case .chat(let name, let message):
            let entry = RoomChatEntry(userID: member.userID, name: name ?? member.name, message: message, sentAt: now)
            state.chat.append(entry)
            if state.chat.count > chatHistoryLimit { state.chat.removeFirst(state.chat.count - chatHistoryLimit) }
            relayed["name"] = .string(entry.name)
            relayed["sent_at"] = .string(now.iso8601)
            emit(.persistChat(entry))
            emit(.awaitPersistence)
            return emit(.send(.object(relayed), to: .all))
        case .closeRoom:
            state = RoomSnapshot()
            emit(.persistClosed)
            emit(.awaitPersistence)
            emit(.send(.object(relayed), to: .all))
            for connection in members.keys.sorted() { emit(.close(connection, .normal)) }
            members.removeAll()
            return
        case .userJoined:
            return emit(.send(.object(relayed), to: .all))
        }
        state.sortQueue()
        // Members see a change only once it would survive a crash.
        emit(.persistState(state))
        emit(.awaitPersistence)
        emit(.send(.object(relayed), to: .all))
    }

    private mutating func alreadyVoted(_ songID: String, _ connection: ConnectionID) {
        emit(.send(ProtocolError(.alreadyVoted, "You already voted for \(songID).", details: ["song_id": .string(songID)]).json, to: .one(connection)))
    }

    /// Adds the song's resulting `votes` and `time_added` to a relayed message.
    private func describe(_ songID: String, into relayed: inout [String: JSONValue]) {
        guard let song = state.queue.first(where: { $0.songID == songID }) else { return }
        relayed["song_id"] = .string(songID)
        relayed["votes"] = .int(song.votes)
        relayed["time_added"] = .int(song.timeAdded.milliseconds)
    }

    static func json(_ playback: Playback) -> [String: JSONValue] {
        [
            "percentage": playback.percentage.map(JSONValue.number) ?? .null, "paused": .bool(playback.paused),
            "song_progress": playback.songProgress.map { .int($0) } ?? .null,
            "song_length": playback.songLength.map { .int($0) } ?? .null, "at": .int(playback.at.milliseconds),
        ]
    }

    /// `room_state` as a joiner receives it.
    public var roomStateMessage: JSONValue {
        var fields = stateFields
        fields["type"] = "room_state"
        return .object(fields)
    }

    /// `room_state` without `type` (`GET /api/rooms/{id}`).
    public var stateFields: [String: JSONValue] {
        [
            "room_id": .string(roomID),
            "host": hostUserID.map { ["user_id": .string($0)] } ?? .null,
            "queue": .array(state.queue.map { ["song_id": .string($0.songID), "votes": .int($0.votes), "time_added": .int($0.timeAdded.milliseconds)] }),
            "current_song": state.currentSong.map { ["song_id": .string($0)] } ?? .null,
            "playback": state.playback.map { .object(Self.json($0)) } ?? .null,
            "chat_history": .array(state.chat.map {
                ["user_id": .string($0.userID), "name": .string($0.name), "message": .string($0.message), "sent_at": .string($0.sentAt.iso8601)]
            }),
        ]
    }
}
