import AirwaveCore
import AirwaveMedia
import AirwaveProtocol
import NIOCore

/// The fan-out executor: follows a route and decides nothing. A message or frame is encoded
/// once and the same buffer goes to every WebSocket recipient (one hop per event loop); a
/// screen frame is packetized once for its media-only sessions, a speaker's Opus goes as it is
/// to the per-speaker sessions the route names; the mixer and the level meter take a frame
/// when the route says so. Counters come from the typed outputs.
extension LiveEventDriver {
    func send(_ message: LiveEvent.Message, _ route: LiveEvent.Route, _ state: RunState, _ services: Services) {
        let frame = WebSocketWire.text(message.json)
        let count = state.members.deliver(frame, to: route.sockets, class: .control)
        services.metrics.messageOut(type: message.type.rawValue, count: count)
        if let code = message.errorCode { services.metrics.error(code: code.rawValue) }
    }

    func forward(_ media: MediaFrame, _ route: LiveEvent.Route, _ state: inout RunState, _ services: Services) {
        if !route.sockets.isNone {
            // One wire buffer for every recipient: header and payload are encoded once here.
            let frame = WebSocketWire.frame(media)
            let count = state.members.deliver(frame, to: route.sockets, class: Self.queueClass(route.queue))
            services.metrics.mediaForwarded(kind: media.header.kind, recipients: count, bytes: count * frame.readableBytes)
        }
        if !route.sessions.isNone, media.header.kind == .screen, let webRTC = services.webRTC {
            let ufrags = sessions(route.sessions, state)
            if !ufrags.isEmpty {
                webRTC.sendVideo(to: ufrags, frame: media.payload.withUnsafeReadableBytes { Array($0) }, timestamp: media.header.timestamp)
                services.metrics.mediaForwarded(kind: .screen, recipients: ufrags.count, bytes: ufrags.count * media.payload.readableBytes)
            }
        }
        if !route.sessions.isNone, media.header.kind == .opus, let webRTC = services.webRTC {
            let ufrags = sessions(route.sessions, state)
            if !ufrags.isEmpty {
                webRTC.sendSpeakerAudio(to: ufrags, source: media.header.sourceID, payload: media.payload.withUnsafeReadableBytes { Array($0) },
                                        sequence: media.header.sequence, timestamp: media.header.timestamp)
                services.metrics.mediaForwarded(kind: .opus, recipients: ufrags.count, bytes: ufrags.count * media.payload.readableBytes)
            }
        }
        if route.mix { state.mix.push(media) }
        if route.measureLevel {
            // In the event's task, in order with the engine: a decode costs about 24 µs per 20 ms
            // packet (airwave-mix-bench, release), 1.2 % of a core for ten speakers.
            let level = media.payload.withUnsafeReadableBytes { state.meter.measure(source: media.header.sourceID, packet: $0) }
            if let level { state.measuredLevels[media.header.sourceID] = level.rfc6464Level }
        }
    }

    /// The ICE ufrags (the UDP driver's addresses) of a media-only audience.
    private func sessions(_ audience: LiveEvent.Audience, _ state: RunState) -> [String] {
        switch audience {
        case .none: return []
        case .one(let id): return state.peers[id].map { [$0.ufrag] } ?? []
        case .only(let ids): return ids.compactMap { state.peers[$0]?.ufrag }
        case .all: return state.peers.values.map(\.ufrag)
        case .allExcept(let sender, let skipping):
            return state.peers.values.filter { $0.id != sender && !skipping.contains($0.id) }.map(\.ufrag)
        }
    }

    /// The core's queue class as the outbound queue knows it: a config frame is kept like control.
    static func queueClass(_ queue: LiveEvent.QueueClass) -> OutboundQueue<ByteBuffer>.Class {
        switch queue {
        case .control, .config: .control
        case .audio: .audio
        case .screen: .screen(keyframe: false)
        case .screenKeyframe: .screen(keyframe: true)
        }
    }

    /// PCM is encoded on the speaker's own event loop; the packets come back as inputs, and
    /// the engine checks the speaker's gate again then.
    func encodePCM(_ pcm: MediaFrame, speaker: ConnectionID, state: inout RunState) {
        let socket = state.members[speaker] ?? state.links.link(of: speaker).flatMap { state.linkSockets[$0] }
        guard let loop = socket?.channel.eventLoop else { return }
        state.encoders.encode(pcm, speaker: speaker, on: loop) { [self] packets in
            for packet in packets { submit(.encodedAudio(speaker: speaker, packet)) }
        }
    }
}
