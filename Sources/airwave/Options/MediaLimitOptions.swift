import AirwaveServer
import ArgumentParser

/// Flags of `MediaLimits` (PROTOCOL.md section 10; docs/security.md lists them).
struct MediaLimitOptions: ParsableArguments {
    @Option(name: .customLong("media-rate"), help: "Media frames a connection may send per second (default 250).") var mediaRate: Int?
    @Option(name: .customLong("media-burst"), help: "Media frames a connection may send at once (default 500).") var mediaBurst: Int?
    @Option(name: .customLong("media-byte-rate"), help: "Media bytes a connection may send per second (default 4194304).") var mediaByteRate: Int?
    @Option(name: .customLong("media-byte-burst"), help: "Media bytes a connection may send at once (default 8388608).") var mediaByteBurst: Int?
    @Option(name: .customLong("max-pcm-frame-ms"), help: "Longest PCM frame in milliseconds of audio (default 120).") var maxPCMFrameMilliseconds: Int?
    @Option(name: .customLong("pcm-rate-ms"), help: "Milliseconds of PCM a connection may have encoded per second (default 1200).") var pcmRate: Int?

    func apply(_ settings: Settings, to limits: inout MediaLimits) throws(ConfigurationError) {
        limits.frameRate.perSecond = Double(try settings.positive("media-rate", mediaRate, default: Int(limits.frameRate.perSecond)))
        limits.frameRate.burst = Double(try settings.positive("media-burst", mediaBurst, default: Int(limits.frameRate.burst)))
        limits.byteRate.perSecond = Double(try settings.positive("media-byte-rate", mediaByteRate, default: Int(limits.byteRate.perSecond)))
        limits.byteRate.burst = Double(try settings.positive("media-byte-burst", mediaByteBurst, default: Int(limits.byteRate.burst)))
        limits.maxPCMFrameMilliseconds = try settings.positive("max-pcm-frame-ms", maxPCMFrameMilliseconds, default: limits.maxPCMFrameMilliseconds)
        limits.pcmRate.perSecond = Double(try settings.positive("pcm-rate-ms", pcmRate, default: Int(limits.pcmRate.perSecond)))
        limits.pcmRate.burst = 2 * limits.pcmRate.perSecond
    }
}
