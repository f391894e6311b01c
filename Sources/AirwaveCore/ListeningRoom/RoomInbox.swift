import AirwaveProtocol

/// The bounded, fair queue of inputs waiting for one listening room's driver (issue 13,
/// finding 5). Each connection's inputs keep their order; connections are served round-robin,
/// one input at a time, so a flooder's backlog never delays another member by more than one
/// input per busy connection. Commands are bounded per connection and per room; a command over
/// either bound is refused (the transport answers `rate_limited` and stops reading the sender
/// for a moment); a connection with nothing waiting is always let in, so the room holds at most
/// `limit` commands plus one per connection. Joins and leaves are never refused: they are
/// bounded by the connections.
public struct RoomInbox<Item>: Sendable where Item: Sendable {
    /// Most commands one connection may have waiting.
    public let perConnectionLimit: Int
    /// Most commands waiting in the room, from connections that have one waiting already.
    public let limit: Int
    private var queues: [ConnectionID: [(item: Item, isCommand: Bool)]] = [:]
    private var commandsWaiting: [ConnectionID: Int] = [:]
    /// Connections with inputs waiting, in serving order; entries before `head` are served.
    private var order: [ConnectionID] = []
    private var head = 0
    /// Commands waiting, all connections together.
    public private(set) var commandCount = 0
    /// Inputs waiting, all kinds.
    public private(set) var count = 0

    public init(perConnectionLimit: Int, limit: Int) {
        self.perConnectionLimit = perConnectionLimit
        self.limit = limit
    }

    /// Queues an input of `connection`; a command (`isCommand`) is refused, and false returned,
    /// when the connection or the room is at its bound.
    public mutating func push(_ item: Item, from connection: ConnectionID, isCommand: Bool) -> Bool {
        if isCommand {
            let waiting = commandsWaiting[connection, default: 0]
            // A connection with nothing waiting always gets one place, so members who send one
            // message at a time are served even while others keep the room at its bound.
            guard waiting < perConnectionLimit, waiting == 0 || commandCount < limit else { return false }
            commandsWaiting[connection, default: 0] += 1
            commandCount += 1
        }
        if queues[connection, default: []].isEmpty { order.append(connection) }
        queues[connection, default: []].append((item, isCommand))
        count += 1
        return true
    }

    /// The next input: the oldest of the connection whose turn it is.
    public mutating func pop() -> Item? {
        guard head < order.count else { return nil }
        let connection = order[head]
        head += 1
        // Per-connection queues stay short (the bound), so removing the first is cheap.
        let (item, isCommand) = queues[connection]!.removeFirst()
        count -= 1
        if isCommand {
            let waiting = commandsWaiting[connection, default: 1]
            commandsWaiting[connection] = waiting > 1 ? waiting - 1 : nil
            commandCount -= 1
        }
        if queues[connection]!.isEmpty {
            queues[connection] = nil
        } else {
            order.append(connection)
        }
        if head > 64 && head * 2 > order.count {
            order.removeFirst(head)
            head = 0
        }
        return item
    }

    public var isEmpty: Bool { count == 0 }
}
