import AirwaveProtocol

extension LiveEvent {
    /// The gates of PROTOCOL.md 2.4: only the host and co-hosts publish audio, only the host
    /// publishes screen and only in screen mode, muted speakers are not forwarded, and nobody
    /// receives their own media.
    mutating func media(_ frame: MediaFrame, from connection: ConnectionID, now: Timestamp) {
        if let userID = publishers[connection] { return publishedMedia(frame, from: connection, userID: userID, now: now) }
        guard let sender = sender(connection) else { return }
        var frame = frame
        switch frame.header.kind {
        case .opus, .pcm:
            guard let speaker = audioSpeaker(sender) else {
                return refuseMedia(connection, "Only the host and co-hosts may publish audio.", now: now)
            }
            guard !speaker.muted else { return emit(.mediaDropped(.muted)) }
            frame.header.sourceID = speaker.sourceID
            if frame.header.kind == .pcm {
                if let level = frame.header.audioLevel {
                    clientLevelSources.insert(speaker.sourceID)
                    speakerLevels.update(source: speaker.sourceID, rfc6464: level, now: now)
                }
                emit(.encodePCM(frame, speaker: connection))
            } else {
                emit(.forward(frame, to: .allExcept(connection, skipping: separateAudioSkipping)))
                audioAccepted(frame, now: now)
            }
        case .screen:
            guard case .host = sender else {
                return refuseMedia(connection, "Only the host may publish screen frames.", now: now)
            }
            guard mode == .screen else {
                emit(.mediaDropped(.inactivePipeline))
                if mediaErrorGates[connection, default: IntervalGate(interval: .seconds(1))].allow(now: now) {
                    sendError(ProtocolError(.notAllowed, "Switch to screen sharing before sending screen frames."), to: connection)
                }
                return
            }
            frame.header.sourceID = Self.hostSourceID
            switch screenPipeline.accept(frame) {
            case .forward(let skipping):
                emit(.forward(frame, to: .allExcept(connection, skipping: skipping)))
            case .forwardAndRequestKeyframe(let skipping):
                emit(.forward(frame, to: .allExcept(connection, skipping: skipping)))
                requestKeyframe(now: now)
            }
        }
    }

    /// Opus encoded by the server from a speaker's PCM: the gate is checked again, since the
    /// speaker may have been demoted or muted while its audio was being encoded.
    mutating func encodedAudio(_ frame: MediaFrame, speaker connection: ConnectionID) {
        guard let sender = sender(connection), let speaker = audioSpeaker(sender) else { return emit(.mediaDropped(.gate)) }
        guard !speaker.muted else { return emit(.mediaDropped(.muted)) }
        var frame = frame
        frame.header.sourceID = speaker.sourceID
        frame.header.kind = .opus
        frame.header.flags.remove(.stereo)
        frame.header.audioLevel = nil
        emit(.forward(frame, to: .allExcept(connection, skipping: separateAudioSkipping)))
        if isMixing { emit(.mix(frame)) }
    }

    /// The source id and mute state of a sender allowed to publish audio, or nil.
    func audioSpeaker(_ sender: Sender) -> (sourceID: UInt32, muted: Bool)? {
        switch sender {
        case .host: return (Self.hostSourceID, hostMuted)
        case .participant(let participant):
            guard participant.role == .cohost, let speaker = speakers[participant.user.userID] else { return nil }
            return (speaker.sourceID, speaker.muted)
        }
    }

    mutating func refuseMedia(_ connection: ConnectionID, _ message: String, now: Timestamp) {
        emit(.mediaDropped(.gate))
        if mediaErrorGates[connection, default: IntervalGate(interval: .seconds(1))].allow(now: now) {
            sendError(ProtocolError(.notAllowed, message), to: connection)
        }
    }

    /// A joiner during screen sharing gets the config frame and the cached GOP, or waits for
    /// the next keyframe, which the host is asked for.
    mutating func catchUpOnScreen(_ connection: ConnectionID, now: Timestamp) {
        let (frames, needsKeyframe) = screenPipeline.join(connection)
        for frame in frames {
            emit(.forward(frame, to: .one(connection)))
        }
        if needsKeyframe { requestKeyframe(now: now) }
    }

    /// Asks the host for a keyframe on the server's own account (throttled with the listeners' requests).
    mutating func requestKeyframe(now: Timestamp) {
        guard let hostConnection, keyframeGate.allow(now: now) else { return }
        emit(.send(LiveServerMessage.keyframeRequest(fromUserID: nil), to: .one(hostConnection)))
    }
}
