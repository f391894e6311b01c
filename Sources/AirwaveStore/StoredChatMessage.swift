/// A chat message of an event, as persisted.
public struct StoredChatMessage: Sendable, Equatable, Codable {
    /// Assigned by the store (an autoincrementing primary key, increasing in insertion order);
    /// `nil` before insert.
    public var id: Int64?
    /// The event the message was sent in.
    public var eventID: String
    /// The sender's user id.
    public var userID: String
    /// The sender's display name at the time of sending.
    public var username: String
    /// The message text.
    public var message: String
    /// When the message was sent.
    public var sentAt: EpochMillis
    /// Whether the sender joined with a valid token (its user id is proven).
    public var verified: Bool

    /// Creates a chat message; leave `id` `nil` for a message that is not stored yet.
    public init(
        id: Int64? = nil,
        eventID: String,
        userID: String,
        username: String,
        message: String,
        sentAt: EpochMillis,
        verified: Bool
    ) {
        self.id = id
        self.eventID = eventID
        self.userID = userID
        self.username = username
        self.message = message
        self.sentAt = sentAt
        self.verified = verified
    }
}
