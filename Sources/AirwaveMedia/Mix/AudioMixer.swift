/// The event mix: decodes each speaker's Opus packets through its own ``JitterBuffer``, mixes
/// 20 ms frames, and encodes the outputs that are wanted — the full mix (for listeners and the
/// recording) and one mix-minus per speaker who listens to the mix (everyone but that speaker).
///
/// Sans-IO: the caller pushes packets as they arrive and calls ``tick()`` every 20 ms; time is
/// the tick count. Each tick decodes every playing speaker once, conceals missing packets with
/// libopus PLC, sums in 32 bits, soft-clips (``SoftClipper``) and encodes each wanted output
/// once. Nothing is decoded or encoded while no output is wanted (``isActive`` is false).
///
/// A class because it owns libopus state, like ``OpusDecoder``; one mixer per event, used from
/// one task.
public final class AudioMixer {
    /// Samples per channel of one tick: 960 (20 ms at 48 kHz).
    public static let frameSamples = 960

    /// One encoded stream the mixer produces.
    public enum Output: Sendable, Hashable {
        /// Every speaker.
        case full
        /// Every speaker but this source (for that speaker's own ears).
        case minus(UInt32)
    }

    /// One 20 ms packet of an output.
    public struct Packet: Sendable, Hashable {
        public var output: Output
        /// The Opus packet.
        public var bytes: [UInt8]
        /// Per output: 0, 1, 2, … (continues while the output is wanted).
        public var sequence: UInt32
        /// Per output, 48 kHz: 0, 960, 1920, …
        public var timestamp: UInt32
    }

    /// What one tick produced.
    public struct TickResult: Sendable {
        /// One packet per wanted output.
        public var packets: [Packet] = []
        /// The level of every speaker that played in this tick (decoded or concealed audio).
        public var levels: [(source: UInt32, level: AudioLevel)] = []
    }

    /// Tuning.
    public struct Configuration: Sendable, Hashable {
        public var jitter: JitterBuffer.Configuration
        /// Bitrate of every mixed output, bits per second.
        public var bitrate: Int
        /// libopus complexity of the mixed encoders, 0…10.
        public var complexity: Int

        public init(jitter: JitterBuffer.Configuration = .init(), bitrate: Int = 32_000, complexity: Int = 5) {
            self.jitter = jitter
            self.bitrate = bitrate
            self.complexity = complexity
        }
    }

    private final class Source {
        var buffer: JitterBuffer
        let decoder: OpusDecoder
        /// Decoded samples not yet mixed (a 40 or 60 ms packet spans several ticks).
        var pending: [Int16] = []
        /// This tick's 20 ms contribution.
        var frame = [Int16](repeating: 0, count: AudioMixer.frameSamples)
        var playedThisTick = false

        init(buffer: JitterBuffer, decoder: OpusDecoder) {
            self.buffer = buffer
            self.decoder = decoder
        }
    }

    public let configuration: Configuration
    /// Ticks so far.
    public private(set) var tickCount = 0
    /// Packets dropped for arriving after their playout time.
    public private(set) var latePackets = 0
    /// Packets dropped because a speaker's buffer was full.
    public private(set) var overflowPackets = 0
    /// 20 ms frames concealed with PLC, all speakers together.
    public private(set) var concealedFrames = 0

    private var sources: [UInt32: Source] = [:]
    private var encoders: [Output: PCMOpusEncoder] = [:]
    private var wanted: Set<Output> = []
    private var sums = [Int32](repeating: 0, count: AudioMixer.frameSamples)
    private var samples = [Int16](repeating: 0, count: AudioMixer.frameSamples)
    private var scratch = [Int16](repeating: 0, count: OpusDecoder.maximumSamplesPerChannel)

    public init(configuration: Configuration = .init()) {
        self.configuration = configuration
    }

    /// True while some output is wanted; only then are packets taken and ticks do work.
    public var isActive: Bool { !wanted.isEmpty }

    /// The outputs encoded at every tick.
    public var outputs: Set<Output> { wanted }

    /// Speakers with a buffer.
    public var sourceIDs: [UInt32] { sources.keys.sorted() }

    /// Sets the outputs to encode. A new output starts at sequence 0 and timestamp 0; one no
    /// longer wanted is dropped. With none, every speaker's buffer is dropped too.
    public func setOutputs(_ outputs: Set<Output>) {
        for gone in wanted.subtracting(outputs) { encoders[gone] = nil }
        wanted = outputs
        if outputs.isEmpty { sources.removeAll() }
    }

