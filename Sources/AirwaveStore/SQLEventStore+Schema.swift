import SQLKit

extension SQLEventStore {
    /// Names of the tables the store uses.
    enum Table {
        /// One row per applied schema migration.
        static let schemaVersions = "airwave_schema_versions"
        /// One row per event.
        static let events = "events"
        /// One row per participant session (connection) of an event.
        static let participants = "event_participants"
        /// One row per chat message.
        static let chat = "chat_messages"
    }
}

/// Reads columns of a row, turning NULL into `nil`.
extension SQLRow {
    func optional<T: Decodable>(_ column: String, as type: T.Type) throws -> T? {
        try decodeNil(column: column) ? nil : decode(column: column, as: T.self)
    }

    func role(_ column: String) throws -> StoredRole {
        let raw = try decode(column: column, as: String.self)
        guard let role = StoredRole(rawValue: raw) else {
            throw EventStoreError.invalidStoredValue(column: column, value: raw)
        }
        return role
    }
}

extension UInt64 {
    /// The value as stored in a signed 64-bit column (same bits; SQL has no unsigned type).
    var storedBits: Int64 { Int64(bitPattern: self) }
}
