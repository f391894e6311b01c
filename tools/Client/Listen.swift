import AirwaveMedia
import AirwaveProtocol
import ArgumentParser
import Foundation
import HummingbirdWSClient
import NIOCore

struct Listen: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Join an event, print its control messages and record each speaker to DIR/source-<id>.opus.")

    @Option(help: "Server base URL.") var url = "ws://127.0.0.1:8000"
    @Option(help: "The event id to join.") var event: String
    @Option(name: .customLong("user-id"), help: "Your user id.") var userID: String
    @Option(help: "Display name (goes in the join URL).") var username: String?
    @Option(help: "JWT for a verified join.") var token: String?
    @Option(help: "Folder for the recordings (created if missing).") var out: String

    func run() async throws {
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        var path = "/ws/stream/live/join/event/\(Client.segment(event))/"
        if let username { path += "\(Client.segment(username))/" }
        path += "\(Client.segment(userID))/"
        let interrupts = Signals.interrupts()
        let outDir = out
        let result = try await WebSocketClient.connect(
            url: Client.url(url, path, token: token), configuration: Client.configuration, logger: Client.logger
        ) { inbound, outbound, _ in
            let signalTask = Task {
                for await _ in interrupts {
                    Client.warn("interrupted; leaving")
                    try? await outbound.write(.text(Client.json(["type": "leave_room"])))
                    watchdog(seconds: 3, status: 0, message: "server did not close the connection; exiting")
                }
            }
            defer { signalTask.cancel() }
            let recorder = Recorder(directory: outDir)
            defer { recorder.closeAll() }
            var failure: String?
            for try await message in inbound.messages(maxSize: 1 << 20) {
                switch message {
                case .text(let text):
                    Client.printLine(text)
                    guard let object = Client.object(text), let type = object["type"] as? String else { continue }
                    if type == "stream_ended" {
                        recorder.closeAll()
                        return
                    }
                    if type == "error", let code = object["code"] as? String,
                       ["unauthorized", "forbidden", "event_not_found", "event_ended", "bad_request", "duplicate_user", "replaced"].contains(code) {
                        failure = code
                    }
                case .binary(let buffer):
                    recorder.receive(buffer)
                }
            }
            if let failure { throw ClientFailure("listen failed: \(failure)") }
        }
        _ = result
    }
}

/// One Ogg Opus file per source id; granule positions follow the frames' timestamps.
final class Recorder {
    private struct Track {
        var writer: OggOpusWriter
        var nextTimestamp: UInt32
    }

    let directory: String
    private var tracks: [UInt32: Track] = [:]
    private var failed: Set<UInt32> = []

    init(directory: String) { self.directory = directory }

    func receive(_ buffer: ByteBuffer) {
        guard let frame = try? MediaFrame(parsing: buffer), frame.header.kind == .opus else { return }
        let source = frame.header.sourceID
        guard !failed.contains(source) else { return }
        let packet = Array(frame.payload.readableBytesView)
        let duration = OggOpusWriter.duration(of: packet)
        guard duration > 0 else { return }
        do {
            if var track = tracks[source] {
                // A gap in the timestamps (lost or muted audio) is filled so the file keeps the
                // timeline; a jump backwards or of over a minute (a restarted sender) is not.
                let gap = Int32(bitPattern: frame.header.timestamp &- track.nextTimestamp)
                if gap >= 960 && gap <= 60 * 48_000 {
                    try track.writer.writeLoss(samplesPerChannel: Int(gap))
                }
                try track.writer.write(packet, samplesPerChannel: duration)
                track.nextTimestamp = frame.header.timestamp &+ UInt32(duration)
                tracks[source] = track
            } else {
                let path = "\(directory)/source-\(source).opus"
                let channels = packet[0] & 0x04 != 0 ? 2 : 1
                let writer = try OggOpusWriter(
                    path: path, head: OpusHead(channels: channels),
                    tags: OpusTags(vendor: "airwave-client", comments: ["AIRWAVE_SOURCE_ID=\(source)"]))
                try writer.write(packet, samplesPerChannel: duration)
                tracks[source] = Track(writer: writer, nextTimestamp: frame.header.timestamp &+ UInt32(duration))
                Client.warn("recording source \(source) to \(path)")
            }
        } catch {
            Client.warn("source \(source): \(error); no longer recorded")
            failed.insert(source)
            try? tracks[source]?.writer.close()
            tracks[source] = nil
        }
    }

    func closeAll() {
        for (source, track) in tracks.sorted(by: { $0.key < $1.key }) {
            do {
                try track.writer.close()
                Client.warn("source \(source): \(track.writer.packetCount) packets in \(track.writer.path)")
            } catch {
                Client.warn("source \(source): closing failed: \(error)")
            }
        }
        tracks = [:]
    }
}
