import AirwaveMedia
import AirwaveProtocol
import ArgumentParser
import Foundation
import HummingbirdWSClient
import NIOCore

struct Broadcast: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Go live (or join as co-host) and stream an Ogg Opus or WAV file in real time.")

    @Option(help: "Server base URL.") var url = "ws://127.0.0.1:8000"
    @Option(name: .customLong("user-id"), help: "Your user id (must match the token).") var userID: String
    @Option(help: "JWT for the user.") var token: String
    @Option(name: .customLong("cohost-of"), help: "Join this event and publish once the host's co-host invite is accepted.")
    var cohostOf: String?
    @Option(help: "Ogg Opus file to stream (packets sent as they are).") var ogg: String?
    @Option(help: "WAV file to stream (s16le, mono or stereo, 48 kHz).") var wav: String?
    @Flag(help: "Send the WAV as raw PCM (kind 2) frames of 20 ms instead of encoding it to Opus here.") var pcm = false
    @Flag(help: "Start again at the end of the file instead of ending.") var loop = false
    @Option(name: .customLong("wait-listeners"), help: "Wait until the event has this many participants (host excluded) before streaming.")
    var waitListeners = 0

    func validate() throws {
        guard (ogg == nil) != (wav == nil) else { throw ValidationError("give exactly one of --ogg FILE and --wav FILE") }
        if pcm && wav == nil { throw ValidationError("--pcm applies to --wav only") }
    }

    func run() async throws {
        let source = try MediaSource.open(ogg: ogg, wav: wav, pcm: pcm)
        let isHost = cohostOf == nil
        let path = isHost
            ? "/ws/stream/start/live/\(Client.segment(userID))/"
            : "/ws/stream/live/join/event/\(Client.segment(cohostOf!))/\(Client.segment(userID))/"
        let session = BroadcastSession(isHost: isHost, userID: userID, waitListeners: waitListeners, loop: loop, source: source)
        let interrupts = Signals.interrupts()
        let close = try await WebSocketClient.connect(
            url: Client.url(url, path, token: token), configuration: Client.configuration, logger: Client.logger
        ) { inbound, outbound, _ in
            await session.attach(outbound)
            let signalTask = Task {
                for await _ in interrupts { await session.stop(reason: "interrupted") }
            }
            defer { signalTask.cancel() }
            for try await message in inbound.messages(maxSize: 1 << 20) {
                guard case .text(let text) = message else { continue }
                Client.printLine(text)
                await session.handle(text)
                if await session.isFinished { break }
            }
        }
        let (code, text) = Client.describe(close)
        await session.cancelStreaming()
        let outcome = await session.outcome
        if outcome.failed || (!outcome.stopped && code != 1000) {
            throw ClientFailure("broadcast failed: \(outcome.error ?? text)")
        }
    }
}

/// What a broadcast streams: Ogg Opus packets or WAV audio, with a fresh read per loop.
enum MediaSource: Sendable {
    case ogg(path: String)
    case wav(WAVFile, pcm: Bool)

    static func open(ogg: String?, wav: String?, pcm: Bool) throws -> MediaSource {
        if let ogg {
            _ = try OggOpusReader(path: ogg) // fail early on a bad file
            return .ogg(path: ogg)
        }
        return .wav(try WAVFile(path: wav!), pcm: pcm)
    }
}

