import AirwaveCore
import AirwaveMedia
import AirwaveProtocol
import NIOCore
import NIOEmbedded
import Testing

@testable import AirwaveServer

/// `HTTPListener` and its writer on an `EmbeddedChannel`, and `OggHTTPOutput`'s fan-out: chunks
/// wait for the response head, go out in order, the queue drops the oldest page of a listener
/// that does not read and the connection is dropped after the patience, the end page comes last.
@Suite struct ListenHTTPListenerTests {
    struct Harness {
        let channel = EmbeddedChannel()
        let listener: HTTPListener

        init(id: Int = 1, queueLimit: Int = 1 << 20, patience: Duration = .seconds(10)) throws {
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9)).wait()
            listener = try HTTPListener(id: ConnectionID(UInt64(id)), channel: channel, metrics: ServerMetrics(), queueLimit: queueLimit,
                                        patience: patience)
        }

        /// What Hummingbird's encoder writes: it passes through the listener's writer.
        func writeHead() throws {
            try channel.writeAndFlush(ByteBuffer(string: "HEAD;")).wait()
        }

        func deliver(_ text: String, _ itemClass: OutboundQueue<ByteBuffer>.Class = .audio, now: Timestamp = .now()) {
            listener.deliver(ByteBuffer(string: text), class: itemClass, now: now)
        }

        func setWritable(_ writable: Bool) {
            channel.isWritable = writable
            channel.pipeline.fireChannelWritabilityChanged()
        }

        func written() throws -> [UInt8] {
            var bytes: [UInt8] = []
            while let data = try channel.readOutbound(as: IOData.self) {
                guard case .byteBuffer(let buffer) = data else { continue }
                bytes += Array(buffer.readableBytesView)
            }
            return bytes
        }

        func writtenText() throws -> String {
            String(decoding: try written(), as: UTF8.self)
        }

        /// The listener's outcome so far: nil while its body still runs, else whether it ended cleanly.
        var done: Bool? {
            let outcome = Outcome()
            listener.done.whenComplete { outcome.value = (try? $0.get()) != nil }
            return outcome.value
        }
    }

    @Test func chunksWaitForTheResponseHeadThenGoOutInOrder() throws {
        let test = try Harness()
        test.deliver("headers;", .control)
        test.deliver("p1;")
        #expect(try test.writtenText() == "", "nothing before Hummingbird's head")
        try test.writeHead()
        #expect(try test.writtenText() == "HEAD;headers;p1;")
        test.deliver("p2;")
        #expect(try test.writtenText() == "p2;")
    }

    @Test func aListenerThatDoesNotReadLosesTheOldestPagesThenTheConnection() throws {
        // Each page is 3 bytes: 9 bytes hold the headers and two pages.
        let test = try Harness(queueLimit: 9)
        try test.writeHead()
        _ = try test.written()
        test.setWritable(false)
        let start = Timestamp(milliseconds: 1_000_000)
        test.deliver("hh;", .control, now: start)
        test.deliver("p1;", now: start)
        test.deliver("p2;", now: start)
        test.deliver("p3;", now: start)  // over the bound: p1 goes
        test.deliver("p4;", now: Timestamp(milliseconds: start.milliseconds + 9_999))  // p2 goes, still patient
        #expect(test.listener.channel.isActive)
        #expect(test.done == nil)
        test.deliver("p5;", now: Timestamp(milliseconds: start.milliseconds + 10_000))
        #expect(!test.channel.isActive, "over the bound for 10 s: dropped")
        #expect(test.done == false)
        test.setWritable(true)
        #expect(try test.writtenText() == "", "nothing was written after it was dropped")
    }

    @Test func aListenerThatCatchesUpGetsWhatWaitedInOrder() throws {
        let test = try Harness(queueLimit: 9)
        try test.writeHead()
        _ = try test.written()
        test.setWritable(false)
        test.deliver("hh;", .control)
        for page in ["p1;", "p2;", "p3;"] { test.deliver(page) }
        test.setWritable(true)
        #expect(try test.writtenText() == "hh;p2;p3;")
        #expect(test.channel.isActive)
    }

    @Test func theEndPageComesLastAndCompletesTheListener() throws {
        let test = try Harness()
        try test.writeHead()
        test.setWritable(false)
        test.deliver("p1;")
        test.listener.finish(ByteBuffer(string: "end;"))
        test.deliver("late;")
        #expect(test.done == nil, "the end waits behind the queue")
        test.setWritable(true)
        #expect(try test.writtenText() == "HEAD;p1;end;")
        #expect(test.done == true)
    }

    @Test func anEndThatCannotBeWrittenWithinThePatienceDropsTheConnection() throws {
        let test = try Harness(patience: .seconds(10))
        try test.writeHead()
        test.setWritable(false)
        test.deliver("p1;")
        test.listener.finish(ByteBuffer(string: "end;"))
        test.channel.embeddedEventLoop.advanceTime(by: .seconds(9))
        #expect(test.channel.isActive)
        test.channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(!test.channel.isActive)
        #expect(test.done == false)
    }

    @Test func aListenerThatHangsUpFailsItsBody() throws {
        let test = try Harness()
        try test.writeHead()
        try test.channel.close().wait()
        #expect(test.done == false)
    }

    @Test func everyListenerGetsTheHeadersThenTheSamePages() throws {
        let first = try Harness(id: 1)
        let second = try Harness(id: 2)
        for test in [first, second] { try test.writeHead() }
        var output = OggHTTPOutput(serialNumber: 42)
        output.add(first.listener)
        first.channel.embeddedEventLoop.run()
        let headers = try first.written()
        let head = Array("HEAD;".utf8)
        #expect(Array(headers.prefix(5)) == head && Self.contains(headers, "OpusHead") && Self.contains(headers, "OpusTags"))

        let packet = ListenOggPageStreamTests.packet(0)
        for _ in 0..<5 { #expect(output.append(packet, samples: 960).recipients == 0) }
        output.add(second.listener)  // joins mid-page: headers now, then the page in the making
        for _ in 0..<4 { _ = output.append(packet, samples: 960) }
        let sent = output.append(packet, samples: 960)
        #expect(sent.recipients == 2)
        for test in [first, second] { test.channel.embeddedEventLoop.run() }
        let firstPage = try first.written()
        let secondAll = try second.written()
        #expect(secondAll == headers + firstPage, "the second listener: head, headers, then the same page")
        #expect(firstPage.count == sent.bytes)

        // The event ends: both get the same end page and complete.
        let finished = [output.finish(first.listener.id), output.finish(second.listener.id), output.finish(first.listener.id)]
        #expect(finished == [true, true, false], "each finished once")
        for test in [first, second] { test.channel.embeddedEventLoop.run() }
        let ends = try [first.written(), second.written()]
        #expect(ends[0] == ends[1] && Self.contains(ends[0], "OggS"))
        #expect(first.done == true && second.done == true)
        #expect(output.isEmpty)
    }

    static func contains(_ bytes: [UInt8], _ text: String) -> Bool {
        let needle = Array(text.utf8)
        guard bytes.count >= needle.count else { return false }
        return (0...(bytes.count - needle.count)).contains { Array(bytes[$0..<$0 + needle.count]) == needle }
    }
}

/// The outcome of a future completed on an embedded loop (callbacks run inline).
private final class Outcome: @unchecked Sendable {
    var value: Bool?
}
