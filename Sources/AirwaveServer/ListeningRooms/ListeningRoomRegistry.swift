import AirwaveCore
import AirwaveProtocol
import AirwaveStore
import Logging

/// Knows every listening room in memory; loads a room from the store when its first member
/// arrives and forgets it when the last one leaves.
actor ListeningRoomRegistry {
    private var drivers: [String: ListeningRoomDriver] = [:]
    private var tasks: [String: Task<Void, Never>] = [:]
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

    /// The live room's state fields, if the room is in memory.
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
