#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The level of a block of 16-bit samples: RMS and peak in dBov, and the RFC 6464 audio level.
///
/// dBov is relative to the overload point of 16-bit audio, 32 768: a full-scale square wave is
/// 0 dBov, a full-scale sine −3 dBov, a sine at −6 dBFS about −9 dBov. Levels are clamped at
/// −127 dBov, which is also what silence (all zeros) reports. Interleaved stereo is measured
/// over both channels together.
public struct AudioLevel: Sendable, Hashable {
    /// The floor of the scale: −127 dBov, RFC 6464's quietest level.
    public static let floorDBov: Double = -127

    /// Root-mean-square level in dBov, −127…0.
    public let rmsDBov: Double
    /// Peak (largest absolute sample) level in dBov, −127…0.
    public let peakDBov: Double

    /// The RFC 6464 audio level: −dBov of the RMS level rounded to an integer, 0 (loudest) …
    /// 127 (silence).
    public var rfc6464Level: UInt8 {
        UInt8(min(127, max(0, (-rmsDBov).rounded())))
    }

    /// Measures `samples`; an empty block is silence.
    public init(samples: UnsafeBufferPointer<Int16>) {
        var sumOfSquares: Double = 0
        var peak: Int32 = 0
        // Sum in integers per block of 32 768 samples (at most 2^45, no overflow), then in
        // floating point.
        var index = 0
        while index < samples.count {
            let end = min(index + 32_768, samples.count)
            var blockSum: Int64 = 0
            for sample in samples[index..<end] {
                let value = Int32(sample)
                blockSum += Int64(value * value)
                peak = max(peak, abs(value))
            }
            sumOfSquares += Double(blockSum)
            index = end
        }
        if samples.isEmpty {
            rmsDBov = Self.floorDBov
            peakDBov = Self.floorDBov
        } else {
            let rms = (sumOfSquares / Double(samples.count)).squareRoot() / 32_768
            rmsDBov = Self.decibels(rms)
            peakDBov = Self.decibels(Double(peak) / 32_768)
        }
    }

    /// Measures an array of samples.
    public init(samples: [Int16]) {
        self = samples.withUnsafeBufferPointer { AudioLevel(samples: $0) }
    }

    /// Creates a level from values in dBov (clamped to −127…0).
    public init(rmsDBov: Double, peakDBov: Double) {
        self.rmsDBov = min(0, max(Self.floorDBov, rmsDBov))
        self.peakDBov = min(0, max(Self.floorDBov, peakDBov))
    }

    private static func decibels(_ ratio: Double) -> Double {
        guard ratio > 0 else { return floorDBov }
        return min(0, max(floorDBov, 20 * log10(ratio)))
    }
}
