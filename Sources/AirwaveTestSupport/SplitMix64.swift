/// SplitMix64, the seedable generator of Steele, Lea and Flood, "Fast Splittable Pseudorandom
/// Number Generators" (OOPSLA 2014), with the constants of Vigna's reference implementation
/// (https://prng.di.unimi.it/splitmix64.c). Not for secrets: it exists so that a randomized test
/// or fuzz run is replayed exactly from its seed.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) {
        state = seed
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A value in `0..<bound` (modulo: the tiny bias does not matter for a test's choices).
    public mutating func next(below bound: Int) -> Int {
        precondition(bound > 0, "the bound must be positive")
        return Int(next() % UInt64(bound))
    }
}
