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
            guard let speaker = speakingRole(on: connection) else {
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
                forwardAudio(frame, sockets: .allExcept(connection, skipping: separateAudioSkipping), now: now)
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
                emit(.forward(frame, screenRoute(frame, sockets: .allExcept(connection, skipping: skipping), sessions: .all(skipping))))
            case .forwardAndRequestKeyframe(let skipping):
                emit(.forward(frame, screenRoute(frame, sockets: .allExcept(connection, skipping: skipping), sessions: .all(skipping))))
                requestKeyframe(now: now)
            }
        }
    }

    /// Opus encoded by the server from a speaker's PCM: the gate is checked again, since the
    /// speaker may have been demoted or muted while its audio was being encoded.
    mutating func encodedAudio(_ frame: MediaFrame, speaker connection: ConnectionID, now: Timestamp) {
        guard let speaker = speakingRole(on: connection) else { return emit(.mediaDropped(.gate)) }
        guard !speaker.muted else { return emit(.mediaDropped(.muted)) }
        var frame = frame
        frame.header.sourceID = speaker.sourceID
        frame.header.kind = .opus
        frame.header.flags.remove(.stereo)
        frame.header.audioLevel = nil
        forwardAudio(frame, sockets: .allExcept(connection, skipping: separateAudioSkipping), now: now)
    }

    /// A speaker's accepted audio (source id set): a client level feeds `active_speakers`; the
    /// route sends it to the sockets that hear separate streams, to the per-speaker WHEP
    /// sessions (all but the speaker's own user's), to the mixer while the mix runs, and has its
    /// level measured when neither the client nor the mixer gives one.
    mutating func forwardAudio(_ frame: MediaFrame, sockets: Audience, now: Timestamp) {
        let source = frame.header.sourceID
        if let level = frame.header.audioLevel {
            clientLevelSources.insert(source)
            speakerLevels.update(source: source, rfc6464: level, now: now)
        }
        let opus = frame.header.kind == .opus
        let sessions = opus ? speakerSessionAudience(for: source) : .none
        emit(.forward(frame, Route(sockets: sockets, sessions: sessions, queue: .audio, mix: opus && isMixing,
                                   measureLevel: opus && !isMixing && !clientLevelSources.contains(source))))
    }

    /// Which media-only sessions a screen frame reaches.
    enum ScreenSessions {
        /// Every session that takes video, except these (waiting for a keyframe).
        case all(Set<ConnectionID>)
        case one(ConnectionID)
    }

    /// The route of a screen frame: its queue class (config frames are kept like control,
    /// keyframes mark where a slow viewer may resume) and the media-only sessions that take it —
    /// those whose answer took VP8 while the screen codec is VP8, never a config frame (VP8 has
    /// none in band).
    func screenRoute(_ frame: MediaFrame, sockets: Audience, sessions: ScreenSessions) -> Route {
        let config = frame.header.flags.contains(.config)
        let queue: QueueClass = config ? .config : frame.header.flags.contains(.keyframe) ? .screenKeyframe : .screen
        var video: Audience = .none
        if !config, !videoSessions.isEmpty, screen?.codec?.lowercased() == "vp8" {
            switch sessions {
            case .all(let skipping):
                let eligible = videoSessions.subtracting(skipping).sorted()
                if !eligible.isEmpty { video = .only(eligible) }
            case .one(let connection):
                if videoSessions.contains(connection) { video = .one(connection) }
            }
        }
        return Route(sockets: sockets, sessions: video, queue: queue)
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
        let mediaOnly = participants[connection]?.mediaOnly == true
        for frame in frames {
            let route = screenRoute(frame, sockets: mediaOnly ? .none : .one(connection), sessions: .one(connection))
            if !route.sockets.isNone || !route.sessions.isNone { emit(.forward(frame, route)) }
        }
        if needsKeyframe { requestKeyframe(now: now) }
    }

    /// Asks the host for a keyframe on the server's own account (throttled with the listeners' requests).
    mutating func requestKeyframe(now: Timestamp) {
        guard let hostConnection, keyframeGate.allow(now: now) else { return }
        send(.keyframeRequest, LiveServerMessage.keyframeRequest(fromUserID: nil), to: .one(hostConnection))
    }
}
