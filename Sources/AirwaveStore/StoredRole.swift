/// Milliseconds since the Unix epoch (wall clock).
public typealias EpochMillis = Int64

/// The role a participant has in an event, as persisted.
///
/// The raw values are what the store writes to its `role` columns, so they must never change.
public enum StoredRole: String, Sendable, Codable {
    /// The user who started the event.
    case host
    /// A user the host promoted to speak alongside them.
    case cohost
    /// A user who only listens.
    case listener
}
