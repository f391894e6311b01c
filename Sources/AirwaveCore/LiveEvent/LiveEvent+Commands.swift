import AirwaveProtocol

extension LiveEvent {
    /// The sender as the rules see it.
    enum Sender {
        case host(ConnectionID)
        case participant(Participant)
    }

    func sender(_ connection: ConnectionID) -> Sender? {
        if connection == hostConnection { return .host(connection) }
        return participants[connection].map(Sender.participant)
    }

    mutating func handle(_ command: LiveCommand, from connection: ConnectionID, now: Timestamp) {
        guard let sender = sender(connection) else { return }  // a connection that already left
        switch (command, sender) {
        case (.switchToAudio, .host):
            switchMode(to: .audio, screen: nil, now: now)
        case (.switchToScreen(let config), .host):
            switchMode(to: .screen, screen: config, now: now)
        case (.endStream, .host):
            end(reason: "host_ended", notice: streamEnded("The host ended the stream"), now: now)
        case (.inviteCohost(let userID), .host(let hostConnection)):
            invite(userID, hostConnection: hostConnection, now: now)
        case (.removeCohost(let userID, let username), .host(let hostConnection)):
            removeCohost(userID: userID, username: username, hostConnection: hostConnection, now: now)
        case (.acceptCohost, .participant(let participant)):
            accept(participant, now: now)
        case (.rejectCohost, .participant(let participant)):
            reject(participant, now: now)
        case (.leaveCohost, .participant(let participant)) where participant.role == .cohost:
            demote(participant.user.userID, removed: false, message: "\(participant.user.username) stepped down", now: now)
        case (.chat(let text), _):
            broadcastChat(text, from: connection, now: now)
        case (.leave, .participant(let participant)):
            leave(participant, now: now)
        case (.mute(let target), _):
            setMuted(true, target: target, sender: sender, now: now)
        case (.unmute(let target), _):
            setMuted(false, target: target, sender: sender, now: now)
        case (.keyframeRequest, .participant(let participant)):
            if let hostConnection, keyframeGate.allow(now: now) {
                send(.keyframeRequest, LiveServerMessage.keyframeRequest(fromUserID: participant.user.userID), to: .one(hostConnection))
            }
        case (.recordingStart, .host(let hostConnection)):
            startRecording(host: hostConnection, now: now)
        case (.recordingStop, .host(let hostConnection)):
            stopRecording(host: hostConnection, now: now)
        case (.keyframeRequest, .host):
            break  // the host is the one who makes keyframes
        case (.acceptCohost, .host), (.rejectCohost, .host):
            sendError(ProtocolError(.noPendingInvite, "There is no open invite for you."), to: connection)
        default:
            sendError(ProtocolError(.notAllowed, Self.refusal(for: command)), to: connection)
        }
    }

    static func refusal(for command: LiveCommand) -> String {
        switch command {
        case .switchToAudio, .switchToScreen: "Only the host can switch the stream mode."
        case .endStream: "Only the host can end the stream."
        case .inviteCohost: "Only the host can invite co-hosts."
        case .removeCohost: "Only the host can remove co-hosts."
        case .leaveCohost: "Only a co-host can step down."
        case .leave: "The host ends the event with stream_ended."
        case .recordingStart, .recordingStop: "Only the host can record the event."
        default: "You may not do this."
        }
    }

    func user(of sender: Sender) -> UserIdentity {
        switch sender {
        case .host: host
        case .participant(let participant): participant.user
        }
    }

    mutating func switchMode(to newMode: StreamMode, screen config: ScreenConfig?, now: Timestamp) {
        mode = newMode
        screen = config
        if newMode == .screen {
            // Every viewer's first screen frame must be a keyframe of the new share.
            screenPipeline.reset(viewers: participants.keys)
        } else {
            screenPipeline.clear()
        }
        emit(.persist(.modeChanged(eventID: eventID, mode: newMode, screen: config, at: now)))
        send(.streamModeChanged, LiveServerMessage.streamModeChanged(mode: newMode.rawValue, screen: config), to: .all)
        send(newMode == .screen ? .screenSharingStarted : .audioStreamingStarted, LiveServerMessage.legacyModeNotice(mode: newMode.rawValue, screen: config), to: .all)
    }

    mutating func invite(_ userID: String, hostConnection: ConnectionID, now: Timestamp) {
        func cannot(_ reason: String, _ message: String) -> ProtocolError {
            ProtocolError(.cannotInvite, message, details: ["reason": .string(reason), "user_id": .string(userID)])
        }
        if userID == host.userID {
            return sendError(cannot("already_cohost", "The host already speaks."), to: hostConnection)
        }
        guard let connection = connectionByUser[userID], let invitee = participants[connection] else {
            return sendError(cannot("not_present", "\(userID) is not in this event."), to: hostConnection)
        }
        guard invitee.user.verified else {
            return sendError(cannot("not_verified", "\(userID) joined without a token and cannot become a co-host."), to: hostConnection)
        }
        guard invitee.role == .listener else {
            return sendError(cannot("already_cohost", "\(userID) is already a co-host."), to: hostConnection)
        }
        invites[userID] = now + configuration.inviteLifetime
        send(.cohostInvite, LiveServerMessage.cohostInvite(fromUser: host.username, hostUserID: host.userID), to: .one(connection))
    }

