import AirwaveMedia
import Testing

/// The page builder of `GET /listen/` (`OggPageStream`): pages parsed back with libogg
/// (`OggOpusReader`, which checks every page's CRC), from the first byte and from a late join.
@Suite struct ListenOggPageStreamTests {
    /// A 20 ms packet of `size` bytes: a CELT fullband TOC (code 0), then filler.
    static func packet(_ index: Int, size: Int = 80) -> [UInt8] {
        [0xF8] + (1..<size).map { UInt8(truncatingIfNeeded: index &* 31 &+ $0) }
    }

    /// The page headers in a byte string: flags, granule, sequence, lacing count.
    static func pages(_ bytes: [UInt8]) -> [(flags: UInt8, granule: Int64, sequence: UInt32, segments: Int)] {
        var pages: [(UInt8, Int64, UInt32, Int)] = []
        var offset = 0
        while offset + 27 <= bytes.count {
            #expect(Array(bytes[offset..<offset + 4]) == Array("OggS".utf8))
            var granule: UInt64 = 0
            for index in (0..<8).reversed() { granule = granule << 8 | UInt64(bytes[offset + 6 + index]) }
            var sequence: UInt32 = 0
            for index in (0..<4).reversed() { sequence = sequence << 8 | UInt32(bytes[offset + 18 + index]) }
            let segments = Int(bytes[offset + 26])
            let body = bytes[offset + 27..<offset + 27 + segments].reduce(0) { $0 + Int($1) }
            pages.append((bytes[offset + 5], Int64(bitPattern: granule), sequence, segments))
            offset += 27 + segments + body
        }
        #expect(offset == bytes.count, "whole pages only")
        return pages
    }

    @Test func aWholeStreamReadsBackPacketForPacket() throws {
        var stream = OggPageStream(serialNumber: 0x1234_5678, tags: OpusTags(vendor: "airwave", comments: ["ENCODER=test"]))
        var bytes = stream.headerPages
        let packets = (0..<25).map { Self.packet($0, size: [80, 255, 300, 510][$0 % 4]) }
        var pagesMade = 0
        for (index, packet) in packets.enumerated() {
            let page = stream.append(packet, samples: 960)
            // A page exactly every 10 packets (200 ms), none in between.
            #expect((page != nil) == ((index + 1) % 10 == 0), "packet \(index)")
            if let page {
                bytes += page
                pagesMade += 1
            }
        }
        bytes += stream.endPage()

        let reader = try OggOpusReader(bytes: bytes)
        #expect(reader.head == OpusHead(channels: 1))
        #expect(reader.tags.comments == ["ENCODER=test"])
        let read = try reader.readAll()
        #expect(read.map(\.bytes) == packets)
        #expect(read.last?.isEndOfStream == true)
        #expect(read.dropLast().allSatisfy { !$0.isEndOfStream })

        let headers = Self.pages(bytes)
        #expect(headers.map(\.sequence) == [0, 1, 2, 3, 4])
        #expect(headers.map(\.flags) == [0x02, 0, 0, 0, 0x04], "beginning of stream on OpusHead, end of stream on the last page")
        // Each audio page's granule is the samples up to its last packet.
        #expect(headers.map(\.granule) == [0, 0, 9_600, 19_200, 24_000])
        #expect(pagesMade == 2 && stream.audioPageCount == 2)
    }

    @Test func aLateListenerReadsFromTheHeadersAndTheNextPage() throws {
        var stream = OggPageStream(serialNumber: 7)
        var pages: [[UInt8]] = []
        let packets = (0..<40).map { Self.packet($0) }
        for packet in packets {
            if let page = stream.append(packet, samples: 960) { pages.append(page) }
        }
        // Joined after two pages: the headers, then pages 3 and 4, then the end.
        let late = stream.headerPages + pages[2] + pages[3] + stream.endPage()
        let read = try OggOpusReader(bytes: late).readAll()
        // At a page boundary the end page carries one concealed 20 ms frame with the flag.
        #expect(read.map(\.bytes) == Array(packets[20..<40]) + [[0xF8]])
        #expect(read.last?.granulePosition == 39_360)
        #expect(read.last?.isEndOfStream == true)
        #expect(Self.pages(late).map(\.sequence) == [0, 1, 4, 5, 6])
    }

    @Test func theEndPageLeavesTheStreamAsItWas() throws {
        var stream = OggPageStream(serialNumber: 9)
        for index in 0..<3 { #expect(stream.append(Self.packet(index), samples: 960) == nil) }
        let end = stream.endPage()
        #expect(stream.endPage() == end, "every listener closed at this point gets the same bytes")
        #expect(Self.pages(end).map(\.segments) == [3])
        // The stream goes on for listeners who stay (a listener closed on its own).
        for index in 3..<10 { _ = stream.append(Self.packet(index), samples: 960) }
        #expect(stream.audioPageCount == 1)
        // At a page boundary the end page holds one concealed frame, 20 ms past the last page.
        let boundary = Self.pages(stream.endPage())
        #expect(boundary.map(\.segments) == [1] && boundary.map(\.granule) == [10_560] && boundary.map(\.flags) == [0x04])
    }

    @Test func aPageNeverHoldsMoreThan255LacingValues() throws {
        // 7,000-byte packets take 28 lacing values each: nine fit on a page, the tenth starts the next.
        var stream = OggPageStream(serialNumber: 3)
        var pages: [[UInt8]] = []
        let packets = (0..<20).map { Self.packet($0, size: 7_000) }
        for packet in packets {
            if let page = stream.append(packet, samples: 960) { pages.append(page) }
        }
        let headers = Self.pages(pages.flatMap { $0 })
        #expect(headers.allSatisfy { $0.segments <= 255 })
        #expect(headers.map(\.segments) == [252, 252])
        let read = try OggOpusReader(bytes: stream.headerPages + pages.flatMap { $0 } + stream.endPage()).readAll()
        #expect(read.map(\.bytes) == packets)
    }
}
