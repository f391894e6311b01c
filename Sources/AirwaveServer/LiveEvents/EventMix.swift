import AirwaveCore
import AirwaveMedia
import AirwaveProtocol
import Foundation
import Logging
import NIOCore

/// The driver's side of the event mix: the ``AudioMixer``, who hears each of its outputs
/// (``MixRecipients``) and the recording file. Owned by the event's driver task; the engine's `mixSubscriber` outputs say who gets what.
struct EventMix {
    private(set) var mixer: AudioMixer?
    /// Who hears which output.
    private var recipients = MixRecipients()
    private var recorder: MixRecorder?

    /// Where this event's recordings go: `<data-dir>/recordings/<event_id>/`.
    let directory: String
    let logger: Logger

    init(directory: String, logger: Logger) {
        self.directory = directory
        self.logger = logger
    }

    /// True while the mixer must tick (someone listens or a recording runs).
    var isActive: Bool { !recipients.isEmpty || recorder != nil }

    /// Connection `id` now hears the mix without `minus` (nil: the full mix).
    mutating func subscribe(_ id: ConnectionID, minus: UInt32?, via recipient: MixRecipients.Recipient) {
        recipients.subscribe(id, minus: minus, via: recipient)
        updateOutputs()
    }

    /// What connection `id` hears: `.some(minus)` while it is subscribed, nil when it is not.
    func subscription(of id: ConnectionID) -> UInt32?? {
        recipients.subscription(of: id)
    }

    /// The event ended: each HLS playlist gets its last segment and `#EXT-X-ENDLIST`.
    mutating func endSegmenters() {
        recipients.endSegmenters()
        updateOutputs()
    }

    /// Ends an HTTP listener's stream with the end page of its output and forgets it; false
    /// when it is not a listener here.
    mutating func finishHTTPListener(_ id: ConnectionID) -> Bool {
        guard recipients.finishHTTPListener(id) else { return false }
        updateOutputs()
        return true
    }

    /// Connection `id` no longer hears the mix.
    mutating func unsubscribe(_ id: ConnectionID) {
        recipients.unsubscribe(id)
        updateOutputs()
    }

    /// The mixer encodes exactly the outputs someone receives (the full mix also for a
    /// recording) and goes away when nothing needs it.
    private mutating func updateOutputs() {
        var outputs = recipients.outputs
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
            recipients.deliver(packet.bytes, of: packet.output, sequence: packet.sequence, timestamp: packet.timestamp,
                               metrics: metrics, webRTC: webRTC, links: links)
        }
        var levels: [UInt32: UInt8] = [:]
        for (source, level) in result.levels { levels[source] = level.rfc6464Level }
        return levels
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
