import AirwaveProtocol

/// Commands of an edge's clients that wait while the link to the origin is down, in arrival
/// order, to go up once it is back. Bounded in total and per client, so that one chatty client
/// cannot take the slots of everyone else and a long outage costs bounded memory.
public struct EdgeCommandBuffer: Sendable {
    /// One waiting command.
    public struct Entry: Sendable, Hashable {
        public var client: ConnectionID
        public var command: LiveCommand
    }

    /// Most commands waiting in all.
    public let limit: Int
    /// Most commands waiting from one client.
    public let perClientLimit: Int
    public private(set) var entries: [Entry] = []
    private var perClient: [ConnectionID: Int] = [:]

    public init(limit: Int, perClientLimit: Int) {
        precondition(limit >= 0 && perClientLimit >= 0)
        self.limit = limit
        self.perClientLimit = perClientLimit
    }

    /// Queues the command; false (nothing queued) when either bound is reached.
    public mutating func push(_ command: LiveCommand, from client: ConnectionID) -> Bool {
        let waiting = perClient[client, default: 0]
        guard entries.count < limit, waiting < perClientLimit else { return false }
        entries.append(Entry(client: client, command: command))
        perClient[client] = waiting + 1
        return true
    }

    /// Forgets the client's commands (it left: the origin would ignore them).
    public mutating func remove(client: ConnectionID) {
        guard perClient.removeValue(forKey: client) != nil else { return }
        entries.removeAll { $0.client == client }
    }

    /// Every waiting command, oldest first; the buffer is empty afterwards.
    public mutating func drain() -> [Entry] {
        defer {
            entries.removeAll()
            perClient.removeAll()
        }
        return entries
    }

    /// Commands waiting from this client.
    public func count(of client: ConnectionID) -> Int { perClient[client, default: 0] }
}
