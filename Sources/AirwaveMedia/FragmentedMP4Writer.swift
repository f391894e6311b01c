/// Writes fragmented MP4 (ISO/IEC 14496-12) carrying Opus ("Encapsulation of Opus in ISO Base
/// Media File Format", opus-codec.org): the initialization segment (`ftyp`, `moov` with an
/// `Opus` sample entry and its `dOps` box, `mvex`) and media segments (`styp`, `moof`, `mdat`),
/// as HLS (RFC 8216, version 7) serves them. One audio track, id 1, time scale 48 kHz.
///
/// Pure: bytes in, bytes out.
public enum FragmentedMP4Writer {
    /// The track's time scale: Opus always runs at 48 kHz in MP4.
    public static let timescale: UInt32 = 48_000
    static let trackID: UInt32 = 1

    /// The initialization segment for an Opus track described by `head`.
    public static func initializationSegment(head: OpusHead) -> [UInt8] {
        var ftyp = MP4Box("ftyp")
        ftyp.fourCC("iso6")
        ftyp.u32(0)
        for brand in ["iso6", "cmfc", "mp41"] { ftyp.fourCC(brand) }

        var mvhd = MP4Box.full("mvhd", version: 0, flags: 0)
        mvhd.u32(0)  // creation time
        mvhd.u32(0)  // modification time
        mvhd.u32(1_000)  // movie time scale
        mvhd.u32(0)  // duration: unknown (fragmented)
        mvhd.u32(0x0001_0000)  // rate 1.0
        mvhd.u16(0x0100)  // volume 1.0
        mvhd.zeros(10)
        mvhd.matrix()
        mvhd.zeros(24)  // pre_defined
        mvhd.u32(trackID + 1)  // next track id

        var tkhd = MP4Box.full("tkhd", version: 0, flags: 0x3)  // enabled, in movie
        tkhd.u32(0)
        tkhd.u32(0)
        tkhd.u32(trackID)
        tkhd.u32(0)  // reserved
        tkhd.u32(0)  // duration
        tkhd.zeros(8)
        tkhd.u16(0)  // layer
        tkhd.u16(1)  // alternate group: audio
        tkhd.u16(0x0100)  // volume 1.0
        tkhd.u16(0)
        tkhd.matrix()
        tkhd.u32(0)  // width
        tkhd.u32(0)  // height

        var mdhd = MP4Box.full("mdhd", version: 0, flags: 0)
        mdhd.u32(0)
        mdhd.u32(0)
        mdhd.u32(timescale)
        mdhd.u32(0)
        mdhd.u16(0x55C4)  // language "und"
        mdhd.u16(0)

        var hdlr = MP4Box.full("hdlr", version: 0, flags: 0)
        hdlr.u32(0)
        hdlr.fourCC("soun")
        hdlr.zeros(12)
        hdlr.bytes(Array("Airwave event mix".utf8) + [0])

        var smhd = MP4Box.full("smhd", version: 0, flags: 0)
        smhd.u16(0)  // balance
        smhd.u16(0)
        var url = MP4Box.full("url ", version: 0, flags: 0x1)  // media in this file
        url.bytes([])
        var dref = MP4Box.full("dref", version: 0, flags: 0)
        dref.u32(1)
        dref.child(url)
        var dinf = MP4Box("dinf")
        dinf.child(dref)

        var stsd = MP4Box.full("stsd", version: 0, flags: 0)
        stsd.u32(1)
        stsd.child(opusSampleEntry(head))
        var stbl = MP4Box("stbl")
        stbl.child(stsd)
        for name in ["stts", "stsc", "stco"] {
            var empty = MP4Box.full(name, version: 0, flags: 0)
            empty.u32(0)
            stbl.child(empty)
        }
        var stsz = MP4Box.full("stsz", version: 0, flags: 0)
        stsz.u32(0)
        stsz.u32(0)
        stbl.child(stsz)

        var minf = MP4Box("minf")
        minf.child(smhd)
        minf.child(dinf)
        minf.child(stbl)
        var mdia = MP4Box("mdia")
        mdia.child(mdhd)
        mdia.child(hdlr)
        mdia.child(minf)
        var trak = MP4Box("trak")
        trak.child(tkhd)
        trak.child(mdia)

        var trex = MP4Box.full("trex", version: 0, flags: 0)
        trex.u32(trackID)
        trex.u32(1)  // sample description index
        trex.u32(0)  // default duration
        trex.u32(0)  // default size
        trex.u32(0)  // default flags
        var mvex = MP4Box("mvex")
        mvex.child(trex)

        var moov = MP4Box("moov")
        moov.child(mvhd)
        moov.child(trak)
        moov.child(mvex)
        return ftyp.encoded + moov.encoded
    }

