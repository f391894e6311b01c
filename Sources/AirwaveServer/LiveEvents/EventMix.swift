import AirwaveCore
import AirwaveMedia
import AirwaveProtocol
import Foundation
import Logging
import NIOCore

/// The driver's side of the event mix: the ``AudioMixer``, the connections of each mixed
/// output (grouped by event loop, one buffer per packet for all of them) and the recording
/// file. Owned by the event's driver task; the engine's `mixSubscriber` outputs say who gets what.
struct EventMix {
    private(set) var mixer: AudioMixer?
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
    private var recorder: MixRecorder?

    /// Where this event's recordings go: `<data-dir>/recordings/<event_id>/`.
    let directory: String
    let logger: Logger

    init(directory: String, logger: Logger) {
        self.directory = directory
        self.logger = logger
    }

    /// True while the mixer must tick (someone listens or a recording runs).
    var isActive: Bool { !subscribers.isEmpty || recorder != nil }

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

    /// Connection `id` now hears the mix without `minus` (nil: the full mix).
    mutating func subscribe(_ id: ConnectionID, minus: UInt32?, via recipient: Recipient) {
        // An HTTP listener moved to another output: its stream ends and the new one follows (chained Ogg).
        if case .http = recipient, let old = subscribers[id], Self.output(old) != Self.output(minus) {
            httpOutputs[Self.output(old)]?.handOver(id)
        }
        unsubscribe(id, updating: false)
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
        updateOutputs()
    }

    /// What connection `id` hears: `.some(minus)` while it is subscribed, nil when it is not.
    func subscription(of id: ConnectionID) -> UInt32?? {
        subscribers[id]
    }

    /// The event ended: each HLS playlist gets its last segment and `#EXT-X-ENDLIST`.
    mutating func endSegmenters() {
        for output in segmenters.keys { segmenters[output]?.segmenter.end() }
        segmenters.removeAll()
        updateOutputs()
    }

    /// Ends an HTTP listener's stream with the end page of its output and forgets it; false
    /// when it is not a listener here.
    mutating func finishHTTPListener(_ id: ConnectionID) -> Bool {
        guard let minus = subscribers[id], httpOutputs[Self.output(minus)]?.finish(id) == true else { return false }
        unsubscribe(id)
        return true
    }

    /// Connection `id` no longer hears the mix.
    mutating func unsubscribe(_ id: ConnectionID, updating: Bool = true) {
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
        if updating { updateOutputs() }
    }

    private static func output(_ minus: UInt32?) -> AudioMixer.Output {
        minus.map { .minus($0) } ?? .full
    }

    /// The mixer encodes exactly the outputs someone receives (the full mix also for a
    /// recording) and goes away when nothing needs it.
    private mutating func updateOutputs() {
        var outputs = Set(groups.keys).union(peerGroups.keys).union(httpOutputs.keys).union(segmenters.keys).union(linkGroups.keys)
        if recorder != nil { outputs.insert(.full) }
        if outputs.isEmpty {
            mixer = nil
        } else {
            let mixer = self.mixer ?? AudioMixer()
            if mixer.outputs != outputs { mixer.setOutputs(outputs) }
            self.mixer = mixer
        }
    }

    mutating func push(_ frame: MediaFrame) {
        guard let mixer else { return }
        let packet = frame.payload.withUnsafeReadableBytes { Array($0) }
        mixer.push(source: frame.header.sourceID, packet: packet, timestamp: frame.header.timestamp)
    }

    func dropSource(_ source: UInt32) {
        mixer?.removeSource(source)
    }

    /// Mixes one 20 ms tick: sends each output's packet to its subscribers (source id 0),
    /// appends the full mix to the recording, and returns the measured levels (RFC 6464 values).
    /// `links` are the sockets of the edges' links, by edge.
    mutating func tick(metrics: ServerMetrics, webRTC: WebRTCGateway?, links: [String: ClientConnection] = [:]) -> [UInt32: UInt8] {
        guard let mixer else { return [:] }
        let result = mixer.tick()
        for packet in result.packets {
            if packet.output == .full, let recorder {
                do {
                    try recorder.write(packet.bytes)
                } catch {
                    logger.error("recording write failed", metadata: ["path": "\(recorder.path)", "error": "\(error)"])
                    self.recorder = nil
                }
            }
            if let webRTC, let ufrags = peerRecipients[packet.output] {
                webRTC.sendAudio(to: ufrags, payload: packet.bytes, stream: Self.streamID(packet.output),
                                 sequence: packet.sequence, timestamp: packet.timestamp)
                metrics.mediaForwarded(kind: .opus, recipients: ufrags.count, bytes: ufrags.count * packet.bytes.count)
            }
            segmenters[packet.output]?.segmenter.append(packet.bytes)
            if let sent = httpOutputs[packet.output]?.append(packet.bytes, samples: AudioMixer.frameSamples), sent.recipients > 0 {
                metrics.mediaForwarded(kind: .opus, recipients: sent.recipients, bytes: sent.recipients * sent.bytes)
            }
            if let edges = linkRecipients[packet.output] {
                // On a link the output is named by its source id (`EdgeLinkMessage.Down.mixSubscriber`).
                let wire = WebSocketWire.frame(MediaFrame(
                    header: MediaFrameHeader(kind: .opus, sourceID: Self.streamID(packet.output), sequence: packet.sequence,
                                             timestamp: packet.timestamp),
                    payload: ByteBuffer(bytes: packet.bytes)))
                let now = Timestamp.now()
                for edge in edges {
                    guard let socket = links[edge] else { continue }
                    socket.channel.eventLoop.execute { socket.deliver(wire, class: .audio, now: now) }
                }
                metrics.linkFrames(direction: "down", count: edges.count)
            }
            guard let group = groups[packet.output] else { continue }
            let frame = WebSocketWire.frame(MediaFrame(
                header: MediaFrameHeader(kind: .opus, sourceID: 0, sequence: packet.sequence, timestamp: packet.timestamp),
                payload: ByteBuffer(bytes: packet.bytes)))
            let count = group.broadcast(frame, class: .audio)
            metrics.mediaForwarded(kind: .opus, recipients: count, bytes: count * frame.readableBytes)
        }
        var levels: [UInt32: UInt8] = [:]
        for (source, level) in result.levels { levels[source] = level.rfc6464Level }
        return levels
    }

    /// Names a mix output for RTP rewriting (a listener moved to another output starts a new run)
    /// and, as its source id, on an edge's link.
    private static func streamID(_ output: AudioMixer.Output) -> UInt32 {
        switch output {
        case .full: 0
        case .minus(let source): 0x8000_0000 | source
        }
    }

    /// Opens `<directory>/<name>` for the full mix.
    mutating func startRecording(name: String) {
        stopRecording()
        let path = URL(fileURLWithPath: directory).appendingPathComponent(name).path
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            // Pages are written at least every 200 ms, so a crash loses at most that much.
            recorder = try MixRecorder(path: path, comments: ["ENCODER=airwave event mix"])
            logger.info("recording started", metadata: ["path": "\(path)"])
            updateOutputs()
        } catch {
            logger.error("recording could not start", metadata: ["path": "\(path)", "error": "\(error)"])
        }
    }

    /// Finishes the recording file (end-of-stream page).
    mutating func stopRecording() {
        guard let recorder else { return }
        do {
            try recorder.close()
        } catch {
            logger.error("recording could not be finished", metadata: ["path": "\(recorder.path)", "error": "\(error)"])
        }
        logger.info("recording stopped", metadata: ["path": "\(recorder.path)"])
        self.recorder = nil
        updateOutputs()
    }
}
