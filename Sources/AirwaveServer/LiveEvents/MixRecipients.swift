import AirwaveCore
import AirwaveMedia
import AirwaveProtocol
import NIOCore

/// Who hears which output of an event's mix, and the delivery of one packet of an output to
/// all of them: WebSocket subscribers grouped by event loop (one buffer per packet), media-only
/// sessions by ICE ufrag, HTTP listeners through the output's one Ogg stream, the HLS segmenter,
/// and edges' links (once per link). The origin's ``EventMix`` feeds it the packets its mixer
/// makes; an edge's driver feeds it the packets that come down its link (PROTOCOL.md 8), so an
/// edge's players get the origin's single encoding.
struct MixRecipients {
    /// Each subscriber's output (the source it must not hear, or nil for the full mix).
    private var subscribers: [ConnectionID: UInt32?] = [:]
    /// Recipients per output, kept in step with `subscribers`.
    private var groups: [AudioMixer.Output: ConnectionGroups] = [:]
    /// Media-only subscribers per output, by connection id, with their sessions' ufrags.
    private var peerGroups: [AudioMixer.Output: [ConnectionID: String]] = [:]
    /// `peerGroups` as arrays, made once per change rather than once per packet.
    private var peerRecipients: [AudioMixer.Output: [String]] = [:]
    /// The live Ogg stream of each output that has HTTP listeners (`GET /listen/`).
    private var httpOutputs: [AudioMixer.Output: OggHTTPOutput] = [:]
    /// Edges' clients per output, by connection id, with their links; `linkRecipients` holds the
    /// distinct links, made once per change.
    private var linkGroups: [AudioMixer.Output: [ConnectionID: String]] = [:]
    private var linkRecipients: [AudioMixer.Output: Set<String>] = [:]
    /// The HLS segmenter of each output it takes (`GET /hls/`), by its connection id.
    private var segmenters: [AudioMixer.Output: (id: ConnectionID, segmenter: HLSSegmenter)] = [:]

    /// How a subscriber is reached: its WebSocket, or its media-only session's ICE ufrag (the
    /// UDP driver's address, kept here so a packet costs no lookup per listener).
    enum Recipient {
        case socket(ClientConnection)
        case session(ufrag: String)
        /// An HTTP listener: pages of the output's Ogg stream, built once for all of them.
        case http(HTTPListener)
        /// The HLS segmenter: fragmented MP4 segments of the output, listed as they are cut.
        case segmenter(HLSStream)
        /// An edge's client (PROTOCOL.md 8): the output goes down its edge's link once, whatever
        /// number of the edge's clients hear it.
        case link(String)
    }

    var isEmpty: Bool { subscribers.isEmpty }

    /// The outputs someone receives.
    var outputs: Set<AudioMixer.Output> {
        Set(groups.keys).union(peerGroups.keys).union(httpOutputs.keys).union(segmenters.keys).union(linkGroups.keys)
    }

    /// Connection `id` now hears the mix without `minus` (nil: the full mix).
    mutating func subscribe(_ id: ConnectionID, minus: UInt32?, via recipient: Recipient) {
        // An HTTP listener moved to another output: its stream ends and the new one follows (chained Ogg).
        if case .http = recipient, let old = subscribers[id], Self.output(old) != Self.output(minus) {
            httpOutputs[Self.output(old)]?.handOver(id)
        }
        unsubscribe(id)
        subscribers[id] = minus
        let output = Self.output(minus)
        switch recipient {
        case .socket(let connection):
            groups[output, default: ConnectionGroups()].insert(connection)
        case .session(let ufrag):
            peerGroups[output, default: [:]][id] = ufrag
            peerRecipients[output] = peerGroups[output].map { Array($0.values) }
        case .http(let listener):
            httpOutputs[output, default: OggHTTPOutput()].add(listener)
        case .segmenter(let stream):
            segmenters[output] = (id, HLSSegmenter(stream: stream))
        case .link(let link):
            linkGroups[output, default: [:]][id] = link
            linkRecipients[output] = linkGroups[output].map { Set($0.values) }
        }
    }

    /// What connection `id` hears: `.some(minus)` while it is subscribed, nil when it is not.
    func subscription(of id: ConnectionID) -> UInt32?? {
        subscribers[id]
    }