actor BroadcastSession {
    let isHost: Bool
    let userID: String
    let waitListeners: Int
    let loop: Bool
    let source: MediaSource

    private var outbound: WebSocketOutboundWriter?
    private var eventID: String?
    private var publishing = false
    private var participants = 0
    private var streamer: Task<Void, Never>?
    private(set) var isFinished = false
    private var stopped = false
    private var failed = false
    private var error: String?

    init(isHost: Bool, userID: String, waitListeners: Int, loop: Bool, source: MediaSource) {
        self.isHost = isHost
        self.userID = userID
        self.waitListeners = waitListeners
        self.loop = loop
        self.source = source
    }

    var outcome: (stopped: Bool, failed: Bool, error: String?) { (stopped, failed, error) }

    func attach(_ outbound: WebSocketOutboundWriter) { self.outbound = outbound }

    func handle(_ text: String) async {
        guard let object = Client.object(text), let type = object["type"] as? String else { return }
        switch type {
        case "stream_link":
            eventID = object["event_id"] as? String
            Client.warn("live: event \(eventID ?? "?") join \(object["join_url"] as? String ?? "?")")
            Client.printLine("event_id: \(eventID ?? "")")
            Client.printLine("join_url: \(object["join_url"] as? String ?? "")")
            publishing = true
        case "stream_state":
            eventID = object["event_id"] as? String
            if !isHost { Client.warn("joined event \(eventID ?? "?"); waiting for a co-host invite") }
        case "cohost_invite" where !isHost:
            await send(["type": "accept_cohost"])
        case "cohost_joined" where !isHost:
            if (object["user_id"] as? String) == userID { publishing = true }
        case "cohost_removed", "cohost_left":
            if !isHost, (object["user_id"] as? String) == userID {
                publishing = false
                streamer?.cancel()
                streamer = nil
            }
        case "participant_count":
            participants = object["count"] as? Int ?? participants
        case "stream_ended":
            isFinished = true
            stopped = true
        case "error":
            let code = object["code"] as? String ?? "?"
            Client.warn("server error \(code): \(object["message"] as? String ?? "")")
            if streamer == nil && ["unauthorized", "forbidden", "event_not_found", "event_ended", "bad_request",
                                   "duplicate_user", "replaced"].contains(code) {
                failed = true
                error = code
            }
        case "server_shutdown":
            failed = true
            error = "server shut down"
        default:
            break
        }
        startIfReady()
    }

    private func startIfReady() {
        guard publishing, streamer == nil, !stopped, participants >= waitListeners, let outbound else { return }
        let source = self.source
        let loop = self.loop
        streamer = Task {
            do {
                try await Streamer.stream(source, loop: loop, to: outbound)
                await self.stop(reason: "end of file")
            } catch is CancellationError {
            } catch {
                Client.warn("streaming stopped: \(error)")
                await self.stop(reason: "error")
            }
        }
    }

    /// Ends the broadcast: the host ends the event, a co-host leaves. The server then closes
    /// the connection; a watchdog bounds the wait.
    func stop(reason: String) async {
        guard !stopped else { return }
        stopped = true
        streamer?.cancel()
        Client.warn("stopping (\(reason))")
        if isHost {
            await send(["type": "stream_ended", "event_id": eventID ?? ""])
        } else {
            await send(["type": "leave_room"])
        }
        watchdog(seconds: 5, status: 0, message: "server did not close the connection; exiting")
    }

    func cancelStreaming() {
        streamer?.cancel()
    }

    /// Sends from a fresh task, so a cancelled streamer (which may be the caller) cannot
    /// stop the message.
    private func send(_ object: [String: Any]) async {
        guard let outbound else { return }
        let text = Client.json(object)
        await Task {
            do {
                try await outbound.write(.text(text))
            } catch {
                Client.warn("send failed: \(error)")
            }
        }.value
    }
}

