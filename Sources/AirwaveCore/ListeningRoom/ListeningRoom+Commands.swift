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
        let change: RoomChange
        switch command.action {
        case .queueSong(let songID, let timeAdded):
            if let index = state.queue.firstIndex(where: { $0.songID == songID }) {
                // Queueing a song that waits already is a vote for it.
                guard !state.queue[index].voters.contains(member.voterKey) else { return alreadyVoted(songID, connection) }
                change = .voted(songID: songID, voter: member.voterKey)
            } else {
                guard state.queue.count < queueLimit else { return queueFull(songID, connection) }
                change = .songQueued(QueuedSong(songID: songID, voters: [member.voterKey],
                                                timeAdded: timeAdded.map { Timestamp(milliseconds: $0) } ?? now))
            }
        case .queueAutoplaySong(let songID):
            if !state.queue.contains(where: { $0.songID == songID }) {
                guard state.queue.count < queueLimit else { return queueFull(songID, connection) }
                change = .songQueued(QueuedSong(songID: songID, voters: [], timeAdded: now))
            } else {
                // Already waiting: relayed to every member, the state unchanged.
                describe(songID, into: &relayed)
                return publish(RoomEvent(message: .object(relayed), effect: .none))
            }
        case .vote(let songID):
            guard let index = state.queue.firstIndex(where: { $0.songID == songID }) else {
                return emit(.send(ProtocolError(.badMessage, "\(songID) is not in the queue.",
                                                details: ["reason": "not_queued", "song_id": .string(songID)]).json, to: .one(connection)))
            }
            guard !state.queue[index].voters.contains(member.voterKey) else { return alreadyVoted(songID, connection) }
            change = .voted(songID: songID, voter: member.voterKey)
        case .changeSong(let songID):
            // No song_id: the top of the queue plays next.
            change = .songChanged(songID ?? state.queue.first?.songID)
        case .changePlayback(let playbackChange):
            var playback = state.playback ?? Playback(at: now)
            if let percentage = playbackChange.percentage { playback.percentage = percentage }
            if let paused = playbackChange.paused { playback.paused = paused }
            if let progress = playbackChange.songProgress { playback.songProgress = progress }
            if let length = playbackChange.songLength { playback.songLength = length }
            playback.at = now
            change = .playback(playback)
        case .chat(let name, let message):
            let entry = RoomChatEntry(userID: member.userID, name: name ?? member.name, message: message, sentAt: now)
            relayed["name"] = .string(entry.name)
            relayed["sent_at"] = .string(now.iso8601)
            return publish(RoomEvent(message: .object(relayed), effect: .chat(entry)))
        case .closeRoom:
            publish(RoomEvent(message: .object(relayed), effect: .closed))
            return closeMembers()
        case .userJoined:
            return publish(RoomEvent(message: .object(relayed), effect: .none))
        }
        // The relayed message describes the state after the change.
        state.apply(change)
        switch change {
        case .songQueued(let song): describe(song.songID, into: &relayed)
        case .voted(let songID, _): describe(songID, into: &relayed)
        case .songChanged(let songID): relayed["song_id"] = .string(songID)
        case .playback(let playback): for (key, value) in Self.json(playback) { relayed[key] = value }
        }
        // The state holds the change already; only the change is stored.
        emit(.publish(RoomEvent(message: .object(relayed), effect: .change(change))))
    }

    /// Applies an event of this room and hands it to the driver to store and relay.
    private mutating func publish(_ event: RoomEvent) {
        apply(event)
        emit(.publish(event))
    }

    private mutating func queueFull(_ songID: String, _ connection: ConnectionID) {
        emit(.send(ProtocolError(.queueFull, "The queue holds at most \(queueLimit) songs.",
                                 details: ["song_id": .string(songID), "limit": .int(queueLimit)]).json, to: .one(connection)))
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
