/// One RTCP packet of a compound packet (RFC 3550 §6, RFC 4585, RFC 5104). Types the server
/// does not act on are kept as `other`.
public enum RTCPPacket: Equatable, Sendable {
    case senderReport(SenderReport)
    case receiverReport(ReceiverReport)
    /// Generic NACK (RTPFB FMT 1): lost sequence numbers of `mediaSSRC`.
    case nack(senderSSRC: UInt32, mediaSSRC: UInt32, lost: [UInt16])
    /// Picture Loss Indication (PSFB FMT 1).
    case pli(senderSSRC: UInt32, mediaSSRC: UInt32)
    /// Full Intra Request (PSFB FMT 4): one entry per requested SSRC.
    case fir(senderSSRC: UInt32, entries: [FIREntry])
    /// SDES, BYE, APP, XR, other feedback: type and the bytes after the 4-byte header.
    case other(packetType: UInt8, count: UInt8, body: [UInt8])

    public struct ReportBlock: Equatable, Sendable {
        public var ssrc: UInt32
        public var fractionLost: UInt8
        /// 24-bit signed cumulative loss.
        public var cumulativeLost: Int32
        public var highestSequence: UInt32
        public var jitter: UInt32
        public var lastSenderReport: UInt32
        public var delaySinceLastSenderReport: UInt32

        public init(ssrc: UInt32, fractionLost: UInt8, cumulativeLost: Int32, highestSequence: UInt32, jitter: UInt32,
                    lastSenderReport: UInt32, delaySinceLastSenderReport: UInt32) {
            self.ssrc = ssrc
            self.fractionLost = fractionLost
            self.cumulativeLost = cumulativeLost
            self.highestSequence = highestSequence
            self.jitter = jitter
            self.lastSenderReport = lastSenderReport
            self.delaySinceLastSenderReport = delaySinceLastSenderReport
        }
    }

    public struct SenderReport: Equatable, Sendable {
        public var ssrc: UInt32
        /// 64-bit NTP timestamp.
        public var ntpTimestamp: UInt64
        public var rtpTimestamp: UInt32
        public var packetCount: UInt32
        public var octetCount: UInt32
        public var reports: [ReportBlock]

        public init(ssrc: UInt32, ntpTimestamp: UInt64, rtpTimestamp: UInt32, packetCount: UInt32, octetCount: UInt32,
                    reports: [ReportBlock] = []) {
            self.ssrc = ssrc
            self.ntpTimestamp = ntpTimestamp
            self.rtpTimestamp = rtpTimestamp
            self.packetCount = packetCount
            self.octetCount = octetCount
            self.reports = reports
        }
    }

    public struct ReceiverReport: Equatable, Sendable {
        public var ssrc: UInt32
        public var reports: [ReportBlock]

        public init(ssrc: UInt32, reports: [ReportBlock]) {
            self.ssrc = ssrc
            self.reports = reports
        }
    }

    public struct FIREntry: Equatable, Sendable {
        public var ssrc: UInt32
        public var sequenceNumber: UInt8

        public init(ssrc: UInt32, sequenceNumber: UInt8) {
            self.ssrc = ssrc
            self.sequenceNumber = sequenceNumber
        }
    }

    static let senderReportType: UInt8 = 200
    static let receiverReportType: UInt8 = 201
    static let transportFeedbackType: UInt8 = 205
    static let payloadFeedbackType: UInt8 = 206
}
