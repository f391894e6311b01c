/// What an outgoing stream has sent, for its RTCP sender reports (RFC 3550 §6.4.1), and what
/// the receiver reported back.
public struct RTPSenderStatistics: Sendable {
    public let ssrc: UInt32
    public let clockRate: UInt32
    public private(set) var packetCount: UInt32 = 0
    /// Payload octets (headers and padding excluded).
    public private(set) var octetCount: UInt32 = 0
    private var lastTimestamp: UInt32 = 0
    private var lastSentAt: ContinuousClock.Instant?
    /// The middle 32 bits of the NTP time of the last sender report, and when it was sent.
    private var lastReport: (middleNTP: UInt32, at: ContinuousClock.Instant)?
    /// From the most recent receiver report about this stream.
    public private(set) var fractionLost: UInt8 = 0
    public private(set) var cumulativeLost: Int32 = 0
    public private(set) var roundTripTime: Duration?

    public init(ssrc: UInt32, clockRate: UInt32) {
        self.ssrc = ssrc
        self.clockRate = clockRate
    }

    public mutating func recordSent(timestamp: UInt32, payloadBytes: Int, now: ContinuousClock.Instant) {
        packetCount &+= 1
        octetCount &+= UInt32(truncatingIfNeeded: payloadBytes)
        lastTimestamp = timestamp
        lastSentAt = now
    }

    /// A sender report for `now`; `ntpTime` is the same instant as wall-clock NTP time. The RTP
    /// timestamp is the last packet's, advanced by the time since. `nil` before the first packet.
    public mutating func senderReport(now: ContinuousClock.Instant, ntpTime: UInt64) -> RTCPPacket? {
        guard let lastSentAt else { return nil }
        let (seconds, attoseconds) = (now - lastSentAt).components
        let microseconds = max(0, min(seconds, 1 << 31) * 1_000_000 + attoseconds / 1_000_000_000_000)
        let rtpTimestamp = lastTimestamp &+ UInt32(truncatingIfNeeded: (microseconds * Int64(clockRate) + 500_000) / 1_000_000)
        lastReport = (UInt32(truncatingIfNeeded: ntpTime >> 16), now)
        return .senderReport(.init(ssrc: ssrc, ntpTimestamp: ntpTime, rtpTimestamp: rtpTimestamp,
                                   packetCount: packetCount, octetCount: octetCount))
    }

    /// Takes in a report block about this stream: loss, and the round-trip time from LSR and
    /// DLSR (RFC 3550 §6.4.1) when it refers to our last sender report.
    public mutating func handle(_ block: RTCPPacket.ReportBlock, now: ContinuousClock.Instant) {
        guard block.ssrc == ssrc else { return }
        fractionLost = block.fractionLost
        cumulativeLost = block.cumulativeLost
        if let lastReport, block.lastSenderReport == lastReport.middleNTP {
            // DLSR is in units of 1/65536 s.
            let delay = Duration.microseconds(Int64(block.delaySinceLastSenderReport) * 1_000_000 / 65536)
            let rtt = (now - lastReport.at) - delay
            roundTripTime = rtt < .zero ? .zero : rtt
        }
    }

    /// Converts Unix time (seconds and nanoseconds) to 64-bit NTP time.
    public static func ntpTime(unixSeconds: Int64, nanoseconds: Int64) -> UInt64 {
        let seconds = UInt64(unixSeconds + 2_208_988_800)
        let fraction = UInt64(nanoseconds) * (1 << 32) / 1_000_000_000
        return seconds << 32 | fraction
    }
}
