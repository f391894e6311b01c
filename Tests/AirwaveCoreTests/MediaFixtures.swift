import AirwaveCore
import AirwaveProtocol
import Foundation
import NIOCore

/// Media for the scenario fixtures: inline payloads, or real packets and frames from the
/// files under `Fixtures/media` (their formats: `Fixtures/media/README.md`).
enum MediaFixtures {
    static let directory: URL? = FixtureFolder("media").directory

    /// `[u32 length][bytes]…` (Opus packet files).
    static func packets(_ file: String) throws -> [[UInt8]] {
        var buffer = try read(file)
        var packets: [[UInt8]] = []
        while let length = buffer.readInteger(as: UInt32.self) {
            guard let bytes = buffer.readBytes(length: Int(length)) else { throw FixtureError("\(file): truncated") }
            packets.append(bytes)
        }
        return packets
    }

    /// `[u32 length][u8 flags][u32 timestamp][payload]…` (screen frame files).
    static func screenFrames(_ file: String) throws -> [(flags: UInt8, timestamp: UInt32, payload: [UInt8])] {
        var buffer = try read(file)
        var frames: [(UInt8, UInt32, [UInt8])] = []
        while let length = buffer.readInteger(as: UInt32.self) {
            guard let flags = buffer.readInteger(as: UInt8.self), let timestamp = buffer.readInteger(as: UInt32.self),
                let payload = buffer.readBytes(length: Int(length))
            else { throw FixtureError("\(file): truncated") }
            frames.append((flags, timestamp, payload))
        }
        return frames
    }

    private static func read(_ file: String) throws -> ByteBuffer {
        guard let directory else { throw FixtureError("Fixtures/media not found") }
        return ByteBuffer(bytes: try Data(contentsOf: directory.appendingPathComponent(file)))
    }

    /// A step's `frame`: `kind`, `flags`, `sequence`, `timestamp`, and the payload as
    /// `payload_hex`, `payload_size` (zero bytes), or `packet: {"file", "index"}` from a fixture file
    /// (screen files also give flags and timestamp unless the step sets them).
    /// The keys a step's `frame` may have.
    static let frameKeys: Set<String> = ["kind", "flags", "sequence", "timestamp", "source_id", "audio_level", "payload_hex",
                                         "payload_size", "packet"]

    static func frame(_ spec: JSONValue?, name: String, step: Int) throws -> MediaFrame {
        guard let spec, let kindValue = spec["kind"]?.intValue, let kind = MediaFrameHeader.Kind(rawValue: UInt8(kindValue)) else {
            throw FixtureError("\(name): step \(step) needs frame.kind 1, 2 or 3")
        }
        var flags = UInt8(spec["flags"]?.intValue ?? 0)
        var timestamp = UInt32(spec["timestamp"]?.intValue ?? 0)
        var payload: [UInt8]
        if let hex = spec["payload_hex"]?.stringValue {
            payload = stride(from: 0, to: hex.count, by: 2).map { i in
                let start = hex.index(hex.startIndex, offsetBy: i)
                return UInt8(hex[start..<hex.index(start, offsetBy: 2)], radix: 16) ?? 0
            }
        } else if let packet = spec["packet"], let file = packet["file"]?.stringValue, let index = packet["index"]?.intValue {
            if file.hasSuffix(".frames") {
                let frame = try screenFrames(file)[index]
                payload = frame.payload
                if spec["flags"] == nil { flags = frame.flags }
                if spec["timestamp"] == nil { timestamp = frame.timestamp }
            } else {
                payload = try packets(file)[index]
            }
        } else {
            payload = [UInt8](repeating: 0, count: spec["payload_size"]?.intValue ?? 0)
        }
        let header = MediaFrameHeader(kind: kind, flags: .init(rawValue: flags), sourceID: UInt32(spec["source_id"]?.intValue ?? 0),
                                      sequence: UInt32(spec["sequence"]?.intValue ?? 0), timestamp: timestamp,
                                      audioLevel: spec["audio_level"]?.intValue.map { UInt8(clamping: $0) })
        return MediaFrame(header: header, payload: ByteBuffer(bytes: payload))
    }
}
