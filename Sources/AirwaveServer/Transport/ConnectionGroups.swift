import AirwaveCore
import AirwaveProtocol
import NIOCore

/// The connections of one event or directory, grouped by event loop, so that a fan-out costs
/// one hop per loop and the same frame (one buffer) is written to every member.
struct ConnectionGroups {
    private struct Group {
        let loop: any EventLoop
        var members: [ConnectionID: ClientConnection] = [:]
    }

    private var groups: [ObjectIdentifier: Group] = [:]
    private var loopOf: [ConnectionID: ObjectIdentifier] = [:]

    var count: Int { loopOf.count }

    subscript(id: ConnectionID) -> ClientConnection? {
        loopOf[id].flatMap { groups[$0]?.members[id] }
    }

    mutating func insert(_ connection: ClientConnection) {
        let key = ObjectIdentifier(connection.channel.eventLoop)
        groups[key, default: Group(loop: connection.channel.eventLoop)].members[connection.id] = connection
        loopOf[connection.id] = key
    }

    @discardableResult
    mutating func remove(_ id: ConnectionID) -> ClientConnection? {
        guard let key = loopOf.removeValue(forKey: id) else { return nil }
        let removed = groups[key]?.members.removeValue(forKey: id)
        if groups[key]?.members.isEmpty == true { groups[key] = nil }
        return removed
    }

    /// Sends to one member, through its queue; false if it is not a member.
    func send(_ frame: ByteBuffer, class itemClass: OutboundQueue<ByteBuffer>.Class, to id: ConnectionID) -> Bool {
        guard let connection = self[id] else { return false }
        let now = Timestamp.now()
        connection.channel.eventLoop.execute {
            connection.deliver(frame, class: itemClass, now: now)
        }
        return true
    }

    /// Sends to these members, one hop per event loop as `broadcast` does (an edge's mixed
    /// listeners get each mix packet this way); returns how many it went to.
    func send(_ frame: ByteBuffer, class itemClass: OutboundQueue<ByteBuffer>.Class, to ids: [ConnectionID]) -> Int {
        var byLoop: [ObjectIdentifier: [ClientConnection]] = [:]
        for id in ids {
            guard let key = loopOf[id], let connection = groups[key]?.members[id] else { continue }
            byLoop[key, default: []].append(connection)
        }
        let now = Timestamp.now()
        var sent = 0
        for (key, connections) in byLoop {
            guard let loop = groups[key]?.loop else { continue }
            sent += connections.count
            loop.execute {
                for connection in connections { connection.deliver(frame, class: itemClass, now: now) }
            }
        }
        return sent
    }

    var all: [ClientConnection] {
        groups.values.flatMap { $0.members.values }
    }

    /// Writes (and flushes) the wire frame to every member except `excluded`, touching each
    /// connection once. Returns how many connections it went to.
    @discardableResult
    func broadcast(
        _ frame: ByteBuffer, class itemClass: OutboundQueue<ByteBuffer>.Class = .control,
        except excluded: ConnectionID? = nil, skipping: Set<ConnectionID> = []
    ) -> Int {
        var sent = 0
        let now = Timestamp.now()
        for group in groups.values {
            let members = Array(group.members.values.lazy.filter { $0.id != excluded && !skipping.contains($0.id) })
            guard !members.isEmpty else { continue }
            sent += members.count
            group.loop.execute {
                for connection in members { connection.deliver(frame, class: itemClass, now: now) }
            }
        }
        return sent
    }

    /// Writes `frame` to the members a route's WebSocket audience names; returns how many it went to.
    func deliver(_ frame: ByteBuffer, to audience: LiveEvent.Audience, class itemClass: OutboundQueue<ByteBuffer>.Class) -> Int {
        switch audience {
        case .none: return 0
        case .one(let id): return send(frame, class: itemClass, to: id) ? 1 : 0
        case .only(let ids): return send(frame, class: itemClass, to: ids)
        case .all: return broadcast(frame, class: itemClass)
        case .allExcept(let sender, let skipping): return broadcast(frame, class: itemClass, except: sender, skipping: skipping)
        }
    }
}
