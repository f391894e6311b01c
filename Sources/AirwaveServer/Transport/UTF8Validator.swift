import NIOCore

/// Validates UTF-8 a piece at a time (RFC 3629 well-formedness: no overlongs, no surrogates,
/// nothing above U+10FFFF), so a text message split over fragments, or a frame arriving in
/// several reads, fails at the first bad byte instead of at its end (RFC 6455 8.1).
struct UTF8Validator {
    /// Continuation bytes the current code point still needs.
    private var remaining = 0
    /// Allowed range of the next continuation byte (narrower right after some lead bytes).
    private var lower: UInt8 = 0x80
    private var upper: UInt8 = 0xBF

    /// True when the bytes so far end on a code point boundary.
    var isComplete: Bool { remaining == 0 }

    /// Feeds `bytes`; false as soon as they cannot be (the start of) well-formed UTF-8.
    mutating func consume(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var index = 0
        let count = bytes.count
        while index < count {
            // ASCII fast path, 8 bytes at a time, while no code point is open.
            if remaining == 0, count - index >= 8,
                bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self) & 0x8080_8080_8080_8080 == 0
            {
                index += 8
                continue
            }
            guard consume(byte: bytes[index]) else { return false }
            index += 1
        }
        return true
    }

    /// Feeds the readable bytes of `buffer`.
    mutating func consume(_ buffer: ByteBuffer) -> Bool {
        buffer.withUnsafeReadableBytes { consume($0) }
    }

    private mutating func consume(byte: UInt8) -> Bool {
        if remaining > 0 {
            guard byte >= lower, byte <= upper else { return false }
            remaining -= 1
            lower = 0x80
            upper = 0xBF
            return true
        }
        switch byte {
        case 0x00...0x7F: return true
        case 0xC2...0xDF: remaining = 1
        case 0xE0: remaining = 2; lower = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: remaining = 2
        case 0xED: remaining = 2; upper = 0x9F  // no UTF-16 surrogates
        case 0xF0: remaining = 3; lower = 0x90
        case 0xF1...0xF3: remaining = 3
        case 0xF4: remaining = 3; upper = 0x8F  // nothing above U+10FFFF
        default: return false
        }
        return true
    }
}
