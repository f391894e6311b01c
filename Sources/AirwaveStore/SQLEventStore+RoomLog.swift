import Foundation
import SQLKit

extension SQLEventStore.Table {
    /// The sequenced changes of listening rooms: one row per change every member of the room
    /// sees, on whichever node they are connected to (PROTOCOL.md 8, issue 15).
    static let roomLog = "room_log"
}

extension SQLEventStore {
    /// Version 5: `room_log`, the order of each room's changes across nodes, and `rooms.log_seq`,
    /// the last sequence number the room handed out (kept on the room row so that pruning the
    /// log never lets a number be used twice).
    @Sendable
    static func createRoomLog(on db: any SQLDatabase) async throws {
        try await db.create(table: Table.roomLog)
            .column("room_id", type: .text, .notNull, .references(Table.rooms, "room_id", onDelete: .cascade))
            .column("seq", type: .bigint, .notNull)
            .column("entry_json", type: .text, .notNull)
            .column("at", type: .bigint, .notNull)
            .primaryKey("room_id", "seq")
            .run()
        try await db.alter(table: Table.rooms)
            .column("log_seq", type: .bigint, .notNull, .default(SQLLiteral.numeric("0")))
            .run()
    }
}
