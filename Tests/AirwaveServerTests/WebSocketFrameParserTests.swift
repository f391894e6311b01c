import AirwaveProtocol
import NIOCore
import NIOWebSocket
import Testing

@testable import AirwaveServer

/// A masked client frame (RFC 6455 5.2); `length` overrides the announced payload length.
func clientFrame(_ opcode: UInt8, _ payload: [UInt8] = [], fin: Bool = true, rsv: UInt8 = 0, masked: Bool = true, length: UInt64? = nil) -> ByteBuffer {
    var buffer = ByteBuffer()
    buffer.writeInteger((fin ? 0x80 : 0) | (rsv << 4) | opcode)
    let n = length ?? UInt64(payload.count)
    let maskBit: UInt8 = masked ? 0x80 : 0
    if n < 126 {
        buffer.writeInteger(maskBit | UInt8(n))
    } else if n <= UInt64(UInt16.max) {
        buffer.writeInteger(maskBit | 126)
        buffer.writeInteger(UInt16(n))
    } else {
        buffer.writeInteger(maskBit | 127)
        buffer.writeInteger(n)
    }
    let mask: [UInt8] = [0x12, 0x34, 0x56, 0x78]
    if masked { buffer.writeBytes(mask) }
    buffer.writeBytes(payload.enumerated().map { masked ? $0.element ^ mask[$0.offset % 4] : $0.element })
    return buffer
}

extension ByteBuffer {
    static func + (lhs: ByteBuffer, rhs: ByteBuffer) -> ByteBuffer {
        var joined = lhs
        var rhs = rhs
        joined.writeBuffer(&rhs)
        return joined
    }
}

@Suite struct WebSocketFrameParserTests {
    let limits = MessageLimits(text: 64, binary: 128)

    /// Everything the parser yields for `input`, until it needs more data.
    func parse(_ parser: inout WebSocketFrameParser, _ input: ByteBuffer) -> [String] {
        var buffer = input
        var out: [String] = []
        while true {
            switch parser.next(&buffer) {
            case .frame(let frame) where frame.opcode == .connectionClose: out.append("peer close")
            case .frame(let frame): out.append("\(frame.opcode):\(String(buffer: frame.data))")
            case .violation(let violation): out.append("close \(violation.code.rawValue)")
            case .needMoreData: return out
            }
        }
    }

    @Test func aMaskedTextFrameComesOutUnmasked() {
        var parser = WebSocketFrameParser(limits: limits)
        #expect(parse(&parser, clientFrame(0x1, Array("hello".utf8))) == ["WebSocketOpcode.text:hello"])
    }

    @Test func fragmentsAreJoinedAndControlFramesPassBetweenThem() {
        var parser = WebSocketFrameParser(limits: limits)
        let input = clientFrame(0x1, Array("he".utf8), fin: false) + clientFrame(0x9, Array("p".utf8)) + clientFrame(0x0, Array("ll".utf8), fin: false)
            + clientFrame(0x0, Array("o".utf8))
        #expect(parse(&parser, input) == ["WebSocketOpcode.ping:p", "WebSocketOpcode.text:hello"])
        #expect(!parser.messageInProgress)
    }

    @Test func aFrameArrivingByteByByteComesOutOnce() {
        var parser = WebSocketFrameParser(limits: limits)
        let frame = clientFrame(0x2, Array(repeating: 7, count: 100))
        var out: [String] = []
        var pending = ByteBuffer()
        for byte in frame.readableBytesView {
            pending.writeInteger(byte)
            out += parse(&parser, pending)
            pending.discardReadBytes()
            if !out.isEmpty { break }
            #expect(parser.messageInProgress || pending.readableBytes < 6)
        }
        #expect(out.count == 1)
    }

    @Test func invalidUTF8FailsAtTheFirstBadFragment() {
        var parser = WebSocketFrameParser(limits: limits)
        // The message never ends: the close comes at the bad fragment (Autobahn 6.4.1).
        let input = clientFrame(0x1, Array("κό".utf8), fin: false) + clientFrame(0x0, [0xED, 0xA0, 0x80], fin: false)
        #expect(parse(&parser, input) == ["close 1007"])
    }

    @Test func invalidUTF8FailsBeforeTheRestOfItsFrameArrives() {
        var parser = WebSocketFrameParser(limits: limits)
        var whole = clientFrame(0x1, Array("ok".utf8) + [0xF4, 0x90, 0x80, 0x80] + Array(repeating: 0x61, count: 40))
        let part = whole.readSlice(length: 6 + 6)!  // header and six payload bytes
        #expect(parse(&parser, part) == ["close 1007"])
    }

    @Test func aCodePointSplitOverFragmentsIsValid() {
        var parser = WebSocketFrameParser(limits: limits)
        let euro: [UInt8] = [0xE2, 0x82, 0xAC]
        let input = clientFrame(0x1, [euro[0]], fin: false) + clientFrame(0x0, [euro[1]], fin: false) + clientFrame(0x0, [euro[2]])
        #expect(parse(&parser, input) == ["WebSocketOpcode.text:€"])
    }

    @Test func aMessageEndingInsideACodePointIsInvalid() {
        var parser = WebSocketFrameParser(limits: limits)
        #expect(parse(&parser, clientFrame(0x1, [0x61, 0xE2, 0x82])) == ["close 1007"])
    }

