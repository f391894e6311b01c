import AirwaveProtocol

extension LiveEvent {
    mutating func hostConnected(_ connection: ConnectionID, joinURL: String, now: Timestamp) {
        let resumed = hostStartedOnce
        hostStartedOnce = true
        if let old = hostConnection, old != connection {
            refuse(old, ProtocolError(.replaced, "A newer connection of the host took over this event."))
            dropMixSubscription(old)
        }
        hostConnection = connection
        hostGraceEndsAt = nil
        send(.streamLink, LiveServerMessage.streamLink(eventID: eventID, joinURL: joinURL, mode: mode.rawValue, resumed: resumed), to: .one(connection))
        if resumed {
            // A resuming host needs the state it missed; a fresh one has nothing to catch up on.
            send(.streamState, streamState, to: .one(connection))
            send(.chatHistory, LiveServerMessage.chatHistory(chat), to: .one(connection))
            send(.participantList, participantList, to: .one(connection))
            send(.participantCount, LiveServerMessage.participantCount(participantCount), to: .one(connection))
            sendAnnouncedSpeakers(to: connection)
            if mode == .screen, !screenPipeline.awaitingKeyframe.isEmpty {
                // Viewers who joined while the host was away still wait for a keyframe.
                requestKeyframe(now: now)
            }
        }
    }

    mutating func join(_ connection: ConnectionID, user: UserIdentity, now: Timestamp) {
        if user.userID == host.userID {
            refuse(connection, ProtocolError(.duplicateUser, "The host of this event cannot also join it as a listener.",
                                             details: ["user_id": .string(user.userID)]))
            return
        }
        // A guest may not take the id of a user who proved it with a token in this event, even
        // after that user left: chat and lists would show the guest as that user.
        if !user.verified, connectionByUser[user.userID] == nil, verifiedUserIDs.contains(user.userID) {
            refuse(connection, ProtocolError(.duplicateUser, "\(user.userID) joined this event with a token; join with a token to use this id.",
                                             details: ["user_id": .string(user.userID)]))
            return
        }
        if user.verified { verifiedUserIDs.insert(user.userID) }
        if let existing = connectionByUser[user.userID] {
            guard user.verified else {
                refuse(connection, ProtocolError(.duplicateUser, "\(user.userID) is already in this event.",
                                                 details: ["user_id": .string(user.userID)]))
                return
            }
            // A verified connection replaces the older one of the same user; the role stays with the user.
            refuse(existing, ProtocolError(.replaced, "A newer connection of the same user replaced this one."))
            removeParticipant(existing, now: now, announce: false)
        }
        var role = Role.listener
        if user.verified, var speaker = speakers[user.userID] {
            role = .cohost
            speaker.lapsesAt = nil
            speakers[user.userID] = speaker
        }
        joinCounter += 1
        participants[connection] = Participant(connection: connection, user: user, role: role, joinSequence: joinCounter)
        connectionByUser[user.userID] = connection
        shadowedMediaListeners += verifiedMediaListeners(of: user.userID)
        emit(.persist(.participantJoined(eventID: eventID, connection: connection, user: user, role: role, sourceID: sourceIDs[user.userID], at: now)))
        send(.streamState, streamState, to: .one(connection))
        send(.chatHistory, LiveServerMessage.chatHistory(chat), to: .one(connection))
        if participantCount <= configuration.individualNoticeLimit {
            send(.participantJoined, LiveServerMessage.participantJoined(userID: user.userID, username: user.username), to: .all)
        }
        if role == .cohost, let sourceID = speakers[user.userID]?.sourceID {
            send(.cohostJoined, LiveServerMessage.cohostJoined(userID: user.userID, username: user.username, sourceID: sourceID), to: .all)
            speakingRoleChanged(user.userID)
        }
        sendAnnouncedSpeakers(to: connection)
        if mode == .screen { catchUpOnScreen(connection, now: now) }
        membershipChanged()
    }

    mutating func disconnected(_ connection: ConnectionID, now: Timestamp) {
        if disconnectPublisher(connection) { return }
        if connection == hostConnection {
            dropMixSubscription(connection)
            silenceSource(Self.hostSourceID)
            hostConnection = nil
            hostGraceEndsAt = now + configuration.hostGrace
            return
        }
        guard let participant = participants[connection] else {
            // An edge's HLS segmenter whose edge went away (it is no participant).
            if mixSubscribers.contains(connection) { setSegmenterSubscription(connection, subscribed: false) }
            return
        }
        if participant.role == .cohost {
            // The role waits for a reconnect; listeners learn at once that the speaker is gone.
            endSpeakingRole(participant.user.userID, .disconnected, message: "\(participant.user.username) disconnected", now: now)
        }
        removeParticipant(connection, now: now, announce: true)
    }

