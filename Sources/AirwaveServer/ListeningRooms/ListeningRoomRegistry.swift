import AirwaveCore
import AirwaveProtocol
import AirwaveStore
import Logging

/// Knows every listening room in memory; loads a room from the store when its first member
/// arrives and forgets it when the last one leaves.
actor ListeningRoomRegistry {
    private var drivers: [String: ListeningRoomDriver] = [:]
    private var tasks: [String: Task<Void, Never>] = [:]
    /// Rooms whose stored state is being read, and rooms being created through the API: the two
    /// must not overlap, or a joiner could load a room without the host it is about to get.
    private var loading: [String: Int] = [:]
    private var creating: Set<String> = []
    private let store: any RoomStore
    private let metrics: ServerMetrics
    private var services: ListeningRoomDriver.Services?

    init(store: any RoomStore, metrics: ServerMetrics) {
        self.store = store
        self.metrics = metrics
    }

    func attach(writer: StoreWriter) {
        services = ListeningRoomDriver.Services(
            writer: writer, metrics: metrics, onIdle: { [weak self] roomID in await self?.forget(roomID) })
    }

    /// The room's driver, loading the room from the store if it is not in memory.
    func driver(for roomID: String) async throws -> ListeningRoomDriver {
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
        let stored = try await store.room(id: roomID)
        // Another caller may have loaded it while this one waited for the store.
        if let driver = drivers[roomID] { return driver }
        let chat = stored == nil ? [] : try await store.roomChat(roomID: roomID, limit: 100)
        if let driver = drivers[roomID] { return driver }
        let room = ListeningRoom(roomID: roomID, hostUserID: stored?.hostUserID,
                                 restored: stored.map { RoomSnapshot($0.state, chat: chat) } ?? RoomSnapshot())
        let driver = ListeningRoomDriver(roomID: roomID)
        drivers[roomID] = driver
        metrics.roomsOpen.record(drivers.count)
        tasks[roomID] = Task { await driver.run(room: room, services: services) }
        return driver
    }

    /// Creates a room with a host, unless the id is in use: stored, or open in memory (a room
    /// people joined without a host, whose state may not be stored yet), or being opened.
    func createHostRoom(_ roomID: String, hostUserID: String, at: Timestamp) async throws -> Bool {
        guard drivers[roomID] == nil, loading[roomID] == nil else { return false }
        creating.insert(roomID)
        defer { creating.remove(roomID) }
        return try await store.createRoom(id: roomID, hostUserID: hostUserID, at: at.milliseconds)
    }

    /// Whether the room is open in memory.
    func isLoaded(_ roomID: String) -> Bool { drivers[roomID] != nil }

    private func forget(_ roomID: String) {
        drivers[roomID] = nil
        tasks[roomID] = nil
        metrics.roomsOpen.record(drivers.count)
    }

    func shutdownAll() async {
        for driver in drivers.values { driver.shutdown() }
        for task in Array(tasks.values) { await task.value }
    }
}