/// Paces media frames in real time by each packet's own duration.
enum Streamer {
    static func stream(_ source: MediaSource, loop: Bool, to outbound: WebSocketOutboundWriter) async throws {
        let clock = ContinuousClock()
        let start = clock.now
        var sequence: UInt32 = 0
        var samples: Int64 = 0 // 48 kHz samples sent so far: the timestamp of the next frame
        var first = true

        func send(kind: MediaFrameHeader.Kind, flags: MediaFrameHeader.Flags, payload: [UInt8], duration: Int) async throws {
            let due = start + .microseconds(samples * 1_000_000 / 48_000)
            try await clock.sleep(until: due)
            var flags = flags
            if first { flags.insert(.marker) }
            first = false
            let header = MediaFrameHeader(kind: kind, flags: flags, sequence: sequence, timestamp: UInt32(truncatingIfNeeded: samples))
            var buffer = ByteBuffer()
            buffer.reserveCapacity(MediaFrameHeader.size + payload.count)
            header.write(into: &buffer)
            buffer.writeBytes(payload)
            try await outbound.write(.binary(buffer))
            sequence &+= 1
            samples += Int64(duration)
        }

        var encoder: PCMOpusEncoder?
        repeat {
            switch source {
            case .ogg(let path):
                let reader = try OggOpusReader(path: path)
                while let packet = try reader.nextPacket() {
                    try Task.checkCancellation()
                    guard packet.samplesPerChannel > 0 else { continue } // not a valid Opus packet
                    try await send(kind: .opus, flags: [], payload: packet.bytes, duration: packet.samplesPerChannel)
                }
            case .wav(let wav, let pcm):
                let frameBytes = 960 * wav.channels * 2
                if !pcm && encoder == nil { encoder = try PCMOpusEncoder(channels: wav.channels) }
                var offset = 0
                while offset < wav.data.count {
                    try Task.checkCancellation()
                    let chunk = Array(wav.data[offset..<min(offset + frameBytes, wav.data.count)])
                    offset += frameBytes
                    if pcm {
                        try await send(kind: .pcm, flags: wav.channels == 2 ? .stereo : [], payload: chunk,
                                       duration: chunk.count / (2 * wav.channels))
                    } else {
                        for packet in encoder!.append(chunk) {
                            try await send(kind: .opus, flags: [], payload: packet.bytes, duration: 960)
                        }
                    }
                }
                if !loop, let encoder {
                    for packet in encoder.flush() {
                        try await send(kind: .opus, flags: [], payload: packet.bytes, duration: 960)
                    }
                }
            }
        } while loop && !Task.isCancelled
        // Let the last frame play out before the caller ends the event.
        try await clock.sleep(until: start + .microseconds(samples * 1_000_000 / 48_000) + .milliseconds(300))
    }
}

/// A PCM WAV file: s16le, 1 or 2 channels, 48 kHz.
struct WAVFile: Sendable {
    var channels: Int
    var data: [UInt8]

    init(path: String) throws {
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        func u32(_ at: Int) -> Int { Int(bytes[at]) | Int(bytes[at + 1]) << 8 | Int(bytes[at + 2]) << 16 | Int(bytes[at + 3]) << 24 }
        func u16(_ at: Int) -> Int { Int(bytes[at]) | Int(bytes[at + 1]) << 8 }
        guard bytes.count >= 12, Array(bytes[0..<4]) == Array("RIFF".utf8), Array(bytes[8..<12]) == Array("WAVE".utf8) else {
            throw ClientFailure("\(path): not a RIFF/WAVE file")
        }
        var offset = 12
        var format: (tag: Int, channels: Int, rate: Int, bits: Int)?
        var data: [UInt8]?
        while offset + 8 <= bytes.count {
            let id = String(decoding: bytes[offset..<offset + 4], as: UTF8.self)
            let size = u32(offset + 4)
            let body = offset + 8
            let end = min(bytes.count, body + size)
            if id == "fmt ", size >= 16, end - body >= 16 {
                format = (u16(body), u16(body + 2), u32(body + 4), u16(body + 14))
            } else if id == "data" {
                data = Array(bytes[body..<end])
            }
            offset = body + size + (size & 1)
        }
        guard let format else { throw ClientFailure("\(path): no fmt chunk") }
        guard format.tag == 1 || format.tag == 0xFFFE, format.bits == 16 else {
            throw ClientFailure("\(path): only 16-bit PCM WAV is supported (format \(format.tag), \(format.bits) bits)")
        }
        guard format.rate == 48_000 else { throw ClientFailure("\(path): sample rate \(format.rate); 48000 Hz needed") }
        guard format.channels == 1 || format.channels == 2 else {
            throw ClientFailure("\(path): \(format.channels) channels; mono or stereo needed")
        }
        guard let data else { throw ClientFailure("\(path): no data chunk") }
        channels = format.channels
        let frame = 2 * channels
        self.data = Array(data.prefix(data.count / frame * frame))
    }
}
