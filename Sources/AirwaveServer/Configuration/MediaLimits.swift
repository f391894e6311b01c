/// Budgets on the media a connection may send (PROTOCOL.md section 10): frames and bytes per
/// second, and how much PCM the server encodes for it.
public struct MediaLimits: Sendable, Hashable {
    /// Media frames a connection may send (audio is 50/s, screen up to 60/s).
    public var frameRate = RateLimit(perSecond: 250, burst: 500)
    /// Media bytes a connection may send per second: 32 Mbit/s, four times a sharp 1080p screen
    /// share, with two seconds saved up for its keyframes.
    public var byteRate = RateLimit(perSecond: 4 * 1024 * 1024, burst: 8 * 1024 * 1024)
    /// Longest PCM frame, in milliseconds of audio; longer ones get `bad_message` (`too_long`).
    public var maxPCMFrameMilliseconds = 120
    /// Milliseconds of PCM audio a connection may have encoded per second of wall time (real
    /// time is 1,000); what is over the budget is dropped like any rate-limited frame.
    public var pcmRate = RateLimit(perSecond: 1_200, burst: 2_400)

    public init() {}
}
