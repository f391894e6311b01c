import AirwaveTestSupport

/// Derives inputs from seed inputs with byte-level mutations: bit flips, interesting byte and
/// 16-bit values (which hit length fields), truncation, insertion, deletion, duplication, and
/// splicing two seeds. One to four mutations per input.
public struct FuzzMutator: Sendable {
    public var generator: SplitMix64
    public let seeds: [[UInt8]]
    public let maximumSize: Int

    public init(seeds: [[UInt8]], seed: UInt64, maximumSize: Int = 16 * 1024) {
        precondition(!seeds.isEmpty, "fuzzing needs at least one seed input")
        self.seeds = seeds
        self.generator = SplitMix64(seed: seed)
        self.maximumSize = maximumSize
    }

    private static let interestingBytes: [UInt8] = [0x00, 0x01, 0x7F, 0x80, 0xFF, 0x20, 0x3A, 0x0D, 0x0A]
    private static let interestingWords: [UInt16] = [0x0000, 0x0001, 0x0004, 0x00FF, 0x7FFF, 0x8000, 0xFFFF, 0xFFFC]

    /// The next mutated input.
    public mutating func next() -> [UInt8] {
        var input = seeds[Int.random(in: 0..<seeds.count, using: &generator)]
        for _ in 0..<Int.random(in: 1...4, using: &generator) {
            mutate(&input)
        }
        if input.count > maximumSize { input.removeLast(input.count - maximumSize) }
        return input
    }

    private mutating func position(in input: [UInt8]) -> Int {
        Int.random(in: 0..<max(input.count, 1), using: &generator)
    }

    private mutating func mutate(_ input: inout [UInt8]) {
        switch Int.random(in: 0..<9, using: &generator) {
        case 0 where !input.isEmpty:
            let index = position(in: input)
            input[index] ^= 1 << UInt8.random(in: 0..<8, using: &generator)
        case 1 where !input.isEmpty:
            input[position(in: input)] = Self.interestingBytes.randomElement(using: &generator)!
        case 2 where input.count >= 2:
            // Length fields: STUN and RTCP lengths are 16-bit big-endian at even offsets.
            let index = Int.random(in: 0..<(input.count - 1), using: &generator) & ~1
            let value = Self.interestingWords.randomElement(using: &generator)!
            input[index] = UInt8(value >> 8)
            input[index + 1] = UInt8(value & 0xFF)
        case 3 where !input.isEmpty:
            input.removeLast(Int.random(in: 1...input.count, using: &generator))
        case 4:
            let count = Int.random(in: 1...16, using: &generator)
            let bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
            input.insert(contentsOf: bytes, at: Int.random(in: 0...input.count, using: &generator))
        case 5 where input.count > 1:
            let start = position(in: input)
            let end = min(input.count, start + Int.random(in: 1...32, using: &generator))
            input.removeSubrange(start..<end)
        case 6 where !input.isEmpty:
            let start = position(in: input)
            let end = min(input.count, start + Int.random(in: 1...64, using: &generator))
            input.insert(contentsOf: input[start..<end], at: Int.random(in: 0...input.count, using: &generator))
        case 7:
            let other = seeds[Int.random(in: 0..<seeds.count, using: &generator)]
            let cut = Int.random(in: 0...input.count, using: &generator)
            let otherCut = Int.random(in: 0...other.count, using: &generator)
            input = Array(input[..<cut]) + Array(other[otherCut...])
        default:
            if !input.isEmpty { input[position(in: input)] = UInt8.random(in: 0...255, using: &generator) }
        }
    }
}
