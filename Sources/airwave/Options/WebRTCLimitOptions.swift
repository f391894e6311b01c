import AirwaveServer
import ArgumentParser

/// Flags of the WebRTC transport's limits (PROTOCOL.md section 10; docs/security.md lists them).
struct WebRTCLimitOptions: ParsableArguments {
    @Option(name: .customLong("webrtc-max-sessions"), help: "Most WebRTC sessions at once (default 10000).") var webRTCMaxSessions: Int?
    @Option(name: .customLong("webrtc-reserved-sessions"), help: "WebRTC sessions kept for WHIP and listeners with a token: anonymous WHEP may use the rest (default a tenth of --webrtc-max-sessions).") var webRTCReservedSessions: Int?
    @Option(name: .customLong("webrtc-anonymous-per-ip"), help: "Most WHEP sessions without a token from one IP address, IPv6 per /64 (default 50).") var webRTCAnonymousPerIP: Int?
    @Option(name: .customLong("webrtc-offer-rate"), help: "WHEP offers without a token one IP address may make per second (default 5).") var webRTCOfferRate: Int?
    @Option(name: .customLong("webrtc-offer-burst"), help: "WHEP offers without a token one IP address may make at once (default 20).") var webRTCOfferBurst: Int?
    @Option(name: .customLong("webrtc-dtls-timeout"), help: "Seconds after the answer by which a WebRTC session must complete DTLS, or it is closed (default 10).") var webRTCDTLSTimeout: Int?
    @Option(name: .customLong("webrtc-nack-rate"), help: "Packets a WebRTC session may resend on NACK per second (default 250).") var webRTCNACKRate: Int?
    @Option(name: .customLong("webrtc-nack-byte-rate"), help: "Bytes a WebRTC session may resend on NACK per second (default 262144).") var webRTCNACKByteRate: Int?

    /// Rates beyond this are refused: they would be no limit, and the budget's arithmetic is sized for it.
    private static let largestRate = 1 << 30

    func apply(_ settings: Settings, to webRTC: inout WebRTCSettings) throws(ConfigurationError) {
        webRTC.maximumSessions = try settings.positive("webrtc-max-sessions", webRTCMaxSessions, default: webRTC.maximumSessions)
        let reserved = try settings.int("webrtc-reserved-sessions", webRTCReservedSessions, default: webRTC.effectiveReservedSessions)
        guard (0...webRTC.maximumSessions).contains(reserved) else {
            throw ConfigurationError("--webrtc-reserved-sessions must be between 0 and --webrtc-max-sessions (\(webRTC.maximumSessions)), not \(reserved).")
        }
        webRTC.reservedSessions = reserved
        webRTC.anonymousSessionsPerIP = try settings.positive("webrtc-anonymous-per-ip", webRTCAnonymousPerIP, default: webRTC.anonymousSessionsPerIP)
        webRTC.anonymousOfferRate.perSecond = Double(try settings.positive("webrtc-offer-rate", webRTCOfferRate, default: Int(webRTC.anonymousOfferRate.perSecond)))
        webRTC.anonymousOfferRate.burst = Double(try settings.positive("webrtc-offer-burst", webRTCOfferBurst, default: Int(webRTC.anonymousOfferRate.burst)))
        webRTC.handshakeDeadline = .seconds(try settings.positive("webrtc-dtls-timeout", webRTCDTLSTimeout, default: Int(webRTC.handshakeDeadline.components.seconds)))
        webRTC.retransmitPacketsPerSecond = try Self.rate(settings, "webrtc-nack-rate", webRTCNACKRate, default: webRTC.retransmitPacketsPerSecond)
        webRTC.retransmitBytesPerSecond = try Self.rate(settings, "webrtc-nack-byte-rate", webRTCNACKByteRate, default: webRTC.retransmitBytesPerSecond)
    }

    private static func rate(_ settings: Settings, _ flag: String, _ value: Int?, default fallback: Int) throws(ConfigurationError) -> Int {
        let rate = try settings.positive(flag, value, default: fallback)
        guard rate <= largestRate else { throw ConfigurationError("--\(flag) must be at most \(largestRate), not \(rate).") }
        return rate
    }
}