    /// The event ended: each HLS playlist gets its last segment and `#EXT-X-ENDLIST`.
    mutating func endSegmenters() {
        for output in segmenters.keys { segmenters[output]?.segmenter.end() }
        segmenters.removeAll()
    }

    /// Ends an HTTP listener's stream with the end page of its output and forgets it; false
    /// when it is not a listener here.
    mutating func finishHTTPListener(_ id: ConnectionID) -> Bool {
        guard let minus = subscribers[id], httpOutputs[Self.output(minus)]?.finish(id) == true else { return false }
        unsubscribe(id)
        return true
    }

    /// Connection `id` no longer hears the mix.
    mutating func unsubscribe(_ id: ConnectionID) {
        guard let minus = subscribers.removeValue(forKey: id) else { return }
        let output = Self.output(minus)
        groups[output]?.remove(id)
        if groups[output]?.count == 0 { groups[output] = nil }
        if peerGroups[output]?.removeValue(forKey: id) != nil {
            if peerGroups[output]?.isEmpty == true { peerGroups[output] = nil }
            peerRecipients[output] = peerGroups[output].map { Array($0.values) }
        }
        httpOutputs[output]?.remove(id)
        if httpOutputs[output]?.isEmpty == true { httpOutputs[output] = nil }
        if segmenters[output]?.id == id { segmenters[output] = nil }
        if linkGroups[output]?.removeValue(forKey: id) != nil {
            if linkGroups[output]?.isEmpty == true { linkGroups[output] = nil }
            linkRecipients[output] = linkGroups[output].map { Set($0.values) }
        }
    }

    static func output(_ minus: UInt32?) -> AudioMixer.Output {
        minus.map { .minus($0) } ?? .full
    }

    /// One 20 ms packet of `output` to everyone who hears it (source id 0 for clients).
    /// `links` are the sockets of the edges' links, by edge.
    mutating func deliver(_ bytes: [UInt8], of output: AudioMixer.Output, sequence: UInt32, timestamp: UInt32,
                          metrics: ServerMetrics, webRTC: WebRTCGateway?, links: [String: ClientConnection] = [:]) {
        if let webRTC, let ufrags = peerRecipients[output] {
            webRTC.sendAudio(to: ufrags, payload: bytes, stream: Self.streamID(output), sequence: sequence, timestamp: timestamp)
            metrics.mediaForwarded(kind: .opus, recipients: ufrags.count, bytes: ufrags.count * bytes.count)
        }
        segmenters[output]?.segmenter.append(bytes)
        if let sent = httpOutputs[output]?.append(bytes, samples: AudioMixer.frameSamples), sent.recipients > 0 {
            metrics.mediaForwarded(kind: .opus, recipients: sent.recipients, bytes: sent.recipients * sent.bytes)
        }
        if let edges = linkRecipients[output] {
            // On a link the output is named by its source id (`EdgeLinkMessage.Down.mixSubscriber`).
            let wire = WebSocketWire.frame(MediaFrame(
                header: MediaFrameHeader(kind: .opus, sourceID: Self.streamID(output), sequence: sequence, timestamp: timestamp),
                payload: ByteBuffer(bytes: bytes)))
            let now = Timestamp.now()
            for edge in edges {
                guard let socket = links[edge] else { continue }
                socket.channel.eventLoop.execute { socket.deliver(wire, class: .audio, now: now) }
            }
            metrics.linkFrames(direction: "down", count: edges.count)
        }
        guard let group = groups[output] else { return }
        let frame = WebSocketWire.frame(MediaFrame(
            header: MediaFrameHeader(kind: .opus, sourceID: 0, sequence: sequence, timestamp: timestamp),
            payload: ByteBuffer(bytes: bytes)))
        let count = group.broadcast(frame, class: .audio)
        metrics.mediaForwarded(kind: .opus, recipients: count, bytes: count * frame.readableBytes)
    }

    /// Names a mix output for RTP rewriting (a listener moved to another output starts a new run)
    /// and, as its source id, on an edge's link.
    static func streamID(_ output: AudioMixer.Output) -> UInt32 {
        switch output {
        case .full: 0
        case .minus(let source): 0x8000_0000 | source
        }
    }
}
