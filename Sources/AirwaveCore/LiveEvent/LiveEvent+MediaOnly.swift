import AirwaveProtocol

/// Media-only connections: WHEP listeners and WHIP publishers. They carry media but no control
/// messages (chat, invites and mode changes stay on the user's WebSocket), so the engine ties
/// them to a user: a listener hears the mix without its user's voice, a publisher speaks with
/// its user's source id behind the same gates, and loses its connection with the user's role.
extension LiveEvent {
    /// A WHEP listener: a listener like any other for counts, lists and the screen, subscribed
    /// to the mix from the start, or (`speakers`) reached by every speaker's own audio but its
    /// user's.
    mutating func joinMediaOnly(_ connection: ConnectionID, user: UserIdentity, video: Bool, speakers: Bool, now: Timestamp) {
        guard participants[connection] == nil, publishers[connection] == nil else { return }
        joinCounter += 1
        participants[connection] = Participant(connection: connection, user: user, role: .listener,
                                               joinSequence: joinCounter, mediaOnly: true)
        mediaListeners[user.userID, default: []].insert(connection)
        if video { videoSessions.insert(connection) }
        emit(.persist(.participantJoined(eventID: eventID, connection: connection, user: user, role: .listener, sourceID: sourceIDs[user.userID], at: now)))
        if isShadowed(user) {
            shadowedMediaListeners += 1
        } else if participantCount <= configuration.individualNoticeLimit {
            send(.participantJoined, LiveServerMessage.participantJoined(userID: user.userID, username: user.username), to: .all)
        }
        if speakers {
            speakerSessions.insert(connection)
            speakerSessionRoutes.removeAll()
        } else {
            mixSubscribers.insert(connection)
            refreshMixAssignment(connection)
        }
        if mode == .screen { catchUpOnScreen(connection, now: now) }
        membershipChanged()
    }

    /// True when a media-only listener of `user` is the same person as a connection already in
    /// the event (the host, or the user's WebSocket): it is then not listed or counted again.
    func isShadowed(_ user: UserIdentity) -> Bool {
        user.verified && (user.userID == host.userID || connectionByUser[user.userID] != nil)
    }

    /// Verified media-only listeners of `userID` (those its WebSocket connection shadows).
    func verifiedMediaListeners(of userID: String) -> Int {
        (mediaListeners[userID] ?? []).count { participants[$0]?.user.verified == true }
    }

    /// A WHIP publisher: accepted for the host and for current co-hosts, refused otherwise.
    mutating func connectPublisher(_ connection: ConnectionID, user: UserIdentity) {
        guard user.verified, speakingRole(of: user.userID) != nil else {
            return refuse(connection, ProtocolError(.notAllowed, "Only the host and co-hosts may publish audio."))
        }
        publishers[connection] = user.userID
    }

    /// True while `connection` is an accepted publisher (the WHIP endpoint answers 201 then).
    public func isPublisher(_ connection: ConnectionID) -> Bool {
        publishers[connection] != nil
    }

    /// A publisher's audio, behind the same gates as WebSocket audio of its user. Nobody hears
    /// themselves: the user's own WebSocket and media-only listeners are left out too.
    mutating func publishedMedia(_ frame: MediaFrame, from connection: ConnectionID, userID: String, now: Timestamp) {
        guard frame.header.kind == .opus, let speaker = speakingRole(of: userID) else {
            return emit(.mediaDropped(.gate))
        }
        guard !speaker.muted else { return emit(.mediaDropped(.muted)) }
        var frame = frame
        frame.header.sourceID = speaker.sourceID
        var skipping = separateAudioSkipping
        if let own = userID == host.userID ? hostConnection : connectionByUser[userID] { skipping.insert(own) }
        forwardAudio(frame, sockets: .allExcept(connection, skipping: skipping), now: now)
    }

    /// The per-speaker sessions that `source`'s audio goes to: every one but those of the
    /// user speaking as `source` (nobody hears themselves). Kept per source until the sessions
    /// change; a source id belongs to one user for the whole event, so it never goes stale.
    mutating func speakerSessionAudience(for source: UInt32) -> Audience {
        guard !speakerSessions.isEmpty else { return .none }
        let recipients: [ConnectionID]
        if let cached = speakerSessionRoutes[source] {
            recipients = cached
        } else {
            let speaker = userID(forSource: source)
            recipients = speakerSessions.filter { participants[$0]?.user.userID != speaker }.sorted()
            speakerSessionRoutes[source] = recipients
        }
        return recipients.isEmpty ? .none : .only(recipients)
    }

    /// The source a connection's mix leaves out: its own voice, whichever connection carries it.
    func ownSource(of connection: ConnectionID) -> UInt32? {
        if let participant = participants[connection], participant.mediaOnly {
            return speakingRole(of: participant.user.userID)?.sourceID
        }
        return speakingRole(on: connection)?.sourceID
    }

    /// The user's speaking role changed: its media-only listeners' mix follows, and when the
    /// role is gone its publishers are closed (their audio is already refused by the gate).
    mutating func speakingRoleChanged(_ userID: String) {
        for connection in (mediaListeners[userID] ?? []).sorted() {
            refreshMixAssignment(connection)
        }
        guard userID != host.userID, speakers[userID] == nil else { return }
        for (connection, owner) in publishers.sorted(by: { $0.key < $1.key }) where owner == userID {
            publishers[connection] = nil
            emit(.close(connection, .normal))
        }
    }

    /// Forgets a publisher that hung up; true if it was one.
    mutating func disconnectPublisher(_ connection: ConnectionID) -> Bool {
        publishers.removeValue(forKey: connection) != nil
    }
}
