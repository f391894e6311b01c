import AirwaveProtocol

/// The event mix, active speakers and recording: the engine decides who subscribes to the mix,
/// which speakers may be in it (the same gates as forwarding), when the recording runs and when
/// `active_speakers` goes out. The driver owns the mixer itself (decoding, encoding, files).
extension LiveEvent {
    /// True while the mixer must run: someone listens to the mix or a recording runs.
    var isMixing: Bool { !mixSubscribers.isEmpty || recording != nil }

    mutating func setMixSubscription(_ connection: ConnectionID, subscribed: Bool) {
        guard sender(connection) != nil else { return }
        if subscribed {
            mixSubscribers.insert(connection)
        } else {
            mixSubscribers.remove(connection)
        }
        refreshMixAssignment(connection)
    }

    /// Tells the driver what `connection` hears now, if that changed: the mix without its own
    /// source while it speaks, the full mix otherwise, nothing once it unsubscribed or left.
    /// Costs O(1) per change, so large mixed audiences cost nothing per join beyond their own.
    mutating func refreshMixAssignment(_ connection: ConnectionID) {
        let wanted: UInt32?? = mixSubscribers.contains(connection) ? .some(ownSource(of: connection)) : .none
        let told = mixAssignments[connection]
        guard wanted != told else { return }
        if let wanted {
            mixAssignments[connection] = wanted
            emit(.mixSubscriber(connection, minus: wanted))
        } else {
            mixAssignments[connection] = nil
            emit(.mixUnsubscriber(connection))
        }
    }

    /// Forgets a connection's subscription (it left or was replaced).
    mutating func dropMixSubscription(_ connection: ConnectionID) {
        mixSubscribers.remove(connection)
        refreshMixAssignment(connection)
    }

    /// Who gets a speaker's own stream: everyone but the sender and the mix subscribers.
    var separateAudioSkipping: Set<ConnectionID> { mixSubscribers }

    /// Levels measured by the mixer or the level meter; a source whose client sends levels keeps its own.
    mutating func measuredLevels(_ levels: [UInt32: UInt8], now: Timestamp) {
        for (source, level) in levels.sorted(by: { $0.key < $1.key }) where !clientLevelSources.contains(source) {
            guard isAudible(source) else { continue }
            speakerLevels.update(source: source, rfc6464: level, now: now)
        }
    }

    /// A speaker's audio stops (mute, demotion, leaving): out of the mix and the level list at
    /// once, before the notice, so no mixed frame after the notice carries it; per-speaker
    /// sessions free its track for another speaker.
    mutating func silenceSource(_ source: UInt32) {
        speakerLevels.remove(source: source)
        clientLevelSources.remove(source)
        if isMixing { emit(.mixDropSource(source)) }
        if !speakerSessions.isEmpty { emit(.sessionsDropSource(source)) }
    }

    /// The user id speaking as `source`, if any.
    func userID(forSource source: UInt32) -> String? {
        if source == Self.hostSourceID { return host.userID }
        return speakers.first { $0.value.sourceID == source }?.key
    }

    /// The list everyone else last got, to one connection that just arrived (a joiner, a host
    /// resuming): the list is sent only on change, so a steady speaker would stay unseen.
    mutating func sendAnnouncedSpeakers(to connection: ConnectionID) {
        let announced = speakerLevels.announced
        guard !announced.isEmpty else { return }
        let speakers = announced.compactMap { entry in userID(forSource: entry.source).map { (userID: $0, level: entry.level) } }
        send(.activeSpeakers, LiveServerMessage.activeSpeakers(speakers), to: .one(connection))
    }

    /// `active_speakers` when the list changed and the interval allows.
    mutating func flushActiveSpeakers(now: Timestamp) {
        guard let list = speakerLevels.poll(now: now) else { return }
        let speakers = list.compactMap { entry in userID(forSource: entry.source).map { (userID: $0, level: entry.level) } }
        send(.activeSpeakers, LiveServerMessage.activeSpeakers(speakers), to: .all)
    }

    mutating func startRecording(host connection: ConnectionID, now: Timestamp) {
        if let recording {
            // Already running: the host is told so, nothing restarts.
            return send(.recordingStarted, LiveServerMessage.recordingStarted(name: recording.name, startedAt: recording.startedAt), to: .one(connection))
        }
        // Each recording is a file on the server's disk: an event makes a bounded number of them.
        guard recordingCount < configuration.recordingLimit else {
            return sendError(ProtocolError(.quotaExceeded, "This event has made its \(configuration.recordingLimit) recordings.",
                                           details: ["reason": "recordings", "limit": .int(configuration.recordingLimit)]), to: connection)
        }
        recordingCount += 1
        let started = Recording(name: "\(recordingCount).opus", startedAt: now)
        recording = started
        emit(.recordingStart(name: started.name))
        send(.recordingStarted, LiveServerMessage.recordingStarted(name: started.name, startedAt: now), to: .all)
    }

    mutating func stopRecording(host connection: ConnectionID?, now: Timestamp) {
        guard let running = recording else {
            if let connection { sendError(ProtocolError(.notRecording, "Nothing is being recorded."), to: connection) }
            return
        }
        recording = nil
        emit(.recordingStop)
        send(.recordingStopped, LiveServerMessage.recordingStopped(name: running.name, stoppedAt: now), to: .all)
    }
}