    mutating func accept(_ participant: Participant, now: Timestamp) {
        let userID = participant.user.userID
        guard let expiry = invites[userID], expiry > now, participant.user.verified, participant.role == .listener else {
            return sendError(ProtocolError(.noPendingInvite, "There is no open invite for you."), to: participant.connection)
        }
        invites[userID] = nil
        let sourceID = sourceIDs[userID] ?? {
            defer { nextSourceID += 1 }
            return nextSourceID
        }()
        sourceIDs[userID] = sourceID
        speakers[userID] = SpeakerState(sourceID: sourceID, username: participant.user.username)
        participants[participant.connection]?.role = .cohost
        emit(.persist(.roleChanged(eventID: eventID, connection: participant.connection, role: .cohost, sourceID: sourceID, at: now)))
        send(.cohostJoined, LiveServerMessage.cohostJoined(userID: userID, username: participant.user.username, sourceID: sourceID), to: .all)
        refreshMixAssignment(participant.connection)
        speakingRoleChanged(userID)
        listThrottle.markChanged()
    }

    mutating func reject(_ participant: Participant, now: Timestamp) {
        guard let expiry = invites.removeValue(forKey: participant.user.userID), expiry > now else {
            return sendError(ProtocolError(.noPendingInvite, "There is no open invite for you."), to: participant.connection)
        }
        if let hostConnection {
            send(.cohostRejected, LiveServerMessage.cohostRejected(userID: participant.user.userID, username: participant.user.username), to: .one(hostConnection))
        }
    }

    mutating func removeCohost(userID: String?, username: String?, hostConnection: ConnectionID, now: Timestamp) {
        let target = speakers.keys.sorted().first { id in
            if let userID { return id == userID }
            return displayName(of: id) == username
        }
        guard let target else {
            let named = userID ?? username ?? ""
            return sendError(ProtocolError(.notCohost, "\(named) is not a co-host.", details: ["user_id": .string(userID)]), to: hostConnection)
        }
        demote(target, removed: true, message: "\(displayName(of: target) ?? target) was removed as co-host", now: now)
    }

    func displayName(of userID: String) -> String? {
        connectionByUser[userID].flatMap { participants[$0]?.user.username } ?? speakers[userID]?.username
    }

    /// Takes the speaking role away (the host removed the co-host, or it stepped down).
    mutating func demote(_ userID: String, removed: Bool, message: String, now: Timestamp) {
        endSpeakingRole(userID, removed ? .removed : .steppedDown, message: message, now: now)
    }

    /// `stream_ended` with this message.
    func streamEnded(_ message: String) -> Message {
        Message(.streamEnded, LiveServerMessage.streamEnded(eventID: eventID, message: message))
    }

    mutating func broadcastChat(_ text: String, from connection: ConnectionID, now: Timestamp) {
        guard let sender = sender(connection) else { return }
        let user = user(of: sender)
        let entry = LiveServerMessage.ChatEntry(userID: user.userID, username: user.username, message: text, sentAt: now, verified: user.verified)
        chat.append(entry)
        if chat.count > configuration.chatHistoryLimit {
            chat.removeFirst(chat.count - configuration.chatHistoryLimit)
        }
        // Nobody sees a message that a crash could still lose.
        emit(.persist(.chat(eventID: eventID, entry)))
        emit(.awaitPersistence)
        send(.messageBroadcast, LiveServerMessage.messageBroadcast(entry), to: .all)
    }

    mutating func setMuted(_ muted: Bool, target: String?, sender: Sender, now: Timestamp) {
        let senderID = user(of: sender).userID
        let targetID = target ?? senderID
        let connection: ConnectionID
        switch sender {
        case .host(let c): connection = c
        case .participant(let p):
            connection = p.connection
            guard p.role == .cohost else {
                return sendError(ProtocolError(.notAllowed, "Only the host and co-hosts can mute."), to: connection)
            }
            guard targetID == senderID else {
                return sendError(ProtocolError(.notAllowed, "Only the host can mute others."), to: connection)
            }
        }
        if targetID == host.userID {
            hostMuted = muted
            if muted { silenceSource(Self.hostSourceID) }
        } else {
            guard let speaker = speakers[targetID] else {
                return sendError(ProtocolError(.notCohost, "\(targetID) is not a co-host.", details: ["user_id": .string(targetID)]), to: connection)
            }
            speakers[targetID]?.muted = muted
            if muted { silenceSource(speaker.sourceID) }
        }
        send(muted ? .muted : .unmuted, LiveServerMessage.muted(muted, userID: targetID), to: .all)
        listThrottle.markChanged()
    }
}