    /// The `Opus` sample entry (an AudioSampleEntry) with its `dOps` box.
    static func opusSampleEntry(_ head: OpusHead) -> MP4Box {
        var entry = MP4Box("Opus")
        entry.zeros(6)
        entry.u16(1)  // data reference index
        entry.zeros(8)
        entry.u16(UInt16(head.channels))
        entry.u16(16)  // sample size
        entry.u16(0)
        entry.u16(0)
        entry.u32(timescale << 16)  // sample rate, 16.16
        // dOps: the OpusHead fields after the magic and version, big-endian (the spec's byte order).
        var dOps = MP4Box("dOps")
        dOps.bytes([0])  // version
        dOps.bytes([UInt8(head.channels)])
        dOps.u16(UInt16(head.preSkip))
        dOps.u32(UInt32(head.inputSampleRate))
        dOps.u16(UInt16(bitPattern: head.outputGain))
        dOps.bytes([head.mappingFamily])
        if head.mappingFamily != 0 { dOps.bytes(head.channelMappingTable) }
        entry.child(dOps)
        return entry
    }

    /// One media segment: `styp`, then one fragment (`moof` + `mdat`) holding `packets`, each
    /// `samplesPerPacket` long, starting at `baseTime` (48 kHz) with fragment number `sequence`.
    public static func mediaSegment(sequence: UInt32, baseTime: UInt64, packets: [[UInt8]], samplesPerPacket: UInt32 = 960) -> [UInt8] {
        var styp = MP4Box("styp")
        styp.fourCC("msdh")
        styp.u32(0)
        for brand in ["msdh", "msix"] { styp.fourCC(brand) }

        var mfhd = MP4Box.full("mfhd", version: 0, flags: 0)
        mfhd.u32(sequence)
        var tfhd = MP4Box.full("tfhd", version: 0, flags: 0x02_0000)  // default-base-is-moof
        tfhd.u32(trackID)
        var tfdt = MP4Box.full("tfdt", version: 1, flags: 0)
        tfdt.u64(baseTime)
        // data-offset, sample-duration and sample-size present.
        var trun = MP4Box.full("trun", version: 0, flags: 0x0001 | 0x0100 | 0x0200)
        trun.u32(UInt32(packets.count))
        let dataOffsetPosition = trun.payloadCount
        trun.u32(0)  // patched below, once the moof's size is known
        for packet in packets {
            trun.u32(samplesPerPacket)
            trun.u32(UInt32(packet.count))
        }
        var traf = MP4Box("traf")
        traf.child(tfhd)
        traf.child(tfdt)
        let trunOffsetInTraf = traf.payloadCount
        traf.child(trun)
        var moof = MP4Box("moof")
        moof.child(mfhd)
        let trafOffsetInMoof = moof.payloadCount
        moof.child(traf)

        var moofBytes = moof.encoded
        // The first sample's offset from the start of the moof: past it and the mdat header.
        let dataOffset = UInt32(moofBytes.count + 8)
        let patch = 8 + trafOffsetInMoof + 8 + trunOffsetInTraf + 8 + dataOffsetPosition
        for index in 0..<4 { moofBytes[patch + index] = UInt8(truncatingIfNeeded: dataOffset >> (24 - 8 * index)) }

        var mdat = MP4Box("mdat")
        for packet in packets { mdat.bytes(packet) }
        return styp.encoded + moofBytes + mdat.encoded
    }
}

/// One ISO BMFF box under construction: a type, a payload, the size written when encoded.
struct MP4Box {
    let type: String
    private(set) var payload: [UInt8] = []

    init(_ type: String) {
        precondition(type.utf8.count == 4, "a box type has four characters")
        self.type = type
    }

    /// A full box: version and flags first.
    static func full(_ type: String, version: UInt8, flags: UInt32) -> MP4Box {
        var box = MP4Box(type)
        box.u32(UInt32(version) << 24 | flags & 0xFF_FFFF)
        return box
    }

    var payloadCount: Int { payload.count }

    var encoded: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(8 + payload.count)
        let size = UInt32(8 + payload.count)
        for shift in stride(from: 24, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: size >> UInt32(shift))) }
        out += Array(type.utf8)
        out += payload
        return out
    }

    mutating func u16(_ value: UInt16) { payload += [UInt8(value >> 8), UInt8(truncatingIfNeeded: value)] }
    mutating func u32(_ value: UInt32) { for shift in stride(from: 24, through: 0, by: -8) { payload.append(UInt8(truncatingIfNeeded: value >> UInt32(shift))) } }
    mutating func u64(_ value: UInt64) { for shift in stride(from: 56, through: 0, by: -8) { payload.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) } }
    mutating func fourCC(_ code: String) { payload += Array(code.utf8) }
    mutating func zeros(_ count: Int) { payload += [UInt8](repeating: 0, count: count) }
    mutating func bytes(_ bytes: [UInt8]) { payload += bytes }
    mutating func child(_ box: MP4Box) { payload += box.encoded }

    /// The unity transformation matrix of `mvhd` and `tkhd`.
    mutating func matrix() {
        for value: UInt32 in [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000] { u32(value) }
    }
}
