import AirwaveProtocol

/// One change every member of a listening room sees, on whichever node they are connected to:
/// the message relayed to them and what it does to the room's state.
///
/// The engine publishes one for each accepted command (``ListeningRoom/Output/publish(_:)``); the
/// driver stores it in the room's log, which gives it its place in the room's one order, and only
/// then relays the message. A node that reads an event from the log feeds it back with
/// ``ListeningRoom/Input/replay(_:)``.
public struct RoomEvent: Sendable, Hashable {
    /// What the event does to the room's state.
    public enum Effect: Sendable, Hashable {
        /// Nothing (`user_joined`, an autoplay song that waits already): only relayed.
        case none
        /// One change of the queue, the current song or the playback.
        case change(RoomChange)
        /// One more chat message.
        case chat(RoomChatEntry)
        /// `room_closed`: state and chat cleared, every member closed with 1000.
        case closed
    }

    /// The message every member receives, with the server's fields.
    public var message: JSONValue
    public var effect: Effect

    public init(message: JSONValue, effect: Effect) {
        self.message = message
        self.effect = effect
    }
}

extension RoomEvent {
    /// The event as the room log stores it (docs/architecture.md, "Listening rooms across
    /// nodes"): `{"message": {…}}` plus one of `"change": {"song_queued": {"song_id", "voters",
    /// "time_added"}} | {"voted": {"song_id", "voter"}} | {"song_changed": id | null} |
    /// {"playback": {"percentage", "paused", "song_progress", "song_length", "at"}}`,
    /// `"chat": {"user_id", "name", "message", "sent_at"}` or `"closed": true`; times in ms.
    public var json: JSONValue {
        var fields: [String: JSONValue] = ["message": message]
        switch effect {
        case .none: break
        case .change(let change): fields["change"] = Self.json(change)
        case .chat(let entry):
            fields["chat"] = ["user_id": .string(entry.userID), "name": .string(entry.name), "message": .string(entry.message),
                              "sent_at": .int(entry.sentAt.milliseconds)]
        case .closed: fields["closed"] = true
        }
        return .object(fields)
    }

    /// Reads an event written by ``json``; nil for anything else.
    public init?(json: JSONValue) {
        guard let message = json["message"], case .object = message else { return nil }
        if let change = json["change"] {
            guard let change = Self.change(change) else { return nil }
            self.init(message: message, effect: .change(change))
        } else if let chat = json["chat"] {
            guard let userID = chat["user_id"]?.stringValue, let name = chat["name"]?.stringValue,
                let text = chat["message"]?.stringValue, let sentAt = chat["sent_at"]?.intValue
            else { return nil }
            self.init(message: message, effect: .chat(RoomChatEntry(userID: userID, name: name, message: text,
                                                                   sentAt: Timestamp(milliseconds: Int64(sentAt)))))
        } else if json["closed"] == true {
            self.init(message: message, effect: .closed)
        } else {
            self.init(message: message, effect: .none)
        }
    }

    static func json(_ change: RoomChange) -> JSONValue {
        switch change {
        case .songQueued(let song):
            ["song_queued": ["song_id": .string(song.songID), "voters": .array(song.voters.map(JSONValue.string)),
                             "time_added": .int(song.timeAdded.milliseconds)]]
        case .voted(let songID, let voter): ["voted": ["song_id": .string(songID), "voter": .string(voter)]]
        case .songChanged(let songID): ["song_changed": .string(songID)]
        case .playback(let playback): ["playback": .object(ListeningRoom.json(playback))]
        }
    }

    static func change(_ json: JSONValue) -> RoomChange? {
        if let song = json["song_queued"] {
            guard let songID = song["song_id"]?.stringValue, let added = song["time_added"]?.intValue,
                let voters = song["voters"]?.elements?.compactMap(\.stringValue)
            else { return nil }
            return .songQueued(QueuedSong(songID: songID, voters: voters, timeAdded: Timestamp(milliseconds: Int64(added))))
        }
        if let vote = json["voted"] {
            guard let songID = vote["song_id"]?.stringValue, let voter = vote["voter"]?.stringValue else { return nil }
            return .voted(songID: songID, voter: voter)
        }
        if let songID = json["song_changed"] {
            switch songID {
            case .null: return .songChanged(nil)
            case .string(let id): return .songChanged(id)
            default: return nil
            }
        }
        if let playback = json["playback"] {
            guard let at = playback["at"]?.intValue, let paused = playback["paused"]?.flag else { return nil }
            return .playback(Playback(percentage: playback["percentage"]?.numberValue, paused: paused,
                                      songProgress: playback["song_progress"]?.intValue.map(Int64.init),
                                      songLength: playback["song_length"]?.intValue.map(Int64.init),
                                      at: Timestamp(milliseconds: Int64(at))))
        }
        return nil
    }
}

extension JSONValue {
    fileprivate var elements: [JSONValue]? {
        if case .array(let elements) = self { return elements }
        return nil
    }

    fileprivate var flag: Bool? {
        if case .bool(let flag) = self { return flag }
        return nil
    }
}
