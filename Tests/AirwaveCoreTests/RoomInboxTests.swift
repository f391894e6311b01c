import AirwaveCore
import AirwaveProtocol
import Testing

/// The room driver's bounded, fair inbox (issue 13, finding 5).
@Suite("RoomInbox")
struct RoomInboxTests {
    static let a = ConnectionID(1), b = ConnectionID(2), c = ConnectionID(3)

    @Test("connections are served round-robin, each in its own order: a flooder's backlog delays another member by one input")
    func roundRobin() {
        var inbox = RoomInbox<String>(perConnectionLimit: 100, limit: 1_000)
        for i in 0..<50 { _ = inbox.push("a\(i)", from: Self.a, isCommand: true) }
        let pushed = [inbox.push("b0", from: Self.b, isCommand: true), inbox.push("c0", from: Self.c, isCommand: true),
                      inbox.push("b1", from: Self.b, isCommand: true)]
        #expect(pushed == [true, true, true])
        var served: [String] = []
        while let next = inbox.pop() { served.append(next) }
        #expect(Array(served.prefix(6)) == ["a0", "b0", "c0", "a1", "b1", "a2"])
        #expect(served.filter { $0.hasPrefix("a") } == (0..<50).map { "a\($0)" })
        #expect(served.count == 53)
        #expect(inbox.isEmpty && inbox.count == 0 && inbox.commandCount == 0)
    }

    @Test("commands are bounded per connection and per room; joins and leaves never; taking one frees a place")
    func bounds() {
        var inbox = RoomInbox<String>(perConnectionLimit: 2, limit: 3)
        let pushed = [
            inbox.push("join a", from: Self.a, isCommand: false), inbox.push("a1", from: Self.a, isCommand: true),
            inbox.push("a2", from: Self.a, isCommand: true), inbox.push("a3", from: Self.a, isCommand: true),
            inbox.push("leave a", from: Self.a, isCommand: false), inbox.push("b1", from: Self.b, isCommand: true),
            // The room is at its bound: a connection with one waiting is refused, one with none is not.
            inbox.push("b2", from: Self.b, isCommand: true), inbox.push("c1", from: Self.c, isCommand: true),
            inbox.push("c2", from: Self.c, isCommand: true), inbox.push("join c", from: Self.c, isCommand: false),
        ]
        #expect(pushed == [true, true, true, false, true, true, false, true, false, true])
        #expect(inbox.commandCount == 4 && inbox.count == 7)
        let first = inbox.pop()
        #expect(first == "join a")
        let stillFull = inbox.push("b2", from: Self.b, isCommand: true)
        #expect(!stillFull)
        let second = inbox.pop()
        #expect(second == "b1")
        let third = inbox.pop()
        #expect(third == "c1")
        // Two places free again (the room's bound, and b's own).
        let accepted = [inbox.push("b2", from: Self.b, isCommand: true), inbox.push("c2", from: Self.c, isCommand: true)]
        #expect(accepted == [true, true])
        var rest: [String] = []
        while let next = inbox.pop() { rest.append(next) }
        #expect(rest == ["a1", "join c", "b2", "a2", "c2", "leave a"])
    }

    @Test("a long run stays bounded in memory: the serving order is compacted")
    func longRun() {
        var inbox = RoomInbox<Int>(perConnectionLimit: 4, limit: 8)
        var served = 0
        for i in 0..<100_000 {
            _ = inbox.push(i, from: ConnectionID(UInt64(i % 3)), isCommand: true)
            if i % 2 == 1 {
                while inbox.pop() != nil { served += 1 }
            }
        }
        #expect(served == 100_000)
        #expect(inbox.isEmpty)
    }
}
