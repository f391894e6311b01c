import AirwaveWebRTC

/// Which socket's event loop (shard) owns each session, and the routes that find the session of
/// a datagram: STUN with a USERNAME by the local ufrag in it, an answer to a session's own check
/// by its transaction ID, everything else (DTLS, SRTP) by the remote address. Shared by every
/// shard under one lock: the kernel spreads a peer's datagrams over the sockets by address, not
/// by session, so any shard may read a datagram of any session.
struct WebRTCUDPRoutes {
    /// Session ufrag → index of the shard that owns it.
    private(set) var shardByUfrag: [String: Int] = [:]
    /// Sessions per shard, to place a new one on the least loaded.
    private(set) var sessionsPerShard: [Int]
    /// Verified remote addresses → session ufrag.
    private var routes: [TransportAddress: String] = [:]
    /// Each session's entries in `routes`, so that forgetting a session costs its own routes only.
    private var routesBySession: [String: [TransportAddress]] = [:]
    /// Transaction IDs of the checks sessions sent → session ufrag: answers carry no USERNAME.
    private var checks: [[UInt8]: String] = [:]
    /// Each session's last few entries in `checks` (retransmissions reuse one).
    private var checksBySession: [String: [[UInt8]]] = [:]
    static let checksKeptPerSession = 8

    init(shards: Int) {
        sessionsPerShard = Array(repeating: 0, count: shards)
    }

    var sessionCount: Int { shardByUfrag.count }

    /// The shard a new session goes to: the one with the fewest.
    var leastLoadedShard: Int {
        sessionsPerShard.indices.min { sessionsPerShard[$0] < sessionsPerShard[$1] } ?? 0
    }

    /// Registers a session on `shard`; the error if the limit is reached or the ufrag taken.
    mutating func add(ufrag: String, shard: Int, maximumSessions: Int) -> WebRTCUDPError? {
        guard shardByUfrag.count < maximumSessions else { return .tooManySessions }
        guard shardByUfrag[ufrag] == nil else { return .duplicateUfrag }
        shardByUfrag[ufrag] = shard
        sessionsPerShard[shard] += 1
        return nil
    }

    /// Forgets a session and its routes.
    mutating func remove(ufrag: String) {
        guard let shard = shardByUfrag.removeValue(forKey: ufrag) else { return }
        sessionsPerShard[shard] -= 1
        for address in routesBySession.removeValue(forKey: ufrag) ?? [] where routes[address] == ufrag {
            routes[address] = nil
        }
        for transaction in checksBySession.removeValue(forKey: ufrag) ?? [] where checks[transaction] == ufrag {
            checks[transaction] = nil
        }
    }

    /// Where a datagram goes: the session, its shard, and the session `source` is routed to now.
    struct Destination {
        let ufrag: String
        let shard: Int
        let route: String?
    }

    /// What in a datagram names its session.
    enum Key {
        /// A check's USERNAME: the local ufrag in it.
        case ufrag(String)
        /// An answer to a session's own check.
        case transaction([UInt8])
        /// DTLS, SRTP, SRTCP: the address it came from.
        case address
    }

    /// The session a datagram from `source` belongs to, if any.
    func destination(_ key: Key, source: TransportAddress) -> Destination? {
        let route = routes[source]
        let owner: String?
        switch key {
        case .ufrag(let ufrag): owner = ufrag
        case .transaction(let transaction): owner = checks[transaction]
        case .address: owner = route
        }
        guard let owner, let shard = shardByUfrag[owner] else { return nil }
        return Destination(ufrag: owner, shard: shard, route: route)
    }

    /// Routes `source` to `ufrag` (the session verified it), unless the session is gone.
    mutating func route(_ source: TransportAddress, to ufrag: String) {
        guard shardByUfrag[ufrag] != nil, routes[source] != ufrag else { return }
        routes[source] = ufrag
        routesBySession[ufrag, default: []].append(source)
    }

    /// Remembers the transaction of a Binding request a session sends, to route its answer.
    mutating func noteCheck(_ bytes: [UInt8], ufrag: String) {
        guard bytes.count >= 20, bytes[0] == 0x00, bytes[1] == 0x01, shardByUfrag[ufrag] != nil else { return }
        let transaction = Array(bytes[8..<20])
        guard checks[transaction] == nil else { return }
        checks[transaction] = ufrag
        var kept = checksBySession[ufrag, default: []]
        kept.append(transaction)
        if kept.count > Self.checksKeptPerSession {
            let oldest = kept.removeFirst()
            if checks[oldest] == ufrag { checks[oldest] = nil }
        }
        checksBySession[ufrag] = kept
    }
}
