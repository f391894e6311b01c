import AirwaveMedia
import Testing

/// `FragmentedMP4Writer` parsed back box by box: the initialization segment's `Opus` sample
/// entry and `dOps`, and a media segment whose `trun` points exactly at its packets in `mdat`.
@Suite struct FragmentedMP4Tests {
    /// One parsed box: its type, its payload, and its children when it is a container.
    struct Box {
        let type: String
        let payload: [UInt8]

        static let containers: Set<String> = ["moov", "trak", "mdia", "minf", "stbl", "mvex", "moof", "traf", "dinf"]

        static func parse(_ bytes: [UInt8]) -> [Box] {
            var boxes: [Box] = []
            var offset = 0
            while offset + 8 <= bytes.count {
                let size = Int(u32(bytes, offset))
                #expect(size >= 8 && offset + size <= bytes.count, "box size \(size) at \(offset)")
                guard size >= 8, offset + size <= bytes.count else { break }
                let type = String(decoding: bytes[offset + 4..<offset + 8], as: UTF8.self)
                boxes.append(Box(type: type, payload: Array(bytes[offset + 8..<offset + size])))
                offset += size
            }
            #expect(offset == bytes.count, "boxes fill the bytes exactly")
            return boxes
        }

        var children: [Box] {
            switch type {
            case "stsd", "dref": Box.parse(Array(payload.dropFirst(8)))  // full box + entry count
            case "Opus": Box.parse(Array(payload.dropFirst(28)))  // AudioSampleEntry fields
            default: Box.containers.contains(type) ? Box.parse(payload) : []
            }
        }

        func find(_ path: String) -> Box? {
            var box: Box? = self
            for type in path.split(separator: "/") { box = box?.children.first { $0.type == type } }
            return box
        }
    }

    static func u16(_ bytes: [UInt8], _ offset: Int) -> UInt16 { UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1]) }
    static func u32(_ bytes: [UInt8], _ offset: Int) -> UInt32 { (0..<4).reduce(0) { $0 << 8 | UInt32(bytes[offset + $1]) } }
    static func u64(_ bytes: [UInt8], _ offset: Int) -> UInt64 { (0..<8).reduce(0) { $0 << 8 | UInt64(bytes[offset + $1]) } }

    @Test func theInitializationSegmentDescribesOneOpusTrack() throws {
        let head = OpusHead(channels: 1, preSkip: 312, inputSampleRate: 48_000, outputGain: -256)
        let boxes = Box.parse(FragmentedMP4Writer.initializationSegment(head: head))
        #expect(boxes.map(\.type) == ["ftyp", "moov"])
        let moov = boxes[1]
        #expect(moov.children.map(\.type) == ["mvhd", "trak", "mvex"])
        let mdhd = try #require(moov.find("trak/mdia/mdhd"))
        #expect(Self.u32(mdhd.payload, 12) == 48_000, "media time scale")
        let hdlr = try #require(moov.find("trak/mdia/hdlr"))
        #expect(String(decoding: hdlr.payload[8..<12], as: UTF8.self) == "soun")
        let entry = try #require(moov.find("trak/mdia/minf/stbl/stsd/Opus"))
        #expect(Self.u16(entry.payload, 6) == 1, "data reference index")
        #expect(Self.u16(entry.payload, 16) == 1, "channel count")
        #expect(Self.u32(entry.payload, 24) == 48_000 << 16, "sample rate 16.16")
        let dOps = try #require(entry.children.first { $0.type == "dOps" })
        // Version, channels, pre-skip, input rate, gain, mapping family: big-endian.
        #expect(dOps.payload == [0, 1, 0x01, 0x38, 0, 0, 0xBB, 0x80, 0xFF, 0x00, 0])
        let trex = try #require(moov.find("mvex/trex"))
        #expect(Self.u32(trex.payload, 4) == 1 && Self.u32(trex.payload, 8) == 1, "track 1, sample description 1")
    }

    @Test func aMediaSegmentsRunPointsAtItsPacketsInMdat() throws {
        let packets: [[UInt8]] = (0..<7).map { index in [0xF8] + [UInt8](repeating: UInt8(index), count: 40 + index * 13) }
        let bytes = FragmentedMP4Writer.mediaSegment(sequence: 5, baseTime: 96_000, packets: packets)
        let boxes = Box.parse(bytes)
        #expect(boxes.map(\.type) == ["styp", "moof", "mdat"])
        let moof = boxes[1]
        #expect(Self.u32(try #require(moof.find("mfhd")).payload, 4) == 5)
        let tfhd = try #require(moof.find("traf/tfhd"))
        #expect(Self.u32(tfhd.payload, 0) & 0xFF_FFFF == 0x02_0000 && Self.u32(tfhd.payload, 4) == 1, "default-base-is-moof, track 1")
        let tfdt = try #require(moof.find("traf/tfdt"))
        #expect(tfdt.payload[0] == 1 && Self.u64(tfdt.payload, 4) == 96_000)
        let trun = try #require(moof.find("traf/trun")).payload
        #expect(Self.u32(trun, 4) == 7, "sample count")
        let dataOffset = Int(Self.u32(trun, 8))
        // The offset counts from the moof's first byte; the packets follow back to back.
        let moofStart = 8 + boxes[0].payload.count
        var position = moofStart + dataOffset
        #expect(position == moofStart + 8 + moof.payload.count + 8, "the first sample is mdat's first byte")
        for (index, packet) in packets.enumerated() {
            #expect(Self.u32(trun, 12 + index * 8) == 960, "duration")
            let size = Int(Self.u32(trun, 16 + index * 8))
            #expect(Array(bytes[position..<position + size]) == packet)
            position += size
        }
        #expect(position == bytes.count)
    }
}
