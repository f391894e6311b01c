#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Turns a sum of speakers (32-bit) into 16-bit samples without hard clipping: samples below
/// the knee pass unchanged; above it they are bent with `tanh` toward full scale, so two loud
/// speakers at once sound compressed rather than cracked.
public enum SoftClipper {
    /// Where the curve starts: 75 % of full scale (about −2.5 dBFS).
    public static let knee: Int32 = 24_576

    /// One sample.
    @inline(__always)
    public static func clip(_ sum: Int32) -> Int16 {
        let magnitude = sum.magnitude
        guard magnitude > UInt32(knee) else { return Int16(truncatingIfNeeded: sum) }
        let headroom = Float(Int32(Int16.max) - knee)
        let over = Float(magnitude - UInt32(knee)) / headroom
        let bent = Float(knee) + headroom * tanhf(over)
        let value = Int16(min(Float(Int16.max), bent))
        return sum < 0 ? -value : value
    }

    /// Clips `sums` into `output` (the same count).
    public static func clip(_ sums: UnsafeBufferPointer<Int32>, into output: UnsafeMutableBufferPointer<Int16>) {
        for index in 0..<min(sums.count, output.count) {
            output[index] = clip(sums[index])
        }
    }
}