    /// A listener or co-host leaves on purpose: roles and invites go with it.
    mutating func leave(_ participant: Participant, now: Timestamp) {
        let userID = participant.user.userID
        invites[userID] = nil
        if participant.role == .cohost {
            endSpeakingRole(userID, .left, message: "\(participant.user.username) left", now: now)
        }
        emit(.close(participant.connection, .normal))
        removeParticipant(participant.connection, now: now, announce: true)
    }

    mutating func removeParticipant(_ connection: ConnectionID, now: Timestamp, announce: Bool) {
        guard let participant = participants.removeValue(forKey: connection) else { return }
        screenPipeline.leave(connection)
        videoSessions.remove(connection)
        if speakerSessions.remove(connection) != nil { speakerSessionRoutes.removeAll() }
        mediaErrorGates[connection] = nil
        var announce = announce
        if participant.mediaOnly {
            if isShadowed(participant.user) {
                shadowedMediaListeners -= 1
                announce = false
            }
            mediaListeners[participant.user.userID]?.remove(connection)
            if mediaListeners[participant.user.userID]?.isEmpty == true { mediaListeners[participant.user.userID] = nil }
        }
        dropMixSubscription(connection)
        if connectionByUser[participant.user.userID] == connection {
            connectionByUser[participant.user.userID] = nil
            // The user's own media-only listeners now stand for it.
            shadowedMediaListeners -= verifiedMediaListeners(of: participant.user.userID)
        }
        emit(.persist(.participantLeft(eventID: eventID, connection: connection, at: now)))
        if announce, participantCount < configuration.individualNoticeLimit {
            send(.participantLeft, LiveServerMessage.participantLeft(userID: participant.user.userID, username: participant.user.username), to: .all)
        }
        membershipChanged()
    }

    /// Ends the event for everyone: the notice, the record, then every connection closed
    /// (1000; 1001 when the server goes away), each participant's leaving recorded.
    mutating func end(reason: String, notice: Message, closeCode: CloseCode = .normal, now: Timestamp) {
        // Ending the event ends its recording; the file is finished before anyone is closed.
        stopRecording(host: nil, now: now)
        mixSubscribers.removeAll()
        mixAssignments.removeAll()
        emit(.send(notice, .control(.all)))
        emit(.persist(.eventEnded(eventID: eventID, reason: reason, at: now)))
        for connection in connections {
            emit(.close(connection, closeCode))
        }
        for connection in participants.keys.sorted() {
            emit(.persist(.participantLeft(eventID: eventID, connection: connection, at: now)))
        }
        participants.removeAll()
        connectionByUser.removeAll()
        mediaListeners.removeAll()
        videoSessions.removeAll()
        speakerSessions.removeAll()
        speakerSessionRoutes.removeAll()
        shadowedMediaListeners = 0
        publishers.removeAll()
        hostConnection = nil
        hostGraceEndsAt = nil
        invites.removeAll()
        isEnded = true
        emit(.ended)
    }

    /// This node goes away, the event does not (PROTOCOL.md 8): a recording here is finished,
    /// this node's connections are told and closed and leave the record, and nothing else is
    /// recorded, so the event stays live for its host to resume on another node.
    mutating func handOver(keeping: Set<ConnectionID>, now: Timestamp) {
        stopRecording(host: nil, now: now)
        let local = connections.filter { !keeping.contains($0) }.sorted()
        emit(.send(Message(.serverShutdown, LiveServerMessage.serverShutdown), .control(.only(local))))
        for connection in local {
            emit(.close(connection, .goingAway))
        }
        for connection in participants.keys.sorted() where !keeping.contains(connection) {
            emit(.persist(.participantLeft(eventID: eventID, connection: connection, at: now)))
        }
        isEnded = true
        emit(.handedOver)
    }

    mutating func expireTimers(now: Timestamp) {
        if let graceEnd = hostGraceEndsAt, graceEnd <= now {
            end(reason: "host_timeout", notice: streamEnded("The host disconnected and did not come back"), now: now)
            return
        }
        if invites.values.contains(where: { $0 <= now }) {
            invites = invites.filter { $0.value > now }
        }
        for (userID, speaker) in speakers {
            if let lapse = speaker.lapsesAt, lapse <= now {
                speakers[userID] = nil
                speakingRoleChanged(userID)
            }
        }
    }
}
