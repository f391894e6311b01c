import AirwaveMedia
import Foundation

/// Reads the files of `Fixtures/media` (formats: `Fixtures/media/README.md`). The folder is
/// found by walking up from this source file to the first folder holding `Package.swift`;
/// nothing is a bundled resource. Parsing the record containers is `AirwaveMedia`'s
/// ``MediaRecordFile``, shared with the tools that stream these files.
enum MediaFixtures {
    static let directory: URL? = {
        var folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while folder.path != "/" {
            if FileManager.default.fileExists(atPath: folder.appendingPathComponent("Package.swift").path) {
                return folder.appendingPathComponent("Fixtures/media")
            }
            folder.deleteLastPathComponent()
        }
        return nil
    }()

    /// The raw bytes of a fixture file.
    static func bytes(_ name: String) throws -> [UInt8] {
        guard let directory else { throw MediaFixtureError("Fixtures/media not found above \(#filePath)") }
        return Array(try Data(contentsOf: directory.appendingPathComponent(name)))
    }

    /// A packet-record file (`speech.opus-packets`, `malformed-opus.packets`).
    static func readPackets(_ name: String) throws -> [[UInt8]] {
        try MediaRecordFile.readPackets(bytes(name))
    }

    /// A video-frame-record file (`screen-vp8.frames`).
    static func readVideoFrames(_ name: String) throws -> [VideoFrame] {
        try MediaRecordFile.readVideoFrames(bytes(name))
    }

    /// A raw s16le PCM file, as interleaved samples.
    static func readPCM(_ name: String) throws -> [Int16] {
        let raw = try bytes(name)
        guard raw.count % 2 == 0 else { throw MediaFixtureError("\(name) has an odd byte count") }
        return stride(from: 0, to: raw.count, by: 2).map { Int16(bitPattern: UInt16(raw[$0]) | UInt16(raw[$0 + 1]) << 8) }
    }

    /// `speech.opus-packets.json`, written by `tools/media/ogg2packets.py`.
    struct SpeechMetadata: Decodable {
        var packets: Int
        var channels: Int
        var preSkip: Int
        var finalGranule: Int
        var sourceSamples: Int
        var sourceRate: Int

        enum CodingKeys: String, CodingKey {
            case packets, channels
            case preSkip = "pre_skip"
            case finalGranule = "final_granule"
            case sourceSamples = "source_samples"
            case sourceRate = "source_rate"
        }
    }

    static func speechMetadata() throws -> SpeechMetadata {
        try JSONDecoder().decode(SpeechMetadata.self, from: Data(bytes("speech.opus-packets.json")))
    }
}

struct MediaFixtureError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Signal analysis helpers for the tests.
enum Signal {
    /// The samples of one channel of interleaved audio, as Doubles.
    static func channel(_ interleaved: [Int16], _ index: Int, of channels: Int) -> [Double] {
        stride(from: index, to: interleaved.count, by: channels).map { Double(interleaved[$0]) }
    }

    /// The power of `samples` at `frequency` (Goertzel filter), 48 kHz.
    static func power(_ samples: ArraySlice<Double>, at frequency: Double, sampleRate: Double = 48_000) -> Double {
        let coefficient = 2 * cos(2 * Double.pi * frequency / sampleRate)
        var previous = 0.0
        var beforePrevious = 0.0
        for sample in samples {
            let current = sample + coefficient * previous - beforePrevious
            beforePrevious = previous
            previous = current
        }
        return previous * previous + beforePrevious * beforePrevious - coefficient * previous * beforePrevious
    }

    /// The frequency with the most power among 100, 105, … 4000 Hz.
    static func dominantFrequency(_ samples: ArraySlice<Double>) -> Double {
        var best = (frequency: 0.0, power: -1.0)
        for frequency in stride(from: 100.0, through: 4000.0, by: 5.0) {
            let p = power(samples, at: frequency)
            if p > best.power { best = (frequency, p) }
        }
        return best.frequency
    }
}