    /// Takes one speaker's Opus packet (RFC 6716). Ignored while ``isActive`` is false, and
    /// when the packet's duration cannot be read.
    public func push(source: UInt32, packet: [UInt8], timestamp: UInt32) {
        guard isActive else { return }
        let duration = OggOpusWriter.duration(of: packet)
        guard duration > 0 else { return }
        let state: Source
        if let existing = sources[source] {
            state = existing
        } else {
            guard let decoder = try? OpusDecoder(channels: 1) else { return }
            state = Source(buffer: JitterBuffer(configuration: configuration.jitter), decoder: decoder)
            sources[source] = state
        }
        switch state.buffer.push(packet, timestamp: timestamp, samples: duration, tick: tickCount) {
        case .accepted, .duplicate: break
        case .late: latePackets += 1
        case .overflow: overflowPackets += 1
        }
    }

    /// Drops a speaker at once: its buffered packets and decoder go, and every encoder is reset
    /// so that no packet encoded from now on carries any of its audio (the encoders' look-ahead
    /// would otherwise hold a few milliseconds of it). Called when the speaker is muted, demoted
    /// or leaves, before the notice goes out.
    public func removeSource(_ source: UInt32) {
        guard sources.removeValue(forKey: source) != nil else { return }
        for encoder in encoders.values { encoder.reset() }
    }

    /// Mixes and encodes one 20 ms frame.
    public func tick() -> TickResult {
        defer { tickCount += 1 }
        var result = TickResult()
        guard isActive else { return result }
        for index in sums.indices { sums[index] = 0 }
        for (id, source) in sources {
            fill(source)
            guard source.playedThisTick else { continue }
            source.frame.withUnsafeBufferPointer { frame in
                for index in 0..<Self.frameSamples { sums[index] &+= Int32(frame[index]) }
                result.levels.append((id, AudioLevel(samples: frame)))
            }
        }
        result.levels.sort { $0.source < $1.source }
        for output in wanted.sorted(by: Self.order) {
            let encoder: PCMOpusEncoder
            if let existing = encoders[output] {
                encoder = existing
            } else {
                guard let made = try? PCMOpusEncoder(
                    channels: 1, bitrate: configuration.bitrate, complexity: configuration.complexity)
                else { continue }
                encoders[output] = made
                encoder = made
            }
            let excluded: Source? = if case .minus(let id) = output { sources[id] } else { nil }
            for index in 0..<Self.frameSamples {
                var sum = sums[index]
                if let excluded, excluded.playedThisTick { sum &-= Int32(excluded.frame[index]) }
                samples[index] = SoftClipper.clip(sum)
            }
            let packets = samples.withUnsafeBytes { encoder.append($0) }
            for packet in packets {
                result.packets.append(Packet(output: output, bytes: packet.bytes, sequence: packet.sequence, timestamp: packet.timestamp))
            }
        }
        return result
    }

    /// Fills `source.frame` with this tick's 960 samples: decoded, concealed or (idle) silence.
    private func fill(_ source: Source) {
        source.playedThisTick = false
        while source.pending.count < Self.frameSamples {
            let step = source.buffer.next(tick: tickCount)
            if case .idle = step { break }
            var produced = 0
            scratch.withUnsafeMutableBufferPointer { out in
                switch step {
                case .decode(let packet):
                    produced = packet.withUnsafeBytes { (try? source.decoder.decode($0, into: out)) ?? 0 }
                    if produced == 0 {
                        produced = (try? source.decoder.concealLoss(samplesPerChannel: 960, into: out)) ?? 0
                    }
                case .conceal(let count):
                    produced = (try? source.decoder.concealLoss(samplesPerChannel: count, into: out)) ?? 0
                    concealedFrames += 1
                case .idle:
                    break
                }
            }
            guard produced > 0 else { break }
            source.pending.append(contentsOf: scratch[0..<produced])
        }
        guard !source.pending.isEmpty else { return }
        source.playedThisTick = true
        let take = min(Self.frameSamples, source.pending.count)
        for index in 0..<Self.frameSamples {
            source.frame[index] = index < take ? source.pending[index] : 0
        }
        source.pending.removeFirst(take)
    }

    private static func order(_ a: Output, _ b: Output) -> Bool {
        switch (a, b) {
        case (.full, .full): false
        case (.full, .minus): true
        case (.minus, .full): false
        case (.minus(let x), .minus(let y)): x < y
        }
    }
}

@available(*, unavailable, message: "an AudioMixer belongs to one task")
extension AudioMixer: Sendable {}