    @Test func anOversizedFrameIsRefusedAtItsHeaderAndItsPayloadDiscarded() {
        var parser = WebSocketFrameParser(limits: limits)
        // Only the header has arrived: the violation needs no payload.
        var header = clientFrame(0x2, [], length: 1_000_000)
        #expect(parse(&parser, header) == ["close 1009"])
        _ = header.readBytes(length: header.readableBytes)
        // The payload is skipped as it comes; the peer's close frame after it still counts.
        var rest = ByteBuffer(repeating: 0, count: 1_000_000)
        rest.writeBuffer(&header)
        #expect(parse(&parser, rest + clientFrame(0x8, [0x03, 0xE8])) == ["peer close"])
    }

    @Test func textAndBinaryHaveTheirOwnLimitsAcrossFragments() {
        var parser = WebSocketFrameParser(limits: limits)
        #expect(parse(&parser, clientFrame(0x2, Array(repeating: 1, count: 100))).count == 1)  // binary 100 ≤ 128
        #expect(parse(&parser, clientFrame(0x1, Array(repeating: 0x61, count: 40), fin: false) + clientFrame(0x0, Array(repeating: 0x61, count: 40)))
            == ["close 1009"])  // text 80 > 64
    }

    @Test func protocolViolationsCloseWith1002AndTheCloseHandshakeStillWorks() {
        let cases: [(String, ByteBuffer)] = [
            ("reserved bit", clientFrame(0x1, Array("x".utf8), rsv: 0b100)),
            ("reserved opcode", clientFrame(0x3, [])),
            ("stray continuation", clientFrame(0x0, Array("x".utf8))),
            ("unmasked", clientFrame(0x1, Array("x".utf8), masked: false)),
            ("fragmented ping", clientFrame(0x9, [], fin: false)),
            ("long ping", clientFrame(0x9, Array(repeating: 0, count: 126))),
            ("interleaved message", clientFrame(0x1, Array("a".utf8), fin: false) + clientFrame(0x1, Array("b".utf8))),
        ]
        for (name, bad) in cases {
            var parser = WebSocketFrameParser(limits: limits)
            let out = parse(&parser, bad + clientFrame(0x1, Array("ignored".utf8)) + clientFrame(0x8, []))
            #expect(out == ["close 1002", "peer close"], "\(name)")
        }
    }

    @Test func aLengthWithItsTopBitSetEndsFraming() {
        var parser = WebSocketFrameParser(limits: limits)
        #expect(parse(&parser, clientFrame(0x2, [], length: 1 << 63) + clientFrame(0x8, [])) == ["close 1002"])
    }
}

@Suite struct UTF8ValidatorTests {
    func valid(_ pieces: [[UInt8]]) -> Bool {
        var validator = UTF8Validator()
        for piece in pieces {
            guard piece.withUnsafeBytes({ validator.consume($0) }) else { return false }
        }
        return validator.isComplete
    }

    @Test func acceptsWellFormedText() {
        #expect(valid([Array("plain ASCII, long enough for the fast path".utf8)]))
        #expect(valid([Array("κόσμε €𝄞".utf8)]))
        #expect(valid([[0xF0, 0x9D], [0x84, 0x9E]]))  // 𝄞 split in two
    }

    @Test func refusesWhatRFC3629Forbids() {
        #expect(!valid([[0xC0, 0x80]]))  // overlong
        #expect(!valid([[0xE0, 0x80, 0x80]]))  // overlong
        #expect(!valid([[0xED, 0xA0, 0x80]]))  // surrogate
        #expect(!valid([[0xF4, 0x90, 0x80, 0x80]]))  // above U+10FFFF
        #expect(!valid([[0xFF]]))
        #expect(!valid([[0x61, 0x80]]))  // stray continuation byte
        #expect(!valid([[0xE2, 0x82]]))  // truncated
    }
}

@Suite struct ConnectionCountsTests {
    @Test func capsTheTotalAndEachAddress() {
        var counts = ConnectionCounts(maxConnections: 3, maxPerIP: 2, maxAnswering: 1)
        #expect(counts.arrived(ip: "a") == .admit)
        #expect(counts.arrived(ip: "a") == .admit)
        #expect(counts.arrived(ip: "a") == .refuse)  // per IP
        #expect(counts.arrived(ip: "b") == .admit)
        #expect(counts.arrived(ip: "c") == .drop)  // total, and one refusal is still being answered
        counts.answered()
        #expect(counts.arrived(ip: "c") == .refuse)
        counts.answered()
        counts.closed(ip: "a")
        #expect(counts.count(ip: "a") == 1)
        #expect(counts.arrived(ip: "c") == .admit)
        #expect(counts.open == 3)
    }

    @Test func theCapFitsTheOpenFileLimit() {
        #expect(ConnectionGate.fit(20_000, openFileLimit: 256) == (maxConnections: 192, answering: 16))
        #expect(ConnectionGate.fit(20_000, openFileLimit: 1 << 20).maxConnections == 20_000)
        #expect(ConnectionGate.fit(20_000, openFileLimit: nil).maxConnections == 20_000)
    }
}
