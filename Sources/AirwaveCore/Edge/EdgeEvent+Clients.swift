import AirwaveProtocol

/// What the edge's own clients do: everything goes up the link (or waits for it); the edge
/// answers nothing itself but a full buffer.
extension EdgeEvent {
    mutating func join(_ connection: ConnectionID, user: UserIdentity, mediaOnly: MediaOnly? = nil, now: Timestamp) {
        guard clients[connection] == nil else { return }
        precondition(nextNumber < .max, "edge client numbers exhausted")
        let number = nextNumber
        nextNumber += 1
        clients[connection] = Client(user: user, number: number, mediaOnly: mediaOnly)
        connectionByNumber[number] = connection
        if mediaOnly?.video == true { videoSessions.insert(connection) }
        if mediaOnly?.speakers == true { speakerSessions.insert(connection) }
        idleSince = nil
        // Until the origin welcomes it, the client gets nothing but its own answer: on one node
        // a joiner sees nothing before its stream_state, and a refused one only its error.
        if link == .up { announce(connection, now: now) }
    }

    /// Tells the origin of the client's join (and that it wants the mix). A media-only client
    /// is a member from here (`admit`): the origin takes it without an answer.
    mutating func announce(_ connection: ConnectionID, now: Timestamp) {
        guard let client = clients[connection] else { return }
        clients[connection]?.announced = true
        guard let mediaOnly = client.mediaOnly else {
            emit(.uplink(.join(client.number, client.user)))
            if client.wantsMix { emit(.uplink(.mixSubscription(client.number))) }
            return
        }
        if mediaOnly.segmenter {
            emit(.uplink(.segmenterSubscription(client.number)))
        } else {
            emit(.uplink(.mediaListenerJoined(client.number, client.user, video: mediaOnly.video, speakers: mediaOnly.speakers)))
        }
        guard !client.admitted else { return }  // a re-link: it has what it needs
        clients[connection]?.admitted = true
        emit(.admit(connection))
        if mediaOnly.video, isScreenMode { catchUpOnScreen(connection, now: now) }
    }

    mutating func subscribeToMix(_ connection: ConnectionID) {
        guard let client = clients[connection], !client.wantsMix else { return }
        clients[connection]?.wantsMix = true
        if link == .up, client.announced { emit(.uplink(.mixSubscription(client.number))) }
    }

    mutating func disconnected(_ connection: ConnectionID, now: Timestamp) {
        guard let client = forget(connection) else { return }
        buffer.remove(client: connection)
        if client.announced {
            if link == .up {
                emit(.uplink(.leave(client.number)))
            } else {
                leftWhileDown.append(client.number)
            }
        }
        if clients.isEmpty { idleSince = now }
    }

    /// Removes the client from every table; returns it, or nil if it was not here.
    mutating func forget(_ connection: ConnectionID) -> Client? {
        guard let client = clients.removeValue(forKey: connection) else { return nil }
        connectionByNumber[client.number] = nil
        if memberByUser[client.user.userID] == connection { memberByUser[client.user.userID] = nil }
        mixOf[connection] = nil
        videoSessions.remove(connection)
        speakerSessions.remove(connection)
        screenPipeline.leave(connection)
        return client
    }

    mutating func clientCommand(_ command: LiveCommand, from connection: ConnectionID) {
        guard let client = clients[connection] else { return }  // already closed
        if link == .up {
            emit(.uplink(.command(client.number, command)))
        } else if !buffer.push(command, from: connection) {
            send(LiveEvent.Message(ProtocolError(.rateLimited, "The event is reconnecting; this message was dropped. Try again in a moment.",
                                                 details: ["reason": "link_down"])), to: .one(connection))
        }
    }

    mutating func clientMedia(_ frame: MediaFrame, from connection: ConnectionID) {
        guard let client = clients[connection] else { return }
        guard link == .up else { return emit(.mediaDropped(.linkDown)) }
        emit(.uplink(.media(client.number, frame)))
    }
}
