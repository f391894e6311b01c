extension RTCPPacket {
    /// Most packets accepted in one compound packet.
    public static let maximumCompoundCount = 64

    /// Parses a compound RTCP packet: every packet's version must be 2 and its length must fit;
    /// the lengths must add up to the datagram exactly; padding is only allowed on the last.
    public static func parseCompound(_ bytes: ArraySlice<UInt8>) throws(RTPError) -> [RTCPPacket] {
        var reader = ByteReader(bytes)
        var packets: [RTCPPacket] = []
        guard reader.remaining >= 4 else { throw .tooShort }
        while reader.remaining > 0 {
            guard packets.count < maximumCompoundCount else { throw .badLength }
            guard let first = reader.readUInt8(), let packetType = reader.readUInt8(), let words = reader.readUInt16()
            else { throw .tooShort }
            guard first >> 6 == 2 else { throw .badVersion }
            guard var body = reader.readBytes(Int(words) * 4) else { throw .badLength }
            if first & 0x20 != 0 {
                guard reader.remaining == 0, let count = body.last, count > 0, Int(count) <= body.count else {
                    throw .badPadding
                }
                body = body.dropLast(Int(count))
            }
            packets.append(try parseOne(count: first & 0x1F, packetType: packetType, body: body))
        }
        return packets
    }

    public static func parseCompound(_ bytes: [UInt8]) throws(RTPError) -> [RTCPPacket] {
        try parseCompound(bytes[...])
    }

    private static func parseOne(count: UInt8, packetType: UInt8, body: ArraySlice<UInt8>) throws(RTPError) -> RTCPPacket {
        var reader = ByteReader(body)
        switch packetType {
        case senderReportType:
            guard let ssrc = reader.readUInt32(), let ntpHigh = reader.readUInt32(), let ntpLow = reader.readUInt32(),
                  let rtpTimestamp = reader.readUInt32(), let packetCount = reader.readUInt32(),
                  let octetCount = reader.readUInt32()
            else { throw .tooShort }
            let reports = try readReportBlocks(&reader, count: count)
            return .senderReport(SenderReport(
                ssrc: ssrc, ntpTimestamp: UInt64(ntpHigh) << 32 | UInt64(ntpLow), rtpTimestamp: rtpTimestamp,
                packetCount: packetCount, octetCount: octetCount, reports: reports))
        case receiverReportType:
            guard let ssrc = reader.readUInt32() else { throw .tooShort }
            return .receiverReport(ReceiverReport(ssrc: ssrc, reports: try readReportBlocks(&reader, count: count)))
        case transportFeedbackType where count == 1:
            guard let sender = reader.readUInt32(), let media = reader.readUInt32() else { throw .truncatedFeedback }
            guard reader.remaining > 0, reader.remaining % 4 == 0 else { throw .truncatedFeedback }
            var lost: [UInt16] = []
            while reader.remaining > 0 {
                guard let packetID = reader.readUInt16(), let bitmask = reader.readUInt16() else { throw .truncatedFeedback }
                lost.append(packetID)
                for bit in 0..<16 where bitmask & (1 << bit) != 0 {
                    lost.append(packetID &+ UInt16(bit + 1))
                }
            }
            return .nack(senderSSRC: sender, mediaSSRC: media, lost: lost)
        case payloadFeedbackType where count == 1:
            guard let sender = reader.readUInt32(), let media = reader.readUInt32() else { throw .truncatedFeedback }
            return .pli(senderSSRC: sender, mediaSSRC: media)
        case payloadFeedbackType where count == 4:
            guard let sender = reader.readUInt32(), reader.readUInt32() != nil else { throw .truncatedFeedback }
            guard reader.remaining > 0, reader.remaining % 8 == 0 else { throw .truncatedFeedback }
            var entries: [FIREntry] = []
            while reader.remaining > 0 {
                guard let ssrc = reader.readUInt32(), let sequence = reader.readUInt8(), reader.skip(3) else {
                    throw .truncatedFeedback
                }
                entries.append(FIREntry(ssrc: ssrc, sequenceNumber: sequence))
            }
            return .fir(senderSSRC: sender, entries: entries)
        default:
            return .other(packetType: packetType, count: count, body: Array(body))
        }
    }

    private static func readReportBlocks(_ reader: inout ByteReader, count: UInt8) throws(RTPError) -> [ReportBlock] {
        var blocks: [ReportBlock] = []
        for _ in 0..<Int(count) {
            guard let ssrc = reader.readUInt32(), let fraction = reader.readUInt8(), let lost = reader.readUInt24(),
                  let highest = reader.readUInt32(), let jitter = reader.readUInt32(), let lsr = reader.readUInt32(),
                  let dlsr = reader.readUInt32()
            else { throw .tooShort }
            // Sign-extend the 24-bit cumulative loss.
            let cumulative = Int32(bitPattern: lost & 0x80_0000 != 0 ? lost | 0xFF00_0000 : lost)
            blocks.append(ReportBlock(
                ssrc: ssrc, fractionLost: fraction, cumulativeLost: cumulative, highestSequence: highest,
                jitter: jitter, lastSenderReport: lsr, delaySinceLastSenderReport: dlsr))
        }
        return blocks
    }

    /// This packet's bytes (header included).
    public func serialized() -> [UInt8] {
        var body: [UInt8] = []
        let count: UInt8
        let packetType: UInt8
        switch self {
        case let .senderReport(report):
            packetType = Self.senderReportType
            count = UInt8(min(report.reports.count, 31))
            body.appendUInt32(report.ssrc)
            body.appendUInt32(UInt32(truncatingIfNeeded: report.ntpTimestamp >> 32))
            body.appendUInt32(UInt32(truncatingIfNeeded: report.ntpTimestamp))
            body.appendUInt32(report.rtpTimestamp)
            body.appendUInt32(report.packetCount)
            body.appendUInt32(report.octetCount)
            for block in report.reports.prefix(31) { Self.append(block, to: &body) }
        case let .receiverReport(report):
            packetType = Self.receiverReportType
            count = UInt8(min(report.reports.count, 31))
            body.appendUInt32(report.ssrc)
            for block in report.reports.prefix(31) { Self.append(block, to: &body) }
        case let .nack(sender, media, lost):
            packetType = Self.transportFeedbackType
            count = 1
            body.appendUInt32(sender)
            body.appendUInt32(media)
            for (packetID, bitmask) in Self.nackItems(lost) {
                body.appendUInt16(packetID)
                body.appendUInt16(bitmask)
            }
        case let .pli(sender, media):
            packetType = Self.payloadFeedbackType
            count = 1
            body.appendUInt32(sender)
            body.appendUInt32(media)
        case let .fir(sender, entries):
            packetType = Self.payloadFeedbackType
            count = 4
            body.appendUInt32(sender)
            body.appendUInt32(0)
            for entry in entries {
                body.appendUInt32(entry.ssrc)
                body.append(entry.sequenceNumber)
                body += [0, 0, 0]
            }
        case let .other(type, otherCount, otherBody):
            packetType = type
            count = otherCount & 0x1F
            body = otherBody
            body.padToFourBytes()
        }
        var bytes: [UInt8] = [0x80 | count, packetType]
        bytes.appendUInt16(UInt16(truncatingIfNeeded: body.count / 4))
        return bytes + body
    }

    /// Serializes several packets as one compound packet.
    public static func serializeCompound(_ packets: [RTCPPacket]) -> [UInt8] {
        packets.reduce(into: []) { $0 += $1.serialized() }
    }

    private static func append(_ block: ReportBlock, to body: inout [UInt8]) {
        body.appendUInt32(block.ssrc)
        body.append(block.fractionLost)
        body.appendUInt24(UInt32(bitPattern: block.cumulativeLost) & 0xFF_FFFF)
        body.appendUInt32(block.highestSequence)
        body.appendUInt32(block.jitter)
        body.appendUInt32(block.lastSenderReport)
        body.appendUInt32(block.delaySinceLastSenderReport)
    }

    /// Packs lost sequence numbers into (PID, BLP) items: each item covers PID and the 16 after.
    static func nackItems(_ lost: [UInt16]) -> [(UInt16, UInt16)] {
        var items: [(UInt16, UInt16)] = []
        for sequence in lost {
            if let last = items.last {
                let distance = sequence &- last.0
                if distance >= 1, distance <= 16 {
                    items[items.count - 1].1 |= 1 << (distance - 1)
                    continue
                }
                if distance == 0 { continue }
            }
            items.append((sequence, 0))
        }
        return items
    }
}
