/// Measures the level of each source's Opus packets by decoding them (decode only, no mix, no
/// encode): what `active_speakers` uses for a speaker whose client sends no level while no
/// mixer runs. One ``OpusDecoder`` per source, since a decoder keeps state between packets;
/// feed each source's packets in order. Not thread-safe: one meter per event, used from one task.
public struct LevelMeter {
    private var decoders: [UInt32: OpusDecoder] = [:]
    /// Room for the longest packet (120 ms mono), reused for every decode.
    private var samples = [Int16](repeating: 0, count: OpusDecoder.maximumSamplesPerChannel)

    public init() {}

    /// The level of `packet` of `source`, or nil if it does not decode.
    public mutating func measure(source: UInt32, packet: UnsafeRawBufferPointer) -> AudioLevel? {
        let decoder: OpusDecoder
        if let existing = decoders[source] {
            decoder = existing
        } else {
            guard let made = try? OpusDecoder(channels: 1) else { return nil }
            decoders[source] = made
            decoder = made
        }
        return samples.withUnsafeMutableBufferPointer { output -> AudioLevel? in
            guard let count = try? decoder.decode(packet, into: output), count > 0 else { return nil }
            return AudioLevel(samples: UnsafeBufferPointer(rebasing: output[0..<count]))
        }
    }

    /// Forgets a source's decoder (it stopped speaking).
    public mutating func remove(source: UInt32) {
        decoders[source] = nil
    }

    /// How many sources have a decoder.
    public var sourceCount: Int { decoders.count }
}
