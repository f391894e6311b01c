import Foundation
import Logging
import AirwaveStore
import AirwaveTestSupport

let testLogger: Logger = {
    var logger = Logger(label: "airwave.store.tests")
    logger.logLevel = .warning
    return logger
}()

/// Opens a migrated store on a file in a new temporary folder, runs `body`, then shuts the
/// store down and removes the folder.
func withStore<T>(
    _ body: (SQLiteEventStore, TemporaryDirectory) async throws -> T
) async throws -> T {
    let dir = try TemporaryDirectory(prefix: "airwave-store")
    defer { dir.remove() }
    let store = try await SQLiteEventStore.open(path: dir.path("airwave.sqlite"), logger: testLogger)
    do {
        try await store.migrate()
        let result = try await body(store, dir)
        try await store.shutdown()
        return result
    } catch {
        try? await store.shutdown()
        throw error
    }
}

func started(_ id: String, at: EpochMillis = 1_000, mode: String = "open") -> StoreRecord {
    .eventStarted(eventID: id, hostUserID: "host-\(id)", hostUsername: "Host \(id)", mode: mode, at: at)
}

func chatRecord(_ eventID: String, _ text: String, user: String = "u1", at: EpochMillis = 2_000) -> StoreRecord {
    .chat(StoredChatMessage(eventID: eventID, userID: user, username: "User \(user)", message: text, sentAt: at, verified: false))
}

/// Runs `body` and returns the error it threw, or nil.
func thrownError(_ body: () async throws -> Void) async -> (any Error)? {
    do {
        try await body()
        return nil
    } catch {
        return error
    }
}
