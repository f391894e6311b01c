import COpus

/// Decodes Opus packets to 16-bit PCM at 48 kHz, and conceals lost packets (PLC).
///
/// Used by the tests to check what the encoder produced, and meant for the server's mixer and
/// level meters. Not thread-safe and deliberately not `Sendable`: one decoder per stream,
/// used from one task. The decoder keeps state between packets, so feed one stream's packets
/// in order.
public final class OpusDecoder {
    /// The decoded sample rate, 48 000 Hz.
    public static let sampleRate = 48_000
    /// The most samples per channel one packet can decode to: 5 760 (120 ms).
    public static let maximumSamplesPerChannel = 5760

    /// Output channels, 1 or 2 (interleaved). libopus up- or down-mixes packets of the other
    /// layout.
    public let channels: Int
    private let decoder: OpaquePointer

    /// Creates a decoder producing `channels` channels (1 or 2) at 48 kHz.
    /// - Throws: ``OpusError/badArgument`` for another channel count, or what libopus reports.
    public init(channels: Int = 1) throws(OpusError) {
        guard channels == 1 || channels == 2 else { throw .badArgument }
        var error: Int32 = OPUS_OK
        guard let decoder = opus_decoder_create(Int32(Self.sampleRate), Int32(channels), &error), error == OPUS_OK else {
            throw OpusError(code: error == OPUS_OK ? OPUS_ALLOC_FAIL : error)
        }
        self.channels = channels
        self.decoder = decoder
    }

    deinit {
        opus_decoder_destroy(decoder)
    }

    /// Decodes one packet into `output` (interleaved) without allocating.
    /// - Parameters:
    ///   - packet: one Opus packet; must not be empty (use ``concealLoss(samplesPerChannel:into:)``
    ///     for a lost packet).
    ///   - output: room for the decoded samples: `samplesPerChannel × channels`, at most
    ///     ``maximumSamplesPerChannel`` × ``channels``.
    /// - Returns: the number of samples per channel written.
    /// - Throws: ``OpusError`` (``OpusError/invalidPacket`` for an empty or corrupt packet,
    ///   ``OpusError/bufferTooSmall`` when `output` is too short).
    public func decode(_ packet: UnsafeRawBufferPointer, into output: UnsafeMutableBufferPointer<Int16>) throws(OpusError) -> Int {
        guard let base = packet.baseAddress, !packet.isEmpty else { throw .invalidPacket }
        guard packet.count <= Int(Int32.max) else { throw .invalidPacket }
        guard let out = output.baseAddress else { throw .bufferTooSmall }
        let data = base.assumingMemoryBound(to: UInt8.self)
        let capacity = min(output.count / channels, Self.maximumSamplesPerChannel)
        let decoded = opus_decode(decoder, data, Int32(packet.count), out, Int32(capacity), 0)
        guard decoded >= 0 else { throw OpusError(code: decoded) }
        return Int(decoded)
    }

    /// Decodes one packet to a new array of interleaved samples
    /// (`samplesPerChannel × channels` long).
    /// - Throws: ``OpusError`` (``OpusError/invalidPacket`` for an empty or corrupt packet).
    public func decode(_ packet: [UInt8]) throws(OpusError) -> [Int16] {
        try packet.withUnsafeBytes { raw in
            Result { () throws(OpusError) -> [Int16] in
                guard let base = raw.baseAddress, !raw.isEmpty else { throw .invalidPacket }
                let perChannel = opus_decoder_get_nb_samples(
                    decoder, base.assumingMemoryBound(to: UInt8.self), Int32(raw.count))
                guard perChannel >= 0 else { throw OpusError(code: perChannel) }
                guard perChannel <= Self.maximumSamplesPerChannel else { throw .invalidPacket }
                var failure: OpusError?
                let samples = [Int16](unsafeUninitializedCapacity: Int(perChannel) * channels) { buffer, count in
                    do throws(OpusError) {
                        count = try decode(raw, into: buffer) * channels
                    } catch {
                        failure = error
                        count = 0
                    }
                }
                if let failure { throw failure }
                return samples
            }
        }.get()
    }

    /// Packet loss concealment: writes `samplesPerChannel` samples per channel that stand in
    /// for a lost packet (extrapolated from the previous ones) into `output`.
    /// - Parameter samplesPerChannel: the lost duration; a multiple of 120 (2.5 ms), at most
    ///   ``maximumSamplesPerChannel``. 960 for a 20 ms packet.
    /// - Returns: the number of samples per channel written.
    public func concealLoss(samplesPerChannel: Int = 960, into output: UnsafeMutableBufferPointer<Int16>) throws(OpusError) -> Int {
        guard samplesPerChannel > 0, samplesPerChannel % 120 == 0,
              samplesPerChannel <= Self.maximumSamplesPerChannel
        else { throw .badArgument }
        guard let out = output.baseAddress, output.count >= samplesPerChannel * channels else { throw .bufferTooSmall }
        let decoded = opus_decode(decoder, nil, 0, out, Int32(samplesPerChannel), 0)
        guard decoded >= 0 else { throw OpusError(code: decoded) }
        return Int(decoded)
    }

    /// Packet loss concealment to a new array: `samplesPerChannel × channels` interleaved
    /// samples standing in for a lost packet. See ``concealLoss(samplesPerChannel:into:)``.
    public func concealLoss(samplesPerChannel: Int = 960) throws(OpusError) -> [Int16] {
        guard samplesPerChannel > 0, samplesPerChannel <= Self.maximumSamplesPerChannel else { throw .badArgument }
        var failure: OpusError?
        let samples = [Int16](unsafeUninitializedCapacity: samplesPerChannel * channels) { buffer, count in
            do throws(OpusError) {
                count = try concealLoss(samplesPerChannel: samplesPerChannel, into: buffer) * channels
            } catch {
                failure = error
                count = 0
            }
        }
        if let failure { throw failure }
        return samples
    }

    /// Forgets the stream's history (as for a new stream on the same decoder).
    public func reset() {
        _ = airwave_opus_decoder_reset(decoder)
    }
}

@available(*, unavailable, message: "an OpusDecoder belongs to one task")
extension OpusDecoder: Sendable {}
