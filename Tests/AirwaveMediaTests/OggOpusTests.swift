import AirwaveMedia
import AirwaveTestSupport
import Foundation
import Testing

@Suite struct OggOpusTests {
    /// The granule positions on the file's pages, read straight from the page headers.
    private static func pageGranules(_ bytes: [UInt8]) -> [(granule: Int64, flags: UInt8)] {
        var pages: [(Int64, UInt8)] = []
        var offset = 0
        while offset + 27 <= bytes.count, Array(bytes[offset..<offset + 4]) == Array("OggS".utf8) {
            let flags = bytes[offset + 5]
            var granule: UInt64 = 0
            for index in (0..<8).reversed() { granule = granule << 8 | UInt64(bytes[offset + 6 + index]) }
            let segments = Int(bytes[offset + 26])
            let bodyLength = bytes[offset + 27..<offset + 27 + segments].reduce(0) { $0 + Int($1) }
            pages.append((Int64(bitPattern: granule), flags))
            offset += 27 + segments + bodyLength
        }
        return pages
    }

    @Test func speechPacketsRoundTripByteIdentical() throws {
        let packets = try MediaFixtures.readPackets("speech.opus-packets")
        let metadata = try MediaFixtures.speechMetadata()
        let folder = try TemporaryDirectory(prefix: "airwave-ogg")
        defer { folder.remove() }
        let path = folder.path("speech.opus")

        let writer = try OggOpusWriter(
            path: path, head: OpusHead(channels: metadata.channels, preSkip: metadata.preSkip),
            tags: OpusTags(vendor: "airwave tests", comments: ["TITLE=speech"]))
        for packet in packets { try writer.write(packet) }
        let expectedEnd = Int64(metadata.preSkip + packets.count * 960)
        #expect(writer.granulePosition == expectedEnd)
        try writer.close()

        let (head, tags, read) = try OggOpusReader.read(path: path)
        #expect(head.channels == metadata.channels)
        #expect(head.preSkip == metadata.preSkip)
        #expect(head.inputSampleRate == 48_000)
        #expect(tags.vendor == "airwave tests")
        #expect(tags.comments == ["TITLE=speech"])
        #expect(read.count == packets.count)
        #expect(read.map(\.bytes) == packets)
        #expect(read.allSatisfy { $0.samplesPerChannel == 960 })
        #expect(read.last?.isEndOfStream == true)
        #expect(read.dropLast().allSatisfy { !$0.isEndOfStream })

        // Every granule the reader reports is the pre-skip plus the samples up to that packet.
        var total = Int64(metadata.preSkip)
        for packet in read {
            total += Int64(packet.samplesPerChannel)
            if let granule = packet.granulePosition { #expect(granule == total) }
        }
        #expect(read.last?.granulePosition == expectedEnd)
    }

    @Test func pagesAreFlushedAtLeastEverySecondAndHeadersStandAlone() throws {
        let packets = try MediaFixtures.readPackets("speech.opus-packets")
        let folder = try TemporaryDirectory(prefix: "airwave-ogg")
        defer { folder.remove() }
        let path = folder.path("pages.opus")
        let writer = try OggOpusWriter(path: path)
        for packet in packets { try writer.write(packet) }
        // Before close: the file already holds the headers and pages up to the last second.
        let partial = try OggOpusReader.read(path: path)
        #expect(partial.packets.count >= packets.count - 60)
        #expect(partial.packets.map(\.bytes) == Array(packets.prefix(partial.packets.count)))
        try writer.close()

        let pages = Self.pageGranules(Array(try Data(contentsOf: URL(fileURLWithPath: path))))
        #expect(pages.count >= 5)
        #expect(pages[0].granule == 0 && pages[0].flags & 0x02 != 0) // OpusHead, BOS
        #expect(pages[1].granule == 0) // OpusTags
        #expect(pages.last!.flags & 0x04 != 0) // EOS
        #expect(pages.dropLast().allSatisfy { $0.flags & 0x04 == 0 })
        var previous: Int64 = 312
        for page in pages.dropFirst(2) where page.granule >= 0 {
            #expect(page.granule > previous)
            #expect(page.granule - previous <= 48_000 + 960)
            previous = page.granule
        }
        #expect(previous == Int64(312 + packets.count * 960))
    }

    @Test func endTrimLowersTheFinalGranule() throws {
        let packets = try MediaFixtures.readPackets("speech.opus-packets")
        let metadata = try MediaFixtures.speechMetadata()
        let folder = try TemporaryDirectory(prefix: "airwave-ogg")
        defer { folder.remove() }
        let path = folder.path("trim.opus")
        let writer = try OggOpusWriter(path: path, head: OpusHead(channels: 1, preSkip: metadata.preSkip))
        for packet in packets { try writer.write(packet) }
        try writer.close(endTrim: packets.count * 960 + metadata.preSkip - metadata.finalGranule)
        let read = try OggOpusReader.read(path: path)
        #expect(read.packets.last?.granulePosition == Int64(metadata.finalGranule))
        #expect(read.packets.map(\.bytes) == packets)
    }

    @Test func lossIsFilledWithConcealmentPackets() throws {
        let packets = try MediaFixtures.readPackets("speech.opus-packets")
        let folder = try TemporaryDirectory(prefix: "airwave-ogg")
        defer { folder.remove() }
        let path = folder.path("loss.opus")
        let writer = try OggOpusWriter(path: path)
        try writer.write(packets[0])
        #expect(try writer.writeLoss(samplesPerChannel: 3 * 960 + 100) == 3 * 960)
        try writer.write(packets[1])
        try writer.close()
        let read = try OggOpusReader.read(path: path).packets
        #expect(read.map(\.bytes) == [packets[0], [0xF8], [0xF8], [0xF8], packets[1]])
        #expect(read.last?.granulePosition == Int64(312 + 5 * 960))
        // The filler decodes (as concealment) with libopus.
        let decoder = try OpusDecoder(channels: 1)
        for packet in read { #expect(try decoder.decode(packet.bytes).count == 960) }
    }

    @Test func packetsSpanningPagesAreReassembled() throws {
        // 70 000-byte packets (a 20 ms TOC byte, then filler) need more than 255 lacing values.
        var generator = SplitMix64(seed: 7)
        let packets: [[UInt8]] = (0..<40).map { index in
            [0xF8] + (0..<(index % 5 == 2 ? 70_000 : 600)).map { _ in UInt8.random(in: 0...255, using: &generator) }
        }
        let folder = try TemporaryDirectory(prefix: "airwave-ogg")
        defer { folder.remove() }
        let path = folder.path("span.opus")
        let writer = try OggOpusWriter(path: path)
        for packet in packets { try writer.write(packet) }
        try writer.close()
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        let spanPages = Self.pageGranules(bytes)
        #expect(spanPages.contains { $0.flags & 0x01 != 0 }) // a page that continues a packet
        let read = try OggOpusReader(bytes: bytes).readAll()
        #expect(read.map(\.bytes) == packets)
        #expect(read.last?.granulePosition == Int64(312 + 40 * 960))
    }

    @Test func headersRoundTripAndRejectGarbage() throws {
        let head = OpusHead(channels: 2, preSkip: 3840, inputSampleRate: 44_100, outputGain: -256)
        #expect(try OpusHead(parsing: head.encoded) == head)
        let tags = OpusTags(vendor: "v", comments: ["A=1", "B=ü"])
        #expect(try OpusTags(parsing: tags.encoded) == tags)
        #expect(throws: OggOpusError.self) { try OpusHead(parsing: Array("OpusHeaX".utf8) + [1, 1] + Array(repeating: 0, count: 9)) }
        #expect(throws: OggOpusError.self) { try OggOpusReader(bytes: Array("not an ogg file at all".utf8)) }
        #expect(throws: OggOpusError.self) { try OggOpusReader(bytes: []) }
        #expect(throws: OggOpusError.self) { try OggOpusWriter(path: "/nonexistent-dir/x.opus") }
        let folder = try TemporaryDirectory(prefix: "airwave-ogg")
        defer { folder.remove() }
        #expect(throws: OggOpusError.self) { try OggOpusWriter(path: folder.path("x"), head: OpusHead(channels: 3)) }
    }

    @Test func outputPassesOpusinfoAndFfmpeg() throws {
        let packets = try MediaFixtures.readPackets("speech.opus-packets")
        let folder = try TemporaryDirectory(prefix: "airwave-ogg")
        defer { folder.remove() }
        let path = folder.path("tools.opus")
        let writer = try OggOpusWriter(path: path)
        for packet in packets { try writer.write(packet) }
        try writer.close()

        if let opusinfo = Self.which("opusinfo") {
            let (status, output) = try Self.run(opusinfo, [path])
            #expect(status == 0, "opusinfo: \(output)")
            #expect(!output.lowercased().contains("error"), "opusinfo: \(output)")
            #expect(!output.lowercased().contains("warning"), "opusinfo: \(output)")
        }
        if let ffmpeg = Self.which("ffmpeg") {
            let (status, output) = try Self.run(ffmpeg, ["-v", "error", "-i", path, "-f", "null", "-"])
            #expect(status == 0, "ffmpeg: \(output)")
            #expect(output.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "ffmpeg: \(output)")
        }
    }

    private static func which(_ tool: String) -> String? {
        for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let candidate = "\(directory)/\(tool)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    private static func run(_ executable: String, _ arguments: [String]) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
