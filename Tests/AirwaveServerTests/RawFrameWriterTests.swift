import AirwaveCore
import AirwaveProtocol
import NIOCore
import NIOEmbedded
import Testing

@testable import AirwaveServer

/// `RawFrameWriter` under a bare `ClientConnection` on an `EmbeddedChannel`, with the socket's
/// writability in hand: the order of writes, the queue's drop rules while the socket is full,
/// the close frame last and nothing after it.
@Suite struct RawFrameWriterTests {
    struct Harness {
        let channel = EmbeddedChannel()
        let connection: ClientConnection
        let writer: RawFrameWriter

        init(queueLimit: Int = 1 << 20) throws {
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9)).wait()
            connection = try ClientConnection(id: ConnectionID(1), channel: channel, metrics: ServerMetrics(), queueLimit: queueLimit)
            writer = try channel.pipeline.syncOperations.handler(type: RawFrameWriter.self)
        }

        func deliver(_ text: String, _ itemClass: OutboundQueue<ByteBuffer>.Class = .control, now: Timestamp = .now()) {
            connection.deliver(Self.frame(text), class: itemClass, now: now)
        }

        static func frame(_ text: String) -> ByteBuffer {
            WebSocketWire.frame(opcode: WebSocketWire.text, payload: ByteBuffer(string: text))
        }

        func setWritable(_ writable: Bool) {
            channel.isWritable = writable
            channel.pipeline.fireChannelWritabilityChanged()
        }

        func written() throws -> [String] {
            try WireFrame.written(channel).map(\.description)
        }
    }

    @Test func framesGoOutInOrderEachFlushedAtOnce() throws {
        let test = try Harness()
        test.deliver("a")
        #expect(try test.written() == ["1:a"], "flushed before the next frame is even offered")
        test.deliver("b", .audio)
        test.deliver("c", .screen(keyframe: true))
        #expect(try test.written() == ["1:b", "1:c"])
        #expect(test.writer.queuedBytes == 0)
    }

    @Test func aFullSocketQueuesAndTheQueueDropsTheOldestAudioFirst() throws {
        // Each frame is 2 header bytes + 2 payload bytes: 4 bytes, so 12 bytes hold three.
        let test = try Harness(queueLimit: 12)
        test.setWritable(false)
        test.deliver("c1")
        test.deliver("a1", .audio)
        test.deliver("a2", .audio)
        #expect(try test.written() == [])
        #expect(test.writer.queuedBytes == 12)
        test.deliver("c2")  // over the bound: a1 goes
        test.deliver("a3", .audio)  // a2 goes
        #expect(test.writer.queuedBytes == 12)
        // A frame offered while others wait goes behind them, even once the socket takes more.
        test.setWritable(true)
        #expect(try test.written() == ["1:c1", "1:c2", "1:a3"])
        test.deliver("after")
        #expect(try test.written() == ["1:after"])
    }

    @Test func theCloseFrameWaitsBehindWhatIsQueuedAndNothingFollowsIt() throws {
        let test = try Harness()
        test.setWritable(false)
        test.deliver("c1")
        test.deliver("a1", .audio)
        let promise = test.channel.eventLoop.makePromise(of: Void.self)
        let written = Flag()
        promise.futureResult.whenSuccess { written.value = true }
        test.writer.sendClose(WebSocketWire.close(code: 1000, reason: nil), discardQueued: false, promise: promise)
        #expect(test.writer.closeFrameSent)
        test.deliver("late")  // after the close frame: never written
        test.connection.send(WebSocketWire.frame(opcode: WebSocketWire.pong, payload: ByteBuffer()))  // not even a control frame
        #expect(try test.written() == [])
        #expect(!written.value, "the promise waits for the write")
        test.setWritable(true)
        #expect(try test.written() == ["1:c1", "1:a1", "close 1000"])
        #expect(written.value)
        test.deliver("later")
        #expect(try test.written() == [])
        // A second close frame is refused.
        let second = test.channel.eventLoop.makePromise(of: Void.self)
        test.writer.sendClose(WebSocketWire.close(code: 1001, reason: nil), discardQueued: false, promise: second)
        #expect(throws: ChannelError.self) { try second.futureResult.wait() }
        #expect(try test.written() == [])
    }

    @Test func answeringThePeersCloseDropsWhatWaitsAndWritesAtOnce() throws {
        let test = try Harness()
        test.setWritable(false)
        test.deliver("c1")
        test.writer.sendClose(WebSocketWire.close(code: 1000, reason: nil), discardQueued: true, promise: nil)
        #expect(try test.written() == ["close 1000"])
        #expect(test.writer.queuedBytes == 0)
        test.setWritable(true)
        #expect(try test.written() == [])
    }

    @Test func aCloseFrameStillQueuedWhenTheChannelGoesFailsItsPromise() throws {
        let test = try Harness()
        test.setWritable(false)
        test.deliver("c1")
        let promise = test.channel.eventLoop.makePromise(of: Void.self)
        test.writer.sendClose(WebSocketWire.close(code: 1000, reason: nil), discardQueued: false, promise: promise)
        _ = try? test.channel.finish()
        #expect(throws: ChannelError.self) { try promise.futureResult.wait() }
    }

    @Test func aListenerCongestedPastItsPatienceGetsTooSlowThenTheCloseFrame() throws {
        let test = try Harness(queueLimit: 8)
        test.setWritable(false)
        let start = Timestamp.now()
        test.deliver("c1", now: start)
        test.deliver("c2", now: start)
        test.deliver("c3", now: start)  // over the bound: congested from now
        #expect(try test.written() == [])
        test.deliver("c4", now: start + .seconds(10))  // the default patience
        // The error goes ahead of everything; the close frame waits for the socket.
        let frames = try WireFrame.written(test.channel)
        #expect(frames.count == 1 && frames[0].text.contains("\"too_slow\""), "\(frames)")
        #expect(test.connection.isClosing)
        test.deliver("c5", now: start + .seconds(10))
        test.setWritable(true)
        #expect(try test.written() == ["close 4408"], "what waited was dropped; nothing follows the close frame")
    }
}

/// Set from a future's callback, which runs on the embedded loop, the test's own thread.
private final class Flag: @unchecked Sendable {
    var value = false
}
