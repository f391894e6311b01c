/// An HDR-style latency histogram with microsecond resolution: values below 128 µs have a
/// bucket each; above that every power of two is split into 64 log-linear sub-buckets, so a
/// reported percentile is within 1/64 (1.6 %) of the true value. Values up to 2^40 µs
/// (about 12 days) fit; larger values land in the last bucket. The exact maximum, minimum
/// and sum are kept alongside.
///
/// Not thread-safe: the load generator keeps one per event loop and merges them at the end.
struct LatencyHistogram: Sendable {
    static let linearLimit: UInt64 = 128          // 2^7
    static let subBucketBits = 6                   // 64 sub-buckets per power of two
    static let maxExponent = 40
    static let bucketCount = Int(linearLimit) + (maxExponent - 7 + 1) * (1 << subBucketBits)

    private(set) var counts: [UInt64]
    private(set) var count: UInt64 = 0
    private(set) var sumMicros: UInt64 = 0
    private(set) var maxMicros: UInt64 = 0
    private(set) var minMicros: UInt64 = .max

    init() { counts = Array(repeating: 0, count: Self.bucketCount) }

    static func bucket(for micros: UInt64) -> Int {
        if micros < linearLimit { return Int(micros) }
        let exponent = 63 - micros.leadingZeroBitCount          // >= 7
        guard exponent <= maxExponent else { return bucketCount - 1 }
        let sub = Int((micros >> UInt64(exponent - subBucketBits)) & UInt64((1 << subBucketBits) - 1))
        return Int(linearLimit) + (exponent - 7) * (1 << subBucketBits) + sub
    }

    /// The largest value that falls into `bucket` (HDR's "highest equivalent value").
    static func upperBound(of bucket: Int) -> UInt64 {
        if bucket < Int(linearLimit) { return UInt64(bucket) }
        let rest = bucket - Int(linearLimit)
        let exponent = rest >> subBucketBits + 7
        let sub = UInt64(rest & ((1 << subBucketBits) - 1))
        let width = UInt64(1) << UInt64(exponent - subBucketBits)
        return ((UInt64(1 << subBucketBits) + sub) * width) + width - 1
    }

    mutating func record(micros: UInt64) {
        counts[Self.bucket(for: micros)] &+= 1
        count &+= 1
        sumMicros &+= micros
        if micros > maxMicros { maxMicros = micros }
        if micros < minMicros { minMicros = micros }
    }

    mutating func merge(_ other: LatencyHistogram) {
        for i in 0..<counts.count { counts[i] &+= other.counts[i] }
        count &+= other.count
        sumMicros &+= other.sumMicros
        maxMicros = max(maxMicros, other.maxMicros)
        minMicros = min(minMicros, other.minMicros)
    }

    /// The value at quantile `q` (0…1), in microseconds; 0 for an empty histogram. Never above
    /// the exact maximum.
    func percentile(_ q: Double) -> UInt64 {
        guard count > 0 else { return 0 }
        let rank = max(1, UInt64((q * Double(count)).rounded(.up)))
        var seen: UInt64 = 0
        for (i, c) in counts.enumerated() where c > 0 {
            seen += c
            if seen >= rank { return min(Self.upperBound(of: i), maxMicros) }
        }
        return maxMicros
    }

    var meanMicros: Double { count == 0 ? 0 : Double(sumMicros) / Double(count) }
}
