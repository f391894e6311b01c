import AirwaveProtocol

/// Speaking roles: the one predicate for "may this user speak now" and the one path that ends
/// a co-host's role (removed, stepped down, left, disconnected).
extension LiveEvent {
    /// A user's speaking role as the gates see it.
    struct SpeakingRole: Sendable, Hashable {
        var userID: String
        var sourceID: UInt32
        var muted: Bool
    }

    /// May `userID` speak now? The host always; a co-host while its role is not waiting for a
    /// reconnect. Forwarding, the mix, levels and WHIP admission all ask this.
    func speakingRole(of userID: String) -> SpeakingRole? {
        if userID == host.userID { return SpeakingRole(userID: userID, sourceID: Self.hostSourceID, muted: hostMuted) }
        guard let speaker = speakers[userID], speaker.lapsesAt == nil else { return nil }
        return SpeakingRole(userID: userID, sourceID: speaker.sourceID, muted: speaker.muted)
    }

    /// The role audio arriving on `connection` speaks with: a WHIP publisher's user, the host's
    /// socket, a co-host's socket. A media-only listener never speaks.
    func speakingRole(on connection: ConnectionID) -> SpeakingRole? {
        if let userID = publishers[connection] { return speakingRole(of: userID) }
        if connection == hostConnection { return speakingRole(of: host.userID) }
        guard let participant = participants[connection], !participant.mediaOnly else { return nil }
        return speakingRole(of: participant.user.userID)
    }

    /// True when the source belongs to a user who may speak and is not muted.
    func isAudible(_ source: UInt32) -> Bool {
        guard let userID = userID(forSource: source), let role = speakingRole(of: userID) else { return false }
        return !role.muted
    }

    /// How a co-host's speaking role ends.
    enum RoleEnd {
        /// The host removed it (`cohost_removed`).
        case removed
        /// It stepped down (`leave_cohost`) and stays as a listener.
        case steppedDown
        /// It left the event.
        case left
        /// Its socket closed: the role waits `hostGrace` for a reconnect.
        case disconnected
    }

    /// Ends `userID`'s speaking role: its audio stops at once (out of the mix and the level
    /// list, before the notice), the notice goes out before anything else it could send, its
    /// media-only connections follow.
    mutating func endSpeakingRole(_ userID: String, _ end: RoleEnd, message: String, now: Timestamp) {
        let username = displayName(of: userID) ?? userID
        let connection = connectionByUser[userID]
        if let source = speakers[userID]?.sourceID { silenceSource(source) }
        if end == .disconnected {
            speakers[userID]?.lapsesAt = now + configuration.hostGrace
        } else {
            speakers[userID] = nil
        }
        let staysListening = end == .removed || end == .steppedDown
        if staysListening, let connection {
            participants[connection]?.role = .listener
            emit(.persist(.roleChanged(eventID: eventID, connection: connection, role: .listener, sourceID: sourceIDs[userID], at: now)))
        }
        let notice = LiveServerMessage.cohostEnded(removed: end == .removed, userID: userID, username: username, message: message)
        // The disconnected socket cannot be told; everyone else is.
        let audience: Audience = end == .disconnected ? connection.map { .allExcept($0) } ?? .all : .all
        send(end == .removed ? .cohostRemoved : .cohostLeft, notice, to: audience)
        if staysListening {
            if let connection { refreshMixAssignment(connection) }
            listThrottle.markChanged()
        }
        speakingRoleChanged(userID)
    }
}
