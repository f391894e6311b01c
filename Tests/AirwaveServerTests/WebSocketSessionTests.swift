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
        let session: WebSocketSession
        let receiver: ScriptedReceiver
        let departures = Counter()

        init(pingInterval: Duration = .seconds(60), limits: MessageLimits = MessageLimits(text: 1024, binary: 1024),
             messageTimeout: Duration = .seconds(10), admit: Bool = true) throws {
            channel = EmbeddedChannel()
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9)).wait()
            let metrics = ServerMetrics()
            connection = try ClientConnection(id: ConnectionID(1), channel: channel, metrics: metrics, queueLimit: 1 << 20)
            session = try WebSocketSession.install(
                on: channel, connection: connection, metrics: metrics, pingInterval: pingInterval, limits: limits, messageTimeout: messageTimeout)
            receiver = ScriptedReceiver(connection: connection)
            if admit { self.admit() }
        }

        /// The endpoint's admission, as `AirwaveServer.openSession` reports it.
        func admit() {
            let departures = self.departures
            session.admitted(receiver, departure: { departures.add() })
        }

        func advance(by time: TimeAmount) {
            channel.embeddedEventLoop.advanceTime(by: time)
        }

        /// The text of every text frame written since the last look, and close frames as "close <code>".
        func texts() throws -> [String] {
            try WireFrame.written(channel).map { $0.closeCode.map { "close \($0)" } ?? $0.text }
        }

        func send(_ bytes: ByteBuffer) throws {
            try channel.writeInbound(bytes)
        }

        /// The frames the server wrote since the last call.
        func written() throws -> [WireFrame] {
            try WireFrame.written(channel)
        }

        func closeCodes() throws -> [UInt16] {
            try written().compactMap(\.closeCode)
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
        ping = try test.written()  // one unanswered ping: pinged once more (PROTOCOL.md 6: two)
        #expect(ping.count == 1 && ping[0].opcode == 0x9)
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

/// Echoes each message (so a test sees what was delivered, in order) and answers with the
/// verdicts it is given, then `.keepReading`.
final class ScriptedReceiver: InboundReceiver {
    private let connection: ClientConnection
    var verdicts: [InboundVerdict] = []

    init(connection: ClientConnection) {
        self.connection = connection
    }

    func text(_ text: String, now: Timestamp) -> InboundVerdict {
        connection.send(WebSocketWire.frame(opcode: WebSocketWire.text, payload: ByteBuffer(string: text)))
        return verdicts.isEmpty ? .keepReading : verdicts.removeFirst()
    }

    func binary(_ buffer: ByteBuffer, now: Timestamp) -> InboundVerdict {
        connection.send(WebSocketWire.frame(opcode: WebSocketWire.binary, payload: buffer))
        return verdicts.isEmpty ? .keepReading : verdicts.removeFirst()
    }
}

/// How often a departure ran (on the embedded loop, the test's thread).
final class Counter: @unchecked Sendable {
    private(set) var value = 0
    func add() { value += 1 }
}

private func text(_ string: String) -> ByteBuffer { clientFrame(0x1, Array(string.utf8)) }

extension WebSocketSessionTests {
    @Test func messagesWaitForTheAdmissionAndArriveInOrder() throws {
        let test = try Harness(admit: false)
        try test.send(text("a") + text("b"))
        try test.send(text("c"))
        #expect(try test.texts() == [])
        test.admit()
        #expect(try test.texts() == ["a", "b", "c"])
        try test.send(text("d"))
        #expect(try test.texts() == ["d"])
    }

    @Test func theSixteenthWaitingMessagePausesReadingUntilTheAdmission() throws {
        let test = try Harness(admit: false)
        for i in 1..<WebSocketSessionStateMachine.pendingLimit { try test.send(text("\(i)")) }
        #expect(test.session.machine.readPause == .none)
        try test.send(text("16") + text("17"))  // read in the same batch: kept
        #expect(test.session.machine.readPause == .admission)
        test.admit()
        #expect(test.session.machine.readPause == .none)
        #expect(try test.texts() == (1...17).map { "\($0)" })
    }

    @Test func anOverLimitVerdictDropsWhatWasReadWithItAndReadsAgainAfterThePause() throws {
        let test = try Harness()
        test.receiver.verdicts = [.overLimit]
        try test.send(text("a") + text("b") + text("c"))
        #expect(try test.texts() == ["a"], "b and c were read with it: dropped unparsed")
        #expect(test.session.machine.readPause == .overLimit)
        test.advance(by: WebSocketSessionStateMachine.overLimitPause)
        #expect(test.session.machine.readPause == .none)
        try test.send(text("d"))
        #expect(try test.texts() == ["d"])
    }

    @Test func aStopVerdictDepartsAndClosesNormallyAfterTheGrace() throws {
        let test = try Harness()
        test.receiver.verdicts = [.stop]
        try test.send(text("a") + text("b"))
        #expect(try test.texts() == ["a"])
        #expect(test.departures.value == 1)
        test.advance(by: .milliseconds(1999))
        #expect(try test.texts() == [])
        test.advance(by: .milliseconds(1))
        #expect(try test.texts() == ["close 1000"])
        try test.send(clientFrame(0x8, [0x03, 0xE8]))
        #expect(!test.channel.isActive)
        #expect(test.departures.value == 1)
    }

    @Test func anEndpointsCloseGoesOutAtOnceAndTheDepartureWaitsForTheAnswer() throws {
        let test = try Harness()
        test.connection.close(.eventEnded, reason: "stream_ended")
        #expect(try test.texts() == ["close 4410"])
        try test.send(text("late"))
        #expect(try test.texts() == [], "nothing is delivered after our close frame")
        #expect(test.departures.value == 0)
        try test.send(clientFrame(0x8, [0x11, 0x3A]))
        #expect(!test.channel.isActive)
        #expect(test.departures.value == 1)
    }

    @Test func aPeerThatNeverAnswersOurCloseIsClosedAtTheDeadline() throws {
        let test = try Harness()
        test.connection.close(.normal, timeout: .seconds(3))
        #expect(try test.texts() == ["close 1000"])
        test.advance(by: .milliseconds(2999))
        #expect(test.channel.isActive)
        test.advance(by: .milliseconds(1))
        #expect(!test.channel.isActive)
        #expect(test.departures.value == 1)
    }

    @Test func aPeerCloseCrossingOurQueuedCloseFrameWaitsForItThenCloses() throws {
        let test = try Harness()
        test.channel.isWritable = false
        test.channel.pipeline.fireChannelWritabilityChanged()
        test.connection.send(.string("queued"))
        test.connection.close(.goingAway, reason: "server_shutdown")
        try test.send(clientFrame(0x8, [0x03, 0xE8]))
        #expect(test.channel.isActive, "our close frame is not written yet")
        #expect(try test.texts() == [])
        test.channel.isWritable = true
        test.channel.pipeline.fireChannelWritabilityChanged()
        #expect(try test.texts() == ["\"queued\"", "close 1001"])
        #expect(!test.channel.isActive)
    }

    @Test func thePeersCloseDropsWhatWaitsForTheSocketAndIsAnsweredAtOnce() throws {
        let test = try Harness()
        test.channel.isWritable = false
        test.channel.pipeline.fireChannelWritabilityChanged()
        test.connection.send(.string("moot"))
        try test.send(clientFrame(0x8, [0x03, 0xE8]))
        #expect(try test.texts() == ["close 1000"])
        #expect(!test.channel.isActive)
        #expect(test.departures.value == 1)
    }

    @Test func aConnectionGoneDuringItsAdmissionDepartsWhenAdmittedAndARefusalOwesNothing() throws {
        let gone = try Harness(admit: false)
        try gone.send(text("a") + clientFrame(0x8, [0x03, 0xE8]))
        #expect(try gone.texts() == ["close 1000"])
        #expect(!gone.channel.isActive)
        gone.admit()
        #expect(gone.departures.value == 1)
        #expect(try gone.texts() == [], "the waiting message is not delivered")

        let refused = try Harness(admit: false)
        refused.session.refused()
        refused.connection.refuse(ProtocolError(.unauthorized, "no"))
        let frames = try WireFrame.written(refused.channel)
        #expect(frames.count == 2 && frames[0].text.contains("unauthorized") && frames[1].closeCode == 4401)
        try refused.send(clientFrame(0x8, [0x0F, 0xA0]))
        #expect(!refused.channel.isActive)
        #expect(refused.departures.value == 0)
    }

    @Test func theFinOfThePeerClosesAndDepartsOnce() throws {
        let test = try Harness()
        test.channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        #expect(!test.channel.isActive)
        #expect(test.departures.value == 1)
    }
}
