import AirwaveCore
import AirwaveProtocol
import AirwaveStore
import Logging

/// Knows every listening room in memory; loads a room from the store when its first member
/// arrives and forgets it when the last one leaves.
///
/// Rooms without a host are opened by connecting to a new id, so they are bounded here
/// (issue 13, finding 8): at most `RoomLimits.guestRoomLimit` of them exist, stored or open.
/// One that is left holding nothing (no queue, song, playback or chat) is deleted when its last
/// member leaves, so connecting alone does not use up the bound; when the bound is reached,
/// guest rooms nothing was stored in for `RoomLimits.guestRoomIdle` are deleted to make room,
/// so the bound is a window of recently used rooms rather than a lifetime total.
actor ListeningRoomRegistry {
    private var drivers: [String: ListeningRoomDriver] = [:]
    private var tasks: [String: Task<Void, Never>] = [:]
    /// Rooms whose stored state is being read, and rooms being created through the API: the two
    /// must not overlap, or a joiner could load a room without the host it is about to get.
    private var loading: [String: Int] = [:]
    private var creating: Set<String> = []
    /// Empty guest rooms being deleted after their last member left; a joiner waits for it.
    private var pruning: [String: Task<Void, Never>] = [:]
    /// Idle guest rooms being deleted to make room; every opening from the store waits for it.
    private var evicting: Task<Void, Never>?
    /// Rooms without a host that are stored or open; read from the store on first use.
    private var guestRooms: Int?
    /// Open guest rooms that were not stored when they were opened (counted in `guestRooms`).
    private var unstoredGuestRooms: Set<String> = []
    private let store: any RoomStore
    private let metrics: ServerMetrics
    private let logBound: RoomLogBound
    private var services: ListeningRoomDriver.Services?
    /// Names this process in guest voter keys (`RoomMember(instance:)`): connection numbers are
    /// per process, so two nodes, or two runs of one node, must never share it.
    nonisolated let instance: String

    /// How much of each room's log is kept by default: a node that falls further behind (it
    /// missed notifications for that long) reloads the room from its rows instead.
    static let defaultLogBound = RoomLogBound(entries: 1_000, age: 10 * 60 * 1_000)

    /// A fresh instance name: random, so a restarted node gets a new one too.
    static func newInstance() -> String { String(UInt64.random(in: 0...UInt64.max), radix: 36) }

    private let logger: Logger

    init(store: any RoomStore, metrics: ServerMetrics, logger: Logger = Logger(label: "airwave.rooms"),
         instance: String = ListeningRoomRegistry.newInstance(), logBound: RoomLogBound = ListeningRoomRegistry.defaultLogBound) {
        self.store = store
        self.metrics = metrics
        self.logger = logger
        self.instance = instance
        self.logBound = logBound
    }

    /// Starts the registry; rooms store their changes themselves, one transaction per turn.
    func attach() {
        services = ListeningRoomDriver.Services(
            store: store, metrics: metrics, logger: logger, logBound: logBound,
            onIdle: { [weak self] roomID in await self?.forget(roomID) })
    }


    /// Follows other nodes' turns: each payload is `<room id> <last seq> <created_at>` as the
    /// store announces it (`SQLEventStore.roomLogChannel`); a room open here whose driver is
    /// behind, or knows another incarnation of the room, catches up. `ClusterNode.everyRoom`
    /// (notifications may have been missed) makes every open room read its log. Returns when the
    /// stream ends.
    func follow(_ payloads: AsyncStream<String>) async {
        for await payload in payloads {
            if payload == ClusterNode.everyRoom {
                for driver in drivers.values { driver.notify(RoomLogPosition(seq: .max, createdAt: nil)) }
                continue
            }
            guard let (roomID, position) = Self.position(payload) else { continue }
            drivers[roomID]?.notify(position)
        }
    }

    /// Reads `<room id> <seq> <created_at>` (the room id may hold spaces; the numbers cannot).
    static func position(_ payload: String) -> (String, RoomLogPosition)? {
        guard let last = payload.lastIndex(of: " "), let createdAt = Int64(payload[payload.index(after: last)...]) else { return nil }
        let rest = payload[..<last]
        guard let middle = rest.lastIndex(of: " "), let seq = Int64(rest[rest.index(after: middle)...]) else { return nil }
        return (String(rest[..<middle]), RoomLogPosition(seq: seq, createdAt: createdAt))
    }

    /// The room's driver, loading the room from the store if it is not in memory. A room that
    /// does not exist yet opens without a host unless `limits.guestRoomLimit` guest rooms exist
    /// (`quota_exceeded`).
    func driver(for roomID: String, limits: RoomLimits) async throws -> ListeningRoomDriver {
        if let driver = drivers[roomID] { return driver }
        if let prune = pruning[roomID] { await prune.value }
        while let evicting { await evicting.value }
        if let driver = drivers[roomID] { return driver }
        guard let services else { preconditionFailure("registry used before attach") }
        guard !creating.contains(roomID) else {
            throw ProtocolError(.badRequest, "The room is being created; try again.")
        }
        loading[roomID, default: 0] += 1
        defer {
            loading[roomID]! -= 1
            if loading[roomID] == 0 { loading[roomID] = nil }
        }
        // The room as stored and its position in the log, read together.
        let tail = try await store.roomLog(id: roomID, after: .unknown, chatLimit: 100)
        let stored = tail.reload?.room
        let chat = tail.reload?.chat ?? []
        // Another caller may have loaded it while this one waited for the store.
        if let driver = drivers[roomID] { return driver }
        if stored == nil {
            try await loadGuestRoomCount()
            if let driver = drivers[roomID] { return driver }
            if guestRooms ?? 0 >= limits.guestRoomLimit { await evictIdleGuestRooms(limits) }
            if let driver = drivers[roomID] { return driver }
            // Read and counted with no suspension in between: concurrent openings each count.
            let count = guestRooms ?? 0
            guard count < limits.guestRoomLimit else {
                throw ProtocolError(.quotaExceeded, "Too many listening rooms without a host; try again later.",
                                    details: ["reason": "guest_rooms", "limit": .int(limits.guestRoomLimit)])
            }
            guestRooms = count + 1
            unstoredGuestRooms.insert(roomID)
        }
        let room = ListeningRoom(roomID: roomID, hostUserID: stored?.hostUserID,
                                 restored: stored.map { RoomSnapshot($0.state, chat: chat) } ?? RoomSnapshot(),
                                 queueLimit: limits.queueLimit)
        let driver = ListeningRoomDriver(roomID: roomID, position: tail.position, limits: limits)
        drivers[roomID] = driver
        metrics.roomsOpen.record(drivers.count)
        tasks[roomID] = Task { await driver.run(room: room, services: services) }
        return driver
    }

    /// Creates a room with a host, unless the id is in use (stored, or open in memory: a room
    /// people joined without a host, whose state may not be stored yet, or being opened), or
    /// the user owns `limit` rooms already.
    func createHostRoom(_ roomID: String, hostUserID: String, at: Timestamp, limit: Int) async throws -> RoomCreation {
        guard drivers[roomID] == nil, loading[roomID] == nil, pruning[roomID] == nil else { return .exists }
        creating.insert(roomID)
        defer { creating.remove(roomID) }
        return try await store.createRoom(id: roomID, hostUserID: hostUserID, at: at.milliseconds, hostRoomLimit: limit)
    }

    /// Whether the room is open in memory.
    func isLoaded(_ roomID: String) -> Bool { drivers[roomID] != nil }

    /// Deletes guest rooms idle for `limits.guestRoomIdle` (none open or being opened), at most
    /// a hundred at a time; openings that read the store meanwhile wait, so none loads a room
    /// that is being deleted.
    private func evictIdleGuestRooms(_ limits: RoomLimits) async {
        if let evicting { return await evicting.value }
        let keeping = Set(drivers.keys).union(loading.keys).union(pruning.keys)
        let cutoff = Timestamp.now().milliseconds - Int64(limits.guestRoomIdle.components.seconds) * 1_000
        let store = self.store
        let task = Task {
            let deleted = (try? await store.deleteIdleGuestRooms(inactiveBefore: cutoff, keeping: keeping, limit: 100)) ?? 0
            if deleted > 0, let count = self.guestRooms { self.guestRooms = max(0, count - deleted) }
        }
        evicting = task
        await task.value
        evicting = nil
    }

    /// Reads how many guest rooms are stored, once per process; later changes are counted here.
    private func loadGuestRoomCount() async throws {
        guard guestRooms == nil else { return }
        let count = try await store.guestRoomCount()
        // Another opening may have loaded it meanwhile, and counted itself since.
        guard guestRooms == nil else { return }
        guestRooms = count + unstoredGuestRooms.count
    }

    /// The room's last member left: out of memory, and out of the store if it holds nothing and
    /// has no host (a room people only connected to).
    private func forget(_ roomID: String) {
        drivers[roomID] = nil
        tasks[roomID] = nil
        metrics.roomsOpen.record(drivers.count)
        unstoredGuestRooms.remove(roomID)
        let store = self.store
        pruning[roomID] = Task {
            let gone = (try? await store.deleteRoomIfUnused(id: roomID)) ?? false
            self.pruned(roomID, gone: gone)
        }
    }

    /// A room with a host always keeps its row, so a room that left no row was a guest room.
    private func pruned(_ roomID: String, gone: Bool) {
        pruning[roomID] = nil
        if gone, let count = guestRooms { guestRooms = max(0, count - 1) }
    }

    func shutdownAll() async {
        for driver in drivers.values { driver.shutdown() }
        for task in Array(tasks.values) { await task.value }
    }
}
