import AirwaveCore
import AirwaveProtocol
import NIOCore
import NIOEmbedded
import Testing

@testable import AirwaveServer

/// `WebSocketFrameReader` and `WebSocketSession` on an `EmbeddedChannel` with an echo receiver:
/// the close handshake, pings and the message deadline, with the event loop's clock in hand.
@Suite struct WebSocketSessionTests {
    struct Harness {
        let channel: EmbeddedChannel
        let connection: ClientConnection

        init(pingInterval: Duration = .seconds(60), limits: MessageLimits = MessageLimits(text: 1024, binary: 1024),
             messageTimeout: Duration = .seconds(10)) throws {
            channel = EmbeddedChannel()
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9)).wait()
            let metrics = ServerMetrics()
            connection = try ClientConnection(id: ConnectionID(1), channel: channel, metrics: metrics, queueLimit: 1 << 20)
            let session = try WebSocketSession.install(
                on: channel, connection: connection, metrics: metrics, pingInterval: pingInterval, limits: limits, messageTimeout: messageTimeout)
            session.admitted(EchoReceiver(connection: connection), departure: {})
        }

        func send(_ bytes: ByteBuffer) throws {
            try channel.writeInbound(bytes)
        }

        /// The frames the server wrote since the last call: (opcode, payload).
        func written() throws -> [(opcode: UInt8, payload: [UInt8])] {
            var frames: [(UInt8, [UInt8])] = []
            while var buffer = try channel.readOutbound(as: ByteBuffer.self) {
                while buffer.readableBytes > 0 {
                    let first = buffer.readInteger(as: UInt8.self)!
                    var length = Int(buffer.readInteger(as: UInt8.self)! & 0x7F)
                    if length == 126 { length = Int(buffer.readInteger(as: UInt16.self)!) }
                    else if length == 127 { length = Int(buffer.readInteger(as: UInt64.self)!) }
                    frames.append((first & 0x0F, buffer.readBytes(length: length)!))
                }
            }
            return frames
        }

        func closeCodes() throws -> [UInt16] {
            try written().filter { $0.opcode == 0x8 }.map { UInt16($0.payload[0]) << 8 | UInt16($0.payload[1]) }
        }
    }

    @Test func echoesAMessage() throws {
        let test = try Harness()
        try test.send(clientFrame(0x1, Array("hi".utf8)))
        let frames = try test.written()
        #expect(frames.count == 1 && frames[0].opcode == 0x1 && frames[0].payload == Array("hi".utf8))
    }

    @Test func aBadFrameFollowedAtOnceByTheClientsCloseStillGetsOurCloseFrame() throws {
        // Autobahn 9.1.2-9.1.3: both frames arrive in one read.
        for (bad, code) in [(clientFrame(0x1, Array("x".utf8), rsv: 0b100), UInt16(1002)), (clientFrame(0x1, Array(repeating: 0x61, count: 2000)), 1009)] {
            let test = try Harness()
            try test.send(bad + clientFrame(0x8, [0x03, 0xE8]))
            #expect(try test.closeCodes() == [code])
            #expect(!test.channel.isActive, "the socket closes once our close frame is written")
        }
    }

    @Test func theClientsCloseIsAnsweredAndTheSocketClosed() throws {
        let test = try Harness()
        try test.send(clientFrame(0x8, [0x0F, 0xA0]))  // 4000
        #expect(try test.closeCodes() == [1000])
        #expect(!test.channel.isActive)
    }

    @Test func aPongCountsOnlyWhenItEchoesThePing() throws {
        let test = try Harness(pingInterval: .seconds(1))
        test.channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        var ping = try test.written()
        #expect(ping.count == 1 && ping[0].opcode == 0x9 && ping[0].payload.count == 8)
        try test.send(clientFrame(0xA, ping[0].payload))  // the right payload: still open, pinged again
        test.channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        ping = try test.written()
        #expect(ping.count == 1 && ping[0].opcode == 0x9)
        try test.send(clientFrame(0xA, Array("not your ping".utf8)))  // does not count
        test.channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(try test.closeCodes() == [1001])
    }

    @Test func anUnfinishedFragmentedMessageIsClosedAtItsDeadline() throws {
        let test = try Harness(messageTimeout: .seconds(2))
        try test.send(clientFrame(0x1, Array("{\"type\":".utf8), fin: false))
        test.channel.embeddedEventLoop.advanceTime(by: .milliseconds(1900))
        #expect(try test.closeCodes() == [])
        test.channel.embeddedEventLoop.advanceTime(by: .milliseconds(100))
        #expect(try test.closeCodes() == [1008])
        // The peer answers: the handshake completes and the socket closes.
        try test.send(clientFrame(0x8, [0x03, 0xF0]))
        #expect(!test.channel.isActive)
    }

    @Test func aFrameWhosePayloadStallsIsClosedAtTheDeadlineToo() throws {
        let test = try Harness(messageTimeout: .seconds(2))
        var frame = clientFrame(0x2, Array(repeating: 1, count: 500))
        try test.send(frame.readSlice(length: 100)!)
        test.channel.embeddedEventLoop.advanceTime(by: .seconds(2))
        #expect(try test.closeCodes() == [1008])
    }

    @Test func anOversizedFrameGets1009AndItsPayloadIsDiscardedUntilTheClientCloses() throws {
        let test = try Harness(limits: MessageLimits(text: 64, binary: 100))
        var frame = clientFrame(0x2, Array(repeating: 1, count: 5000))
        try test.send(frame.readSlice(length: 50)!)
        #expect(try test.closeCodes() == [1009])
        #expect(test.channel.isActive, "no reset while the client is still sending")
        try test.send(frame + clientFrame(0x8, [0x03, 0xE8]))
        #expect(!test.channel.isActive)
    }
}
