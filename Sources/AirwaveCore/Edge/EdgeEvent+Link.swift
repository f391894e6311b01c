import AirwaveProtocol

/// The link's life: up with a snapshot, down, reopened; what members get and what goes up when
/// it comes back.
extension EdgeEvent {
    mutating func linkDown(now: Timestamp) {
        if case .waiting = link { return }  // no attempt was out
        let delays = configuration.relinkDelays
        let delay = delays.isEmpty ? .zero : delays[min(relinkAttempts, delays.count - 1)]
        relinkAttempts += 1
        // Members stay connected and keep what they have; nothing is sent to them.
        if delay <= .zero {
            link = .connecting
            emit(.openLink)
        } else {
            link = .waiting(until: now + delay)
        }
    }

    /// The link is up: the event's state now. A re-link brings the members up to date, then the
    /// origin learns the edge's clients and gets the commands that waited.
    mutating func linkUp(_ snapshot: EdgeLinkMessage.Snapshot, now: Timestamp) {
        let relinking = clients.values.contains { $0.admitted }
        let previousState = streamState
        let newChat = snapshot.chatHistory["messages"]?.arrayItems ?? []
        let missed = relinking ? Self.missedChat(newChat, after: chat.last) : []
        streamState = snapshot.streamState
        chat = Array(newChat.suffix(configuration.chatHistoryLimit))
        learnSources(snapshot.participantList)
        link = .up
        relinkAttempts = 0
        orphanedSince = nil
        // The origin replays its config frame and GOP to the link right after: every member's
        // next screen frame is that keyframe.
        if isScreenMode {
            screenPipeline.reset(viewers: viewers)
        } else {
            screenPipeline.clear()
        }
        if relinking {
            if previousState != streamState {
                send(LiveEvent.Message(.streamState, snapshot.streamState), to: .all)
            }
            for entry in missed {
                send(LiveEvent.Message(.messageBroadcast, entry.adding(type: LiveEvent.MessageType.messageBroadcast.rawValue)), to: .all)
            }
            send(LiveEvent.Message(.participantList, snapshot.participantList), to: .all)
            send(LiveEvent.Message(.participantCount, snapshot.participantCount), to: .all)
        }
        for number in leftWhileDown {
            emit(.uplink(.leave(number)))
        }
        leftWhileDown.removeAll()
        for (connection, _) in clients.sorted(by: { $0.value.number < $1.value.number }) {
            announce(connection, now: now)
        }
        for entry in buffer.drain() {
            if let number = clients[entry.client]?.number { emit(.uplink(.command(number, entry.command))) }
        }
    }

    /// The entries of `history` a member that has seen up to `last` has not seen: those after
    /// `last` when the history still holds it, else those sent later than it (more than a
    /// history's worth was missed, or the history was reloaded after a failover); all of them
    /// when nothing was seen.
    static func missedChat(_ history: [JSONValue], after last: JSONValue?) -> [JSONValue] {
        guard let last else { return history }
        func key(_ entry: JSONValue) -> [JSONValue?] { [entry["user_id"], entry["message"], entry["sent_at"]] }
        if let index = history.lastIndex(where: { key($0) == key(last) }) {
            return Array(history[(index + 1)...])
        }
        // ISO 8601 UTC with milliseconds sorts as text.
        guard let lastSent = last["sent_at"]?.stringValue else { return history }
        return history.filter { ($0["sent_at"]?.stringValue ?? "") > lastSent }
    }
}

extension JSONValue {
    /// The elements, if this is an array.
    var arrayItems: [JSONValue]? {
        if case .array(let items) = self { return items }
        return nil
    }

    /// This object with `type` set (a chat entry made a `message_broadcast`).
    func adding(type: String) -> JSONValue {
        guard case .object(var members) = self else { return self }
        members["type"] = .string(type)
        return .object(members)
    }

    /// This object without the given keys.
    func removing(_ keys: Set<String>) -> JSONValue {
        guard case .object(let members) = self else { return self }
        return .object(members.filter { !keys.contains($0.key) })
    }
}
