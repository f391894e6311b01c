import AirwaveCore
import AirwaveProtocol
import NIOConcurrencyHelpers

/// The edge's players (PROTOCOL.md 8 and 9): WHEP sessions and `GET /listen/` streams of an
/// event whose origin is another node. They hear the origin's mix packets as they come down the
/// link (one encoding for every node), through ``MixRecipients`` as on the origin; per-speaker
/// players and VP8 viewers get what the edge's routes name. The edge's HLS segmenter
/// (`GET /hls/`) cuts its segments from the same packets.
extension EdgeEventDriver: WebRTCEvent {
    var hasEnded: Bool { hasFinished }

    func playerConnected(_ peer: WebRTCPeer) -> Bool {
        enqueue(.peerInput(.mediaListenerJoined(peer.id, peer.user, video: peer.receivesVideo, speakers: peer.speakerTracks > 0),
                           peer: peer))
    }

    /// WHIP publishers are served by the origin (the route refers them there).
    func published(_ frame: MediaFrame, by peer: ConnectionID) {}

    func keyframeRequested(by peer: ConnectionID) {
        submit(.command(peer, .keyframeRequest))
    }

    func peerDisconnected(_ peer: ConnectionID) {
        submit(.disconnected(peer))
    }

    /// A `GET /listen/` player joins; returns nil once the edge took it (its link is up and the
    /// origin told), or the code of the error it was refused with (`event_ended` when the origin
    /// said the event is over), so that its response's status says so. `server_busy` when the
    /// edge is done or gave no answer within `patience`.
    func admitListener(_ input: EdgeEvent.Input, listener: HTTPListener, patience: Duration) async -> ErrorCode? {
        let answered = NIOLockedValueBox(false)
        return await withCheckedContinuation { (continuation: CheckedContinuation<ErrorCode?, Never>) in
            let answer: @Sendable (ErrorCode?) -> Void = { code in
                if answered.withLockedValue({ was in defer { was = true }; return !was }) { continuation.resume(returning: code) }
            }
            guard enqueue(.listenerInput(input, listener: listener, answer: answer)) else { return answer(.serverBusy) }
            Task {
                try? await Task.sleep(for: patience)
                answer(.serverBusy)
            }
        }
    }

    /// A speaker's audio (per-speaker players) or a VP8 screen frame to the players a route names.
    func forwardToPlayers(_ frame: MediaFrame, _ audience: LiveEvent.Audience, _ state: RunState, _ services: Services) {
        guard let webRTC = services.webRTC else { return }
        let ufrags: [String]
        switch audience {
        case .one(let id): ufrags = state.peers[id].map { [$0.ufrag] } ?? []
        case .only(let ids): ufrags = ids.compactMap { state.peers[$0]?.ufrag }
        case .none, .all, .allExcept: ufrags = []  // the edge names its players one by one
        }
        guard !ufrags.isEmpty else { return }
        let payload = frame.payload.withUnsafeReadableBytes { Array($0) }
        switch frame.header.kind {
        case .screen:
            webRTC.sendVideo(to: ufrags, frame: payload, timestamp: frame.header.timestamp)
        case .opus:
            webRTC.sendSpeakerAudio(to: ufrags, source: frame.header.sourceID, payload: payload, sequence: frame.header.sequence,
                                    timestamp: frame.header.timestamp)
        case .pcm:
            return
        }
        services.metrics.mediaForwarded(kind: frame.header.kind, recipients: ufrags.count, bytes: ufrags.count * payload.count)
    }

    /// Starts the edge's HLS segmenter (a mix subscriber that is no participant); false once
    /// the edge is done.
    func startSegmenter(_ stream: HLSStream, id: ConnectionID) -> Bool {
        enqueue(.segmenter(stream, id: id))
    }

    /// A player now hears the mix output without `minus`.
    func subscribePlayer(_ id: ConnectionID, minus: UInt32?, _ state: inout RunState) {
        if let peer = state.peers[id] {
            state.mix.subscribe(id, minus: minus, via: .session(ufrag: peer.ufrag))
        } else if let listener = state.listeners[id] {
            state.mix.subscribe(id, minus: minus, via: .http(listener))
        } else if let segmenter = state.segmenter, segmenter.id == id {
            state.mix.subscribe(id, minus: minus, via: .segmenter(segmenter.stream))
        }
    }

    /// The edge closed a player: a WHEP session ends; an HTTP stream gets its end page (the
    /// stream ends cleanly, PROTOCOL.md 9).
    func closePlayer(_ id: ConnectionID, _ state: inout RunState, _ services: Services) {
        if let peer = state.peers.removeValue(forKey: id) {
            state.mix.unsubscribe(id)
            services.webRTC?.close(peer)
        } else if let listener = state.listeners.removeValue(forKey: id) {
            if !state.mix.finishHTTPListener(id) { listener.abort() }
        } else if let segmenter = state.segmenter, segmenter.id == id {
            // The playlist gets its last segment and #EXT-X-ENDLIST.
            state.segmenter = nil
            state.mix.endSegmenters()
            if !segmenter.stream.isEnded {  // it never got a packet
                segmenter.stream.end()
                HLSStreams.shared.retire(segmenter.stream)
            }
        }
    }
}
