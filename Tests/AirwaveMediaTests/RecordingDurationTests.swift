import AirwaveMedia
import AirwaveTestSupport
import Foundation
import Testing

/// `MixRecorder.durationMilliseconds(ofFileAt:)` reads a recording's length from its last page
/// (issue 13, finding 8: listing recordings parsed every file whole).
@Suite("Recording duration")
struct RecordingDurationTests {
    /// What listing did before: read every packet and keep the last granule position.
    static func parsedDuration(_ path: String) throws -> Int {
        let reader = try OggOpusReader(path: path)
        var last = Int64(reader.head.preSkip)
        while let packet = try reader.nextPacket() {
            if let granule = packet.granulePosition { last = granule }
        }
        return Int(max(0, last - Int64(reader.head.preSkip)) / 48)
    }

    static func record(_ packets: Int, bytes: Int, in folder: TemporaryDirectory, as name: String) throws -> String {
        let path = folder.path(name)
        let recorder = try MixRecorder(path: path)
        // A CELT 20 ms TOC followed by filler: the writer takes the duration it is given.
        let packet = [UInt8(0xF8)] + [UInt8](repeating: 0x55, count: bytes - 1)
        for _ in 0..<packets { try recorder.write(packet) }
        try recorder.close()
        return path
    }

    @Test("a file longer than one page read from its end: the same duration as reading every packet")
    func longFile() throws {
        // 1,500 packets of 200 bytes: about 300 KB, several times the tail that is read.
        let folder = try TemporaryDirectory(prefix: "airwave-duration")
        defer { folder.remove() }
        let path = try Self.record(1_500, bytes: 200, in: folder, as: "long.opus")
        let size = try #require(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        #expect(size > 4 * 65_307)
        let duration = try #require(MixRecorder.durationMilliseconds(ofFileAt: path))
        #expect(duration == (1_500 * 960 - MixRecorder.preSkip) / 48)
        #expect(duration == (try Self.parsedDuration(path)))
    }

    @Test("short files, an empty recording, a page cut short by a crash, and files that are not Ogg Opus")
    func edgeCases() throws {
        let folder = try TemporaryDirectory(prefix: "airwave-duration")
        defer { folder.remove() }
        let short = try Self.record(3, bytes: 50, in: folder, as: "short.opus")
        #expect(MixRecorder.durationMilliseconds(ofFileAt: short) == (try Self.parsedDuration(short)))
        #expect(MixRecorder.durationMilliseconds(ofFileAt: short) == (3 * 960 - MixRecorder.preSkip) / 48)

        let empty = try Self.record(0, bytes: 1, in: folder, as: "empty.opus")
        #expect(MixRecorder.durationMilliseconds(ofFileAt: empty) == (try Self.parsedDuration(empty)))

        // A crash in the middle of the last page: the page before it counts.
        let cut = try Self.record(1_000, bytes: 200, in: folder, as: "cut.opus")
        let whole = try Data(contentsOf: URL(fileURLWithPath: cut))
        try whole.dropLast(100).write(to: URL(fileURLWithPath: cut))
        let duration = try #require(MixRecorder.durationMilliseconds(ofFileAt: cut))
        #expect(duration == (try Self.parsedDuration(cut)))
        #expect(duration < (1_000 * 960 - MixRecorder.preSkip) / 48)
        #expect(duration > (1_000 * 960 - MixRecorder.pageDuration - 960 - MixRecorder.preSkip) / 48)

        let notOgg = folder.path("not-ogg.opus")
        try Data(repeating: 7, count: 100_000).write(to: URL(fileURLWithPath: notOgg))
        #expect(MixRecorder.durationMilliseconds(ofFileAt: notOgg) == nil)
        #expect(MixRecorder.durationMilliseconds(ofFileAt: "/nonexistent/1.opus") == nil)
    }
}
