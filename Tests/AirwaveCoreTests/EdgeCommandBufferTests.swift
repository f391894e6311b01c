import AirwaveCore
import AirwaveProtocol
import AirwaveTestSupport
import Testing

/// The bounded buffer of commands waiting for the link (`EdgeCommandBuffer`).
@Suite("Edge command buffer")
struct EdgeCommandBufferTests {
    static func c(_ n: UInt64) -> ConnectionID { ConnectionID(n) }

    @Test func bothBoundsRefuseAndDrainKeepsArrivalOrder() {
        var buffer = EdgeCommandBuffer(limit: 3, perClientLimit: 2)
        var pushed: Bool
        pushed = buffer.push(.chat("a1"), from: Self.c(1))
        #expect(pushed)
        pushed = buffer.push(.chat("b1"), from: Self.c(2))
        #expect(pushed)
        pushed = buffer.push(.chat("a2"), from: Self.c(1))
        #expect(pushed)
        pushed = buffer.push(.chat("a3"), from: Self.c(1))
        #expect(!pushed)  // per client
        pushed = buffer.push(.chat("c1"), from: Self.c(3))
        #expect(!pushed)  // in all
        #expect(buffer.count(of: Self.c(1)) == 2)
        let drained = buffer.drain()
        #expect(drained.map(\.command) == [.chat("a1"), .chat("b1"), .chat("a2")])
        #expect(buffer.entries.isEmpty && buffer.count(of: Self.c(1)) == 0)
        pushed = buffer.push(.chat("a4"), from: Self.c(1))
        #expect(pushed)  // room again
    }

    @Test func aClientThatLeavesFreesItsSlots() {
        var buffer = EdgeCommandBuffer(limit: 2, perClientLimit: 2)
        var pushed: Bool
        pushed = buffer.push(.leave, from: Self.c(1))
        #expect(pushed)
        pushed = buffer.push(.acceptCohost, from: Self.c(1))
        #expect(pushed)
        pushed = buffer.push(.chat("x"), from: Self.c(2))
        #expect(!pushed)
        buffer.remove(client: Self.c(1))
        pushed = buffer.push(.chat("x"), from: Self.c(2))
        #expect(pushed)
        let drained = buffer.drain()
        #expect(drained.map(\.client) == [Self.c(2)] && drained.map(\.command) == [.chat("x")])
    }

    /// The obvious model: a list, bounded by a count of everything and of the client's entries.
    struct Model {
        var limit: Int
        var perClient: Int
        var items: [(ConnectionID, LiveCommand)] = []

        mutating func push(_ command: LiveCommand, from client: ConnectionID) -> Bool {
            guard items.count < limit, items.filter({ $0.0 == client }).count < perClient else { return false }
            items.append((client, command))
            return true
        }
    }

    @Test("pushes, leaves and drains match the model", arguments: [(UInt64(1), 8, 3), (2, 1, 1), (3, 50, 50), (4, 30, 4), (5, 0, 3)])
    func againstTheModel(seed: UInt64, limit: Int, perClient: Int) {
        var random = SplitMix64(seed: seed)
        var buffer = EdgeCommandBuffer(limit: limit, perClientLimit: perClient)
        var model = Model(limit: limit, perClient: perClient)
        var refusals = 0
        for step in 0..<20_000 {
            let client = Self.c(UInt64(random.next(below: 6)))
            switch random.next(below: 20) {
            case 0:
                buffer.remove(client: client)
                model.items.removeAll { $0.0 == client }
            case 1:
                let drained = buffer.drain()
                guard drained.map(\.client) == model.items.map(\.0), drained.map(\.command) == model.items.map(\.1) else {
                    Issue.record("seed \(seed) step \(step): drained \(drained.count), model \(model.items.count)")
                    return
                }
                model.items.removeAll()
            default:
                let command = LiveCommand.chat("m\(step)")
                let accepted = buffer.push(command, from: client)
                if !accepted { refusals += 1 }
                guard accepted == model.push(command, from: client) else {
                    Issue.record("seed \(seed) step \(step): push \(accepted), model disagrees")
                    return
                }
            }
            guard buffer.entries.count == model.items.count, buffer.count(of: client) == model.items.filter({ $0.0 == client }).count else {
                Issue.record("seed \(seed) step \(step): \(buffer.entries.count) entries, model \(model.items.count)")
                return
            }
            #expect(buffer.entries.count <= limit)
        }
        #expect(refusals > 0, "seed \(seed): the bounds were never reached")
    }
}
